# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""The package's registries: children of mmengine's root registries.

Scope ``'mmsamrefiner'``.  ``locations`` makes building by type name import the
module that registers it, so ``MODELS.build(dict(type='SAMRefiner', ...))``
works without importing :mod:`mmsamrefiner.refiner` first.
"""
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import Registry

#: SAM builders (``type='SAM'``), ``SAMRefiner`` and the adaption model.
MODELS = Registry(
    'model',
    parent=MMENGINE_MODELS,
    scope='mmsamrefiner',
    locations=['mmsamrefiner.refiner', 'mmsamrefiner.models'])
#: Data transforms such as ``RefineCoarseMasks``.
TRANSFORMS = Registry(
    'transform',
    parent=MMENGINE_TRANSFORMS,
    scope='mmsamrefiner',
    locations=['mmsamrefiner.datasets.transforms'])
#: Hooks such as ``SAMRefinerHook`` and ``SaveIoUAdapterHook``.
HOOKS = Registry(
    'hook',
    parent=MMENGINE_HOOKS,
    scope='mmsamrefiner',
    locations=['mmsamrefiner.engine.hooks'])
#: Coarse-mask datasets (SAMRefiner++ adaption).
DATASETS = Registry(
    'dataset',
    parent=MMENGINE_DATASETS,
    scope='mmsamrefiner',
    locations=['mmsamrefiner.datasets'])
#: Mask-quality metrics (mIoU, boundary IoU) and the IoU-ranking metric.
METRICS = Registry(
    'metric',
    parent=MMENGINE_METRICS,
    scope='mmsamrefiner',
    locations=['mmsamrefiner.evaluation.metrics'])


def register_also_in_root(registry: Registry):
    """A class decorator: register in ``registry`` and in its mmengine parent.

    The parent registration lets a config of another scope (``default_scope=
    'mmdet'`` or ``'mmseg'``) build the class by its bare name, e.g.
    ``dict(type='SAMRefinerHook')``; the scoped name
    ``'mmsamrefiner.SAMRefinerHook'`` works everywhere without it.
    """

    def register(cls):
        registry.register_module(module=cls)
        registry.parent.register_module(module=cls)
        return cls

    return register


def build_in_scope(cfg: dict, registry: Registry = MODELS):
    """Build ``cfg`` from ``registry`` with ``'mmsamrefiner'`` as default scope.

    Lets mmsamrefiner build its own parts by plain type names even while an
    mmdet or mmseg runner has set another default scope.
    """
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmsamrefiner'):
        return registry.build(cfg)
