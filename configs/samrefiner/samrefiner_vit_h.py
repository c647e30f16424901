_base_ = '../_base_/samrefiner.py'

refiner = dict(
    sam=dict(
        arch='vit_h',
        checkpoint='https://dl.fbaipublicfiles.com/segment_anything/'
        'sam_vit_h_4b8939.pth'))
