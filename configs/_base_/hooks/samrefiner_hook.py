# Refine the masks the model predicts in val/test (mmdet pred_instances.masks,
# mmseg pred_sem_seg) before the evaluator sees them.
# SAM ViT-H with the official checkpoint (URL, downloaded once); for another
# SAM, inherit this and override the refiner inside the list.
_base_ = '../../samrefiner/samrefiner_vit_h.py'

custom_imports = dict(imports=['mmsamrefiner'], allow_failed_imports=False)
custom_hooks = [
    dict(
        type='mmsamrefiner.SAMRefinerHook',
        refiner={{_base_.refiner}},
        score_thr=0.0,  # mmdet: instances under it keep their masks
        keep_coarse=False,  # keep raw predictions as coarse_masks / coarse_sem_seg
        out_dir=None)  # e.g. 'pseudo_labels': export refined masks (resumable)
]
