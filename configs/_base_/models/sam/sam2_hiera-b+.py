# SAM 2.1 Hiera-B+ with the official checkpoint (the 'sam2' extra:
# SAM2_BUILD_CUDA=0 pip install --no-build-isolation -e '.[sam2]').
sam = dict(
    type='SAM',
    family='sam2',
    arch='hiera_b+',
    checkpoint='https://dl.fbaipublicfiles.com/segment_anything_2/092824/'
    'sam2.1_hiera_base_plus.pt')
