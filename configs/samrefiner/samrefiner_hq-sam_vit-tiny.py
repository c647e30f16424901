# SAMRefiner on the light HQ-SAM (TinyViT encoder, 1024 input; the 'hq' extra).
_base_ = ['../_base_/models/samrefiner.py', '../_base_/models/sam/hq-sam_vit-tiny.py']

refiner = dict(sam=_base_.sam)
del _base_.sam  # the SAM lives in the refiner only
