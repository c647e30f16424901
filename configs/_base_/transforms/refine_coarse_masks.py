# Refine coarse annotation masks on the fly: put `refine_coarse_masks` right
# after LoadAnnotations in a train pipeline.
# SAM ViT-H with the official checkpoint (URL, downloaded once); for another
# SAM, override `refiner` in the dict.
_base_ = '../../samrefiner/samrefiner_vit_h.py'

custom_imports = dict(imports=['mmsamrefiner'], allow_failed_imports=False)
refine_coarse_masks = dict(
    type='mmsamrefiner.RefineCoarseMasks',
    refiner={{_base_.refiner}},
    device='cpu',  # per DataLoader worker; see the README before using 'cuda'
    cache_dir='data/samrefiner_cache',  # refined masks by content; epochs 2+ read files
    strict=False)  # a failing sample keeps its coarse masks
