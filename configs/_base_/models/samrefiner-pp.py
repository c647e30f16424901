# SAMRefiner++: a rank-4 LoRA-style adapter on the last layer of SAM's IoU MLP,
# trained with the margin ranking loss (ranking_margin 0.02) on box-prompt
# candidates.
# The SAM comes from a piece of ./sam/:
#   model = dict(refiner=dict(sam=_base_.sam))
#   del _base_.sam
model = dict(
    type='IoUAdapterModel',
    refiner=dict(
        type='SAMRefiner',
        iters=5,  # validation refinement (the DAVIS-585 evaluation runs 1)
        elastic_margin=0.0),  # refinement only: training prompts are tight boxes
    rank=4,
    scale=1.0,
    ranking_margin=0.02,
    # Image embeddings are computed once per image and kept in memory (the 64
    # most recently used: max_items); cache_dir keeps them on disk too (reused
    # by later runs and by all ranks).
    embedding_cache=dict(cache_dir=None, in_memory=True),
    val_refine=True)  # with ground truth: refined-mask IoU with/without the adapter
