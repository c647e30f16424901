# SAMRefiner on HQ-SAM ViT-H (the 'hq' extra: pip install -e '.[hq]').
_base_ = ['../_base_/models/samrefiner.py', '../_base_/models/sam/hq-sam_vit-h.py']

refiner = dict(sam=_base_.sam)
del _base_.sam  # the SAM lives in the refiner only
