# Refine coarse annotation masks on the fly: put `refine_coarse_masks` right
# after LoadAnnotations in a train pipeline. SAMRefiner with the reference's
# settings on SAM ViT-H with the official checkpoint (URL, downloaded once);
# for another SAM, override `refiner` in the dict.
_base_ = ['../models/samrefiner.py', '../models/sam/sam_vit-h.py']

custom_imports = dict(imports=['mmsamrefiner'], allow_failed_imports=False)
refine_coarse_masks = dict(
    type='mmsamrefiner.RefineCoarseMasks',
    refiner=dict(_base_.refiner, sam=_base_.sam),
    device='cpu',  # per DataLoader worker; see the README before using 'cuda'
    cache_dir='data/samrefiner_cache',  # refined masks by content; epochs 2+ read files
    strict=False)  # a failing sample keeps its coarse masks
# The refiner lives in the transform only: no top-level `refiner` or `sam` in
# the configs that inherit this piece.
del _base_.refiner, _base_.sam
