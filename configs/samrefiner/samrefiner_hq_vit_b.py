# SAMRefiner on HQ-SAM vit_b (the 'hq' extra: pip install -e '.[hq]').
_base_ = '../_base_/samrefiner.py'

refiner = dict(
    sam=dict(
        family='hq',
        arch='vit_b',
        checkpoint='https://huggingface.co/lkeab/hq-sam/resolve/main/sam_hq_vit_b.pth'))
