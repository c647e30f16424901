# The toy SAM shipped in the package (a test and demo model trained on
# generated scenes by tools/train_toy_sam.py; not for real photos).
_base_ = '../_base_/samrefiner.py'

refiner = dict(sam=dict(arch='toy', checkpoint='mmsamrefiner://toy_sam.pth'))
