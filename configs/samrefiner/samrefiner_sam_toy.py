# SAMRefiner on the toy SAM shipped in the package (a test and demo model; not for real photos).
_base_ = ['../_base_/models/samrefiner.py', '../_base_/models/sam/sam_toy.py']

refiner = dict(sam=_base_.sam)
del _base_.sam  # the SAM lives in the refiner only
