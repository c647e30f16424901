# SAMRefiner on SAM 2.1 Hiera-B+ (the 'sam2' extra: see the README).
_base_ = ['../_base_/models/samrefiner.py', '../_base_/models/sam/sam2_hiera-b+.py']

refiner = dict(sam=_base_.sam)
del _base_.sam  # the SAM lives in the refiner only
