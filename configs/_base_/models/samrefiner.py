# SAMRefiner's settings, the reference's defaults (authors' `sam_refiner`),
# except split-then-merge for label maps (stm; docs/method.md says why).
# The SAM comes from a piece of ./sam/ (one per family and size); a config
# combines the two:
#   _base_ = ['../_base_/models/samrefiner.py', '../_base_/models/sam/sam_vit-h.py']
#   refiner = dict(sam=_base_.sam)
#   del _base_.sam  # the SAM lives in the refiner only
refiner = dict(
    type='SAMRefiner',
    iters=5,
    use_point=True,
    use_box=True,
    use_mask=True,
    add_neg=True,
    elastic_margin=0.0,  # elastic box (lambda) off; the paper's experiments use 0.1
    box_geometry='authors',  # elastic box steps/strips as the authors' code; or 'symmetric'
    gamma=4.0,
    strength=30.0,
    stm='residual',  # label maps: also refine what the first refinement left out; or 'authors'
    residual_passes=2,
    residual_opening=2,
    residual_min_area=64,
    max_batch=64)
