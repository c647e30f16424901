_base_ = '../_base_/samrefiner.py'

refiner = dict(
    sam=dict(
        arch='vit_l',
        checkpoint='https://dl.fbaipublicfiles.com/segment_anything/'
        'sam_vit_l_0b3195.pth'))
