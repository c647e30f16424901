# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""What the mmdet and mmseg visualizers of this package share: the
prediction panel of a data sample that carries coarse masks becomes two
panels, the coarse prediction and the refined one, side by side.

Each panel is drawn by the parent visualizer (mmdet's ``DetLocalVisualizer``,
mmseg's ``SegLocalVisualizer``) exactly as it draws a prediction, so colours,
labels and score thresholds are the parent's; only the composition is ours.
Images are RGB uint8 here: the mmdet and mmseg visualization hooks read the
image file as RGB, and the parents write files after converting to BGR.
"""
from typing import Callable, Optional

import mmcv
import numpy as np

from .overlay import put_title

COARSE_TITLE = 'coarse'
REFINED_TITLE = 'refined'


class CoarseBesideRefinedMixin:
    """Mixed into a subclass of an mmengine ``Visualizer`` whose
    ``add_datasample`` draws ``[ground truth | prediction]`` side by side
    (the ground-truth panel only when drawn), the prediction panel as wide as
    the image.

    Subclasses say whether a data sample carries coarse masks
    (:meth:`has_coarse`) and give a copy whose prediction is the coarse one
    (:meth:`coarse_sample`); their ``add_datasample`` calls
    :meth:`add_coarse_beside_refined` for such samples and the parent's
    otherwise.
    """

    def has_coarse(self, data_sample) -> bool:
        raise NotImplementedError

    def coarse_sample(self, data_sample):
        raise NotImplementedError

    def add_coarse_beside_refined(self, draw: Callable, name: str, image: np.ndarray,
                                  data_sample, show: bool = False, wait_time: float = 0,
                                  out_file: Optional[str] = None, step: int = 0) -> None:
        """Draw ``[ground truth |] coarse | refined`` and save or show it as the
        parent's ``add_datasample`` does (``out_file``, else the backends).

        Args:
            draw: ``draw(data_sample)`` runs the parent's ``add_datasample`` on
                ``data_sample`` with the caller's ``draw_gt`` and drawing
                options, ``show=False``, ``out_file=None`` (what it would hand
                to the backends is taken instead, see :meth:`_drawn_by`).
            image: (H, W, 3) RGB uint8 (or a float image the parent clips).
            data_sample: a sample for which :meth:`has_coarse` is True.
        """
        width = image.shape[1]
        # Both pictures start from the same NumPy random state: mmdet jitters
        # each instance's colour with np.random, so an instance gets one
        # colour in both panels and the panels differ only where the masks do.
        # The refined picture is drawn last, leaving the state where the
        # parent's own drawing of the sample would have left it.
        state = np.random.get_state()
        coarse = self._drawn_by(draw, self.coarse_sample(data_sample))
        np.random.set_state(state)
        refined = self._drawn_by(draw, data_sample)
        if coarse.shape != refined.shape or refined.shape[1] < width:
            raise ValueError(f'the coarse picture is {coarse.shape}, the refined one '
                             f'{refined.shape}: expected two equal pictures ending in a '
                             f'prediction panel {width} pixels wide (the image)')
        ground_truth = refined[:, :-width]  # empty when no ground truth is drawn
        drawn = np.concatenate([
            ground_truth,
            put_title(coarse[:, -width:], COARSE_TITLE),
            put_title(refined[:, -width:], REFINED_TITLE),
        ], axis=1)
        self.set_image(drawn)
        if show:
            self.show(drawn, win_name=name, wait_time=wait_time)
        if out_file is not None:
            mmcv.imwrite(drawn[..., ::-1], out_file)  # RGB -> BGR file
        else:
            self.add_image(name, drawn, step)

    def _drawn_by(self, draw: Callable, data_sample) -> np.ndarray:
        """The (H, W', 3) RGB picture ``draw(data_sample)`` hands to
        ``add_image``, taken instead of sent to the backends."""
        drawn = []
        self.add_image = lambda name, image, step=0: drawn.append(image)
        try:
            draw(data_sample)
        finally:
            del self.add_image  # the class's add_image again
        if len(drawn) != 1:
            raise RuntimeError(f'expected the parent add_datasample to draw one picture, '
                               f'it drew {len(drawn)}')
        return drawn[0]
