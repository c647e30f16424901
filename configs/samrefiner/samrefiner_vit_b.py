_base_ = '../_base_/samrefiner.py'

refiner = dict(
    sam=dict(
        arch='vit_b',
        checkpoint='https://dl.fbaipublicfiles.com/segment_anything/'
        'sam_vit_b_01ec64.pth'))
