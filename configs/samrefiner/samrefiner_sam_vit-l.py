# SAMRefiner on SAM ViT-L with the official checkpoint.
_base_ = ['../_base_/models/samrefiner.py', '../_base_/models/sam/sam_vit-l.py']

refiner = dict(sam=_base_.sam)
del _base_.sam  # the SAM lives in the refiner only
