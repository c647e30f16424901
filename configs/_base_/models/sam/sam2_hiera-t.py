# SAM 2.1 Hiera-T with the official checkpoint (the 'sam2' extra:
# SAM2_BUILD_CUDA=0 pip install --no-build-isolation -e '.[sam2]').
sam = dict(
    type='SAM',
    family='sam2',
    arch='hiera_t',
    checkpoint='https://dl.fbaipublicfiles.com/segment_anything_2/092824/'
    'sam2.1_hiera_tiny.pt')
