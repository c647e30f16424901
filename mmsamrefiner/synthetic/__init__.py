# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Generated scenes and coarse-mask defects (demo, tests, benchmarks)."""
from .defects import make_coarse_masks
from .scenes import LAYOUTS, Scene, make_class_scene, make_crowded_scene, make_scene

__all__ = ['LAYOUTS', 'Scene', 'make_class_scene', 'make_crowded_scene', 'make_scene',
           'make_coarse_masks']
