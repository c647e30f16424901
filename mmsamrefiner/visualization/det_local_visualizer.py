# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""mmdet's visualizer, showing the coarse masks SAMRefinerHook kept
(``keep_coarse=True``) beside the refined ones.  Imports mmdet: an mmseg
config never loads this module."""
from typing import Optional

import numpy as np
from mmdet.visualization import DetLocalVisualizer
from mmengine.dist import master_only

from mmsamrefiner.registry import VISUALIZERS

from .coarse_beside_refined import CoarseBesideRefinedMixin


@VISUALIZERS.register_module()
class SAMRefinerDetLocalVisualizer(CoarseBesideRefinedMixin, DetLocalVisualizer):
    """``DetLocalVisualizer`` whose prediction panel becomes two when the data
    sample's ``pred_instances`` has ``coarse_masks`` ((N, H, W) bool, beside
    ``masks``, the refined ones; ``SAMRefinerHook(keep_coarse=True)`` keeps
    them): ``[ground truth |] coarse | refined``, each prediction panel drawn by
    ``DetLocalVisualizer`` (same instances above ``pred_score_thr``, boxes,
    labels and one colour per instance in both) and titled "coarse" /
    "refined".  The image is RGB, as mmdet's ``DetVisualizationHook`` reads
    it; a saved file is BGR as usual.  Without ``coarse_masks`` it draws what
    ``DetLocalVisualizer`` draws.  Arguments: ``DetLocalVisualizer``'s.
    """

    def has_coarse(self, data_sample) -> bool:
        return 'pred_instances' in data_sample and \
            'coarse_masks' in data_sample.pred_instances

    def coarse_sample(self, data_sample):
        """A copy of ``data_sample`` whose ``pred_instances.masks`` are the
        coarse masks; ``data_sample`` is left as it is (``clone`` is shallow:
        the copies share the fields' values, not the containers)."""
        coarse = data_sample.clone()
        instances = data_sample.pred_instances.clone()
        instances.masks = instances.coarse_masks
        coarse.pred_instances = instances
        return coarse

    @master_only
    def add_datasample(self, name: str, image: np.ndarray, data_sample=None,
                       draw_gt: bool = True, draw_pred: bool = True, show: bool = False,
                       wait_time: float = 0, out_file: Optional[str] = None,
                       pred_score_thr: float = 0.3, step: int = 0) -> None:
        """``DetLocalVisualizer.add_datasample``, with the coarse prediction
        panel beside the refined one where the sample has ``coarse_masks``."""
        if data_sample is None or not draw_pred or not self.has_coarse(data_sample):
            return super().add_datasample(name, image, data_sample, draw_gt, draw_pred, show,
                                          wait_time, out_file, pred_score_thr, step)

        def draw(sample):
            super(SAMRefinerDetLocalVisualizer, self).add_datasample(
                name, image, sample, draw_gt=draw_gt, draw_pred=True, show=False,
                out_file=None, pred_score_thr=pred_score_thr, step=step)

        self.add_coarse_beside_refined(draw, name, image, data_sample, show, wait_time,
                                       out_file, step)
