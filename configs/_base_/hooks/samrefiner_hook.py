# Refine the masks the model predicts in val/test (mmdet pred_instances.masks,
# mmseg pred_sem_seg) before the evaluator sees them: SAMRefiner with the
# reference's settings on SAM ViT-H with the official checkpoint (URL,
# downloaded once). Put it after the mmdet/mmseg config in `_base_`; another
# SAM or setting: `custom_hooks.0.refiner.sam...` (--cfg-options) or, in a
# config, custom_hooks = [dict(_base_.custom_hooks[0], refiner=...)].
_base_ = ['../models/samrefiner.py', '../models/sam/sam_vit-h.py']

custom_imports = dict(imports=['mmsamrefiner'], allow_failed_imports=False)
custom_hooks = [
    dict(
        type='mmsamrefiner.SAMRefinerHook',
        refiner=dict(_base_.refiner, sam=_base_.sam),
        score_thr=0.0,  # mmdet: instances under it keep their masks
        keep_coarse=False,  # keep raw predictions as coarse_masks / coarse_sem_seg
        out_dir=None)  # e.g. 'pseudo_labels': export refined masks (resumable)
]
# The refiner lives in the hook only: no top-level `refiner` or `sam` in the
# configs that inherit this piece.
del _base_.refiner, _base_.sam
