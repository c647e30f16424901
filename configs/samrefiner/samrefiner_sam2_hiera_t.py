# SAMRefiner on SAM 2.1 hiera_t (the 'sam2' extra: SAM2_BUILD_CUDA=0 pip install -e '.[sam2]').
_base_ = '../_base_/samrefiner.py'

refiner = dict(
    sam=dict(
        family='sam2',
        arch='hiera_t',
        checkpoint='https://dl.fbaipublicfiles.com/segment_anything_2/092824/'
        'sam2.1_hiera_tiny.pt'))
