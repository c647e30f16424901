# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""mmsamrefiner: SAMRefiner (ICLR 2025) for MMDetection and MMSegmentation.

Importing the package loads only :mod:`mmsamrefiner.registry` (mmengine's
registry), which makes the package's types buildable by name from any scope
(see its docstring): ``custom_imports=dict(imports=['mmsamrefiner'])`` in an
mmdet or mmseg config is enough.  When mmengine's runner is loaded already
(mmdet's and mmseg's tools), it also lets the runner read its own checkpoints
under torch >= 2.6, weights-only (:mod:`mmsamrefiner.runner_checkpoints`).
The public names (:data:`mmsamrefiner.registry.PUBLIC_NAMES`) are imported on
first access (PEP 562), each from its own module, so
``from mmsamrefiner import SAMRefiner`` loads the refiner core alone (no
mmcv, mmdet, mmseg or pycocotools).
"""
import importlib

from . import (
    registry,  # puts the stand-ins in mmengine's root registries
    runner_checkpoints,
)
from .version import __version__, version_info

__all__ = ['__version__', 'version_info', *registry.PUBLIC_NAMES]

# mmengine's own checkpoints readable under torch >= 2.6, safely (when its runner is loaded)
runner_checkpoints.install()


def __getattr__(name: str):
    where = registry.PUBLIC_NAMES.get(name)
    if where is None:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    module, attribute, _ = where
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(registry.PUBLIC_NAMES))
