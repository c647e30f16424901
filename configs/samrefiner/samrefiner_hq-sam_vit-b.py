# SAMRefiner on HQ-SAM ViT-B (the 'hq' extra: pip install -e '.[hq]').
_base_ = ['../_base_/models/samrefiner.py', '../_base_/models/sam/hq-sam_vit-b.py']

refiner = dict(sam=_base_.sam)
del _base_.sam  # the SAM lives in the refiner only
