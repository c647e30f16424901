# The paper's setting: context-aware elastic box with lambda = 0.1.
_base_ = './samrefiner_sam_vit-h.py'

refiner = dict(elastic_margin=0.1)
