# SAMRefiner on HQ-SAM vit_h (the 'hq' extra: pip install -e '.[hq]').
_base_ = '../_base_/samrefiner.py'

refiner = dict(
    sam=dict(
        family='hq',
        arch='vit_h',
        checkpoint='https://huggingface.co/lkeab/hq-sam/resolve/main/sam_hq_vit_h.pth'))
