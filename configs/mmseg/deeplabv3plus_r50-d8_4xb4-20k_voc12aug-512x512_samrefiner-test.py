# DeepLabV3+ (Pascal VOC) whose predicted label maps are refined by
# SAMRefiner (SAM ViT-H) through split-then-merge before evaluation. Test with
# a trained model through mmseg's tools/test.py. Class 0 is VOC's background:
# pixels no refined instance claims become 0; 255 is left alone.
# Coarse | refined pictures: add `--show-dir vis --cfg-options
# custom_hooks.0.keep_coarse=True`.
_base_ = [
    'mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb4-20k_voc12aug-512x512.py',
    '../_base_/hooks/samrefiner_hook.py',
]
custom_hooks = [dict(_base_.custom_hooks[0], background=0, ignore_index=255)]
# mmseg's visualizer, drawing the coarse label map the hook keeps beside the
# refined one: [ground truth | coarse | refined] (only the type changes;
# without a kept coarse map it draws what SegLocalVisualizer draws).
visualizer = dict(type='mmsamrefiner.SAMRefinerSegLocalVisualizer')
