# SAMRefiner on the light HQ-SAM (TinyViT encoder, 1024 input; the 'hq' extra).
_base_ = '../_base_/samrefiner.py'

refiner = dict(
    sam=dict(
        family='hq',
        arch='vit_tiny',
        checkpoint='https://huggingface.co/lkeab/hq-sam/resolve/main/sam_hq_vit_tiny.pth'))
