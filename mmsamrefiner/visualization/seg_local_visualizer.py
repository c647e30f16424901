# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""mmseg's visualizer, showing the coarse label map SAMRefinerHook kept
(``keep_coarse=True``) beside the refined one.  Imports mmseg: an mmdet
config never loads this module."""
from typing import Optional

import numpy as np
from mmengine.dist import master_only
from mmseg.visualization import SegLocalVisualizer

from mmsamrefiner.registry import VISUALIZERS

from .coarse_beside_refined import CoarseBesideRefinedMixin


@VISUALIZERS.register_module()
class SAMRefinerSegLocalVisualizer(CoarseBesideRefinedMixin, SegLocalVisualizer):
    """``SegLocalVisualizer`` whose prediction panel becomes two when the data
    sample has ``coarse_sem_seg`` (a ``PixelData``, (1, H, W) label map, beside
    ``pred_sem_seg``, the refined one; ``SAMRefinerHook(keep_coarse=True)``
    keeps it): ``[ground truth |] coarse | refined``, each prediction panel
    drawn by ``SegLocalVisualizer`` (same palette and labels) and titled
    "coarse" / "refined".  The image is RGB, as mmseg's
    ``SegVisualizationHook`` reads it; a saved file is BGR as usual.  Without
    ``coarse_sem_seg`` it draws what ``SegLocalVisualizer`` draws.
    Arguments: ``SegLocalVisualizer``'s.
    """

    def has_coarse(self, data_sample) -> bool:
        return 'coarse_sem_seg' in data_sample and 'pred_sem_seg' in data_sample

    def coarse_sample(self, data_sample):
        """A copy of ``data_sample`` whose ``pred_sem_seg`` is the coarse map;
        ``data_sample`` is left as it is (``clone`` is shallow: the copy has
        its own fields, sharing their values)."""
        coarse = data_sample.clone()
        coarse.pred_sem_seg = coarse.coarse_sem_seg
        return coarse

    @master_only
    def add_datasample(self, name: str, image: np.ndarray, data_sample=None,
                       draw_gt: bool = True, draw_pred: bool = True, show: bool = False,
                       wait_time: float = 0, out_file: Optional[str] = None, step: int = 0,
                       with_labels: Optional[bool] = True) -> None:
        """``SegLocalVisualizer.add_datasample``, with the coarse prediction
        panel beside the refined one where the sample has ``coarse_sem_seg``."""
        if data_sample is None or not draw_pred or not self.has_coarse(data_sample):
            return super().add_datasample(name, image, data_sample, draw_gt, draw_pred, show,
                                          wait_time, out_file, step, with_labels)

        def draw(sample):
            super(SAMRefinerSegLocalVisualizer, self).add_datasample(
                name, image, sample, draw_gt=draw_gt, draw_pred=True, show=False,
                out_file=None, step=step, with_labels=with_labels)

        self.add_coarse_beside_refined(draw, name, image, data_sample, show, wait_time,
                                       out_file, step)
