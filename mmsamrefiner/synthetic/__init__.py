# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Generated scenes and coarse-mask defects (demo, tests, benchmarks)."""
from .defects import make_coarse_masks
from .scenes import Scene, make_scene

__all__ = ['Scene', 'make_scene', 'make_coarse_masks']
