# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Pictures of coarse and refined masks.

The mmdet and mmseg visualizers that draw a prediction's coarse masks beside
its refined ones live in :mod:`.det_local_visualizer` and
:mod:`.seg_local_visualizer`; they are not imported here, so that importing
this package loads neither mmdet nor mmseg (configs reach them through
:data:`mmsamrefiner.registry.ROOT_TYPES`).
"""
from .overlay import draw_masks, put_title, side_by_side, title_box

__all__ = ['draw_masks', 'put_title', 'side_by_side', 'title_box']
