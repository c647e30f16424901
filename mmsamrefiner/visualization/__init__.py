# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Pictures of coarse and refined masks."""
from .overlay import draw_masks, side_by_side

__all__ = ['draw_masks', 'side_by_side']
