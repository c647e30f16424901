# Mask R-CNN (COCO) whose predicted masks are refined by SAMRefiner (SAM ViT-H)
# before evaluation. Test with a trained Mask R-CNN:
#   python tools/test.py configs/mmdet/mask-rcnn_r50_fpn_1x_coco_samrefiner-test.py \
#       mask_rcnn_r50_fpn_1x_coco.pth   (mmdet's tools/test.py)
# Add `custom_hooks.0.out_dir=pseudo_labels` (--cfg-options) to export the
# refined masks as COCO json (RLE) for weakly supervised training.
# Coarse | refined pictures: add `--show-dir vis --cfg-options
# custom_hooks.0.keep_coarse=True` (not on by default: with `--out`, mmdet's
# DumpDetResults would hold every image's coarse masks unencoded in memory).
_base_ = [
    'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
    '../_base_/hooks/samrefiner_hook.py',
]
# mmdet's visualizer, drawing the coarse masks the hook keeps beside the
# refined ones: [ground truth | coarse | refined] (only the type changes;
# without kept coarse masks it draws what DetLocalVisualizer draws).
visualizer = dict(type='mmsamrefiner.SAMRefinerDetLocalVisualizer')
