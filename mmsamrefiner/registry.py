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
from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import LOG_PROCESSORS as MMENGINE_LOG_PROCESSORS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import RUNNER_CONSTRUCTORS as MMENGINE_RUNNER_CONSTRUCTORS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import VISBACKENDS as MMENGINE_VISBACKENDS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import WEIGHT_INITIALIZERS as MMENGINE_WEIGHT_INITIALIZERS
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


# The rest of mmengine's registries, empty here: they give the Runner of an
# adaption config (default_scope='mmsamrefiner') a scope to search, so it
# builds loops, samplers, optimizers, ... from mmengine's without warnings.
RUNNERS = Registry('runner', parent=MMENGINE_RUNNERS, scope='mmsamrefiner')
RUNNER_CONSTRUCTORS = Registry('runner constructor', parent=MMENGINE_RUNNER_CONSTRUCTORS,
                               scope='mmsamrefiner')
LOOPS = Registry('loop', parent=MMENGINE_LOOPS, scope='mmsamrefiner')
DATA_SAMPLERS = Registry('data sampler', parent=MMENGINE_DATA_SAMPLERS, scope='mmsamrefiner')
FUNCTIONS = Registry('function', parent=MMENGINE_FUNCTIONS, scope='mmsamrefiner')
MODEL_WRAPPERS = Registry('model_wrapper', parent=MMENGINE_MODEL_WRAPPERS, scope='mmsamrefiner')
WEIGHT_INITIALIZERS = Registry('weight initializer', parent=MMENGINE_WEIGHT_INITIALIZERS,
                               scope='mmsamrefiner')
OPTIMIZERS = Registry('optimizer', parent=MMENGINE_OPTIMIZERS, scope='mmsamrefiner')
OPTIM_WRAPPERS = Registry('optim_wrapper', parent=MMENGINE_OPTIM_WRAPPERS, scope='mmsamrefiner')
OPTIM_WRAPPER_CONSTRUCTORS = Registry('optimizer wrapper constructor',
                                      parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
                                      scope='mmsamrefiner')
PARAM_SCHEDULERS = Registry('parameter scheduler', parent=MMENGINE_PARAM_SCHEDULERS,
                            scope='mmsamrefiner')
EVALUATOR = Registry('evaluator', parent=MMENGINE_EVALUATOR, scope='mmsamrefiner')
VISUALIZERS = Registry('visualizer', parent=MMENGINE_VISUALIZERS, scope='mmsamrefiner')
VISBACKENDS = Registry('vis_backend', parent=MMENGINE_VISBACKENDS, scope='mmsamrefiner')
LOG_PROCESSORS = Registry('log_processor', parent=MMENGINE_LOG_PROCESSORS, scope='mmsamrefiner')


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
