# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""mmsamrefiner: SAMRefiner (ICLR 2025) for MMDetection and MMSegmentation.

Importing the package loads only :mod:`mmsamrefiner.registry` (mmengine's
registry), which makes the package's types buildable by name from any scope
(see its docstring): ``custom_imports=dict(imports=['mmsamrefiner'])`` in an
mmdet or mmseg config is enough.  When mmengine's runner is loaded already
(mmdet's and mmseg's tools), it also lets the runner read its own checkpoints
under torch >= 2.6, weights-only (:mod:`mmsamrefiner.runner_checkpoints`).
The public names below are imported on first access (PEP 562), each from its
own part of the package, so
``from mmsamrefiner import SAMRefiner`` loads the refiner core alone (no
mmcv, mmdet, mmseg or pycocotools).
"""
import importlib

from . import (
    registry,  # noqa: F401 - puts the stand-ins in mmengine's root registries
    runner_checkpoints,
)
from .version import __version__, version_info

#: public name -> the module that exports it
_LAZY = {
    **dict.fromkeys(['SAMRefiner', 'RefineResult', 'ImageEmbedding', 'IoUAdapter', 'Prompts',
                     'PromptMiner', 'build_sam', 'split_then_merge', 'merge_instances'],
                    'mmsamrefiner.refiner'),
    **dict.fromkeys(['CocoCoarseMaskDataset', 'LabelMapCoarseMaskDataset', 'RefineCoarseMasks'],
                    'mmsamrefiner.datasets'),
    **dict.fromkeys(['SAMRefinerHook', 'SaveIoUAdapterHook'], 'mmsamrefiner.engine'),
    **dict.fromkeys(['IoURankingMetric', 'MaskRefinementMetric'], 'mmsamrefiner.evaluation'),
    'IoUAdapterModel': 'mmsamrefiner.models',
}

__all__ = ['__version__', 'version_info', *_LAZY]

# mmengine's own checkpoints readable under torch >= 2.6, safely (when its runner is loaded)
runner_checkpoints.install()


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
