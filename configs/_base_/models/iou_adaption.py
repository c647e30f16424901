# SAMRefiner++: a rank-4 LoRA-style adaptor on the last layer of SAM's IoU MLP,
# trained with the margin ranking loss (margin 0.02) on box-prompt candidates.
model = dict(
    type='IoUAdaptionModel',
    refiner=dict(
        type='SAMRefiner',
        sam=dict(type='SAM', arch='vit_h', checkpoint=None),
        iters=5,  # validation refinement (the DAVIS-585 evaluation runs 1)
        margin=0.0),
    rank=4,
    scale=1.0,
    margin=0.02,
    # Image embeddings are computed once per image; cache_dir keeps them on
    # disk too (reused by later runs and by all ranks).
    embedding_cache=dict(cache_dir=None, in_memory=True),
    val_refine=True)  # with ground truth: refined-mask IoU with/without the adaptor
