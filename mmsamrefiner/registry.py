# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""The package's registries (scope ``'mmsamrefiner'``) and how other scopes
find its types without importing them.

Two ways to reach a type, both without importing the module that defines it:

* **By scoped name, or in the package's own scope**
  (``type='mmsamrefiner.SAMRefinerHook'``, ``default_scope='mmsamrefiner'``):
  the registries below are children of mmengine's root registries with
  ``locations`` (mmengine's convention), so the first lookup imports the
  modules that register their types.

* **By bare name from another scope** (``type='SAMRefinerHook'`` in an mmdet or
  mmseg config, whose registries search themselves and then mmengine's root
  registry, never a sibling scope): :data:`ROOT_TYPES` lists those types and
  the module of each.  Importing this module (which ``import mmsamrefiner``,
  e.g. through ``custom_imports=dict(imports=['mmsamrefiner'])``, does)
  puts a light stand-in under each name in mmengine's root registry: a
  function that imports the module on first build and builds the real type.
  When that module is imported (by the stand-in or by anyone), registering
  the real type in the package's registry (``@HOOKS.register_module()``)
  also replaces the stand-in in the root registry with it.

So ``import mmsamrefiner`` loads nothing but this module and mmengine's
registry, whatever the import order (before or after mmdet / mmseg, before a
Runner is built), and an mmseg config never pulls in mmdet (or the reverse):
only the modules of the types a config names are imported.  A name that
another package already registered in a root registry is left to it (with a
warning); the scoped name still reaches ours.
"""
import importlib
import inspect
import warnings

from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOG_PROCESSORS as MMENGINE_LOG_PROCESSORS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import RUNNER_CONSTRUCTORS as MMENGINE_RUNNER_CONSTRUCTORS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import VISBACKENDS as MMENGINE_VISBACKENDS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import WEIGHT_INITIALIZERS as MMENGINE_WEIGHT_INITIALIZERS
from mmengine.registry import Registry
from mmengine.utils import ManagerMixin

#: Every public name of the package, in one place: ``name: (module,
#: attribute, registry)``.  ``from mmsamrefiner import NAME`` imports
#: ``module`` on first access and gives its ``attribute``
#: (:mod:`mmsamrefiner`); a name with a ``registry`` is also a type that
#: configs of any scope build by bare name (:data:`ROOT_TYPES`).  The
#: sub-packages export the names that live in them (a test checks all three).
PUBLIC_NAMES = {
    # the algorithm (no mmcv, mmdet, mmseg)
    'SAMRefiner': ('mmsamrefiner.refiner.refiner', 'SAMRefiner', 'model'),
    'RefineResult': ('mmsamrefiner.refiner.refiner', 'RefineResult', None),
    'SemanticRefineResult': ('mmsamrefiner.refiner.refiner', 'SemanticRefineResult', None),
    'ImageEmbedding': ('mmsamrefiner.refiner.refiner', 'ImageEmbedding', None),
    'Prompts': ('mmsamrefiner.refiner.prompts', 'Prompts', None),
    'PromptMiner': ('mmsamrefiner.refiner.prompts', 'PromptMiner', None),
    'SAM': ('mmsamrefiner.refiner.sam', 'build_sam', 'model'),
    'build_sam': ('mmsamrefiner.refiner.sam', 'build_sam', None),
    'IoUAdapter': ('mmsamrefiner.refiner.iou_adapter', 'IoUAdapter', None),
    'split_then_merge': ('mmsamrefiner.refiner.stm', 'split_then_merge', None),
    'merge_instances': ('mmsamrefiner.refiner.stm', 'merge_instances', None),
    'residual_fragments': ('mmsamrefiner.refiner.stm', 'residual_fragments', None),
    # the MM components
    'SAMRefinerHook': ('mmsamrefiner.engine.hooks.samrefiner_hook', 'SAMRefinerHook', 'hook'),
    'SaveIoUAdapterHook': ('mmsamrefiner.engine.hooks.iou_adapter_hook', 'SaveIoUAdapterHook',
                           'hook'),
    'RefineCoarseMasks': ('mmsamrefiner.datasets.transforms.refine_coarse_masks',
                          'RefineCoarseMasks', 'transform'),
    'IoUAdapterModel': ('mmsamrefiner.models.iou_adapter_model', 'IoUAdapterModel', 'model'),
    'SemiMaskDetector': ('mmsamrefiner.models.semi_mask_detector', 'SemiMaskDetector',
                         'model'),  # imports mmdet
    'CocoCoarseMaskDataset': ('mmsamrefiner.datasets.coarse_mask_dataset',
                              'CocoCoarseMaskDataset', 'dataset'),
    'LabelMapCoarseMaskDataset': ('mmsamrefiner.datasets.coarse_mask_dataset',
                                  'LabelMapCoarseMaskDataset', 'dataset'),
    'ImageFolderDetDataset': ('mmsamrefiner.datasets.image_folder_det', 'ImageFolderDetDataset',
                              'dataset'),  # imports mmdet
    'ImageFolderSegDataset': ('mmsamrefiner.datasets.image_folder_seg', 'ImageFolderSegDataset',
                              'dataset'),  # imports mmseg
    'MaskRefinementMetric': ('mmsamrefiner.evaluation.metrics.mask_refinement_metric',
                             'MaskRefinementMetric', 'metric'),
    'IoURankingMetric': ('mmsamrefiner.evaluation.metrics.iou_ranking_metric',
                         'IoURankingMetric', 'metric'),
    'SAMRefinerDetLocalVisualizer': ('mmsamrefiner.visualization.det_local_visualizer',
                                     'SAMRefinerDetLocalVisualizer', 'visualizer'),
    'SAMRefinerSegLocalVisualizer': ('mmsamrefiner.visualization.seg_local_visualizer',
                                     'SAMRefinerSegLocalVisualizer', 'visualizer'),
}

#: The types other scopes may build by bare name: registry name ->
#: {registered name: the module that registers it}, from :data:`PUBLIC_NAMES`.
#: A stand-in for each is put in mmengine's root registry when this module is
#: imported; registering the real type (in the module named here) replaces it.
ROOT_TYPES = {}
for _name, (_module, _, _registry) in PUBLIC_NAMES.items():
    if _registry is not None:
        ROOT_TYPES.setdefault(_registry, {})[_name] = _module
del _name, _module, _registry


def _put_in_root(registry: Registry, name: str, obj) -> None:
    """Register ``obj`` as ``name`` in mmengine's root registry above
    ``registry``, replacing an entry of this package, never another's."""
    root = registry.parent
    current = root.module_dict.get(name)
    owner = getattr(current, '__module__', None) or ''
    if current is not None and not owner.startswith('mmsamrefiner.'):
        warnings.warn(f"{name!r} is already registered in mmengine's {root.name!r} registry "
                      f"(by {owner}); name mmsamrefiner's as 'mmsamrefiner.{name}'")
        return
    root.register_module(name=name, module=obj, force=True)


def _stand_in(registry: Registry, name: str, module: str):
    """A root-registry entry for ``name`` that imports ``module`` when built.

    The real type is built as mmengine's ``build_from_cfg`` would build it:
    a ``ManagerMixin`` (a visualizer) through ``get_instance``, so that the
    instance is the one ``get_current_instance()`` returns, as the mmdet and
    mmseg visualization hooks expect.
    """

    def build(*args, **kwargs):
        importlib.import_module(module)  # registers the real type
        real = registry.module_dict[name]
        if inspect.isclass(real) and issubclass(real, ManagerMixin):
            return real.get_instance(*args, **kwargs)
        return real(*args, **kwargs)

    build.__name__ = build.__qualname__ = name
    build.__module__ = module
    build.__doc__ = (f'Imports {module} and builds its {name}; stands in for it in '
                     f"mmengine's {registry.parent.name!r} registry until then.")
    return build


class PackageRegistry(Registry):
    """A child registry whose :data:`ROOT_TYPES` are also in mmengine's root
    registry: a stand-in from the start, the real type once registered."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name, module in ROOT_TYPES.get(self.name, {}).items():
            _put_in_root(self, name, _stand_in(self, name, module))

    def get(self, key: str):
        """As mmengine's, and a scoped name of :data:`ROOT_TYPES`
        (``'mmsamrefiner.ImageFolderDetDataset'``) imports its module first:
        such modules (which import mmdet or mmseg) are not imported by the
        registry's ``locations``."""
        scope, name = self.split_scope_key(key)
        module = ROOT_TYPES.get(self.name, {}).get(name)
        if scope == self.scope and module is not None and name not in self.module_dict:
            importlib.import_module(module)
        return super().get(key)

    def _register_module(self, module, module_name=None, force: bool = False) -> None:
        super()._register_module(module, module_name, force)
        names = [module_name or module.__name__] if not isinstance(
            module_name, (list, tuple)) else module_name
        for name in names:
            declared = ROOT_TYPES.get(self.name, {}).get(name)
            if declared is None:
                continue
            if declared != module.__module__:
                raise KeyError(f'{name} is registered by {module.__module__} but mmsamrefiner.'
                               f'registry.ROOT_TYPES gives {declared}: update ROOT_TYPES')
            _put_in_root(self, name, module)


#: SAM builders (``type='SAM'``), ``SAMRefiner`` and the adapter model.
MODELS = PackageRegistry(
    'model',
    parent=MMENGINE_MODELS,
    scope='mmsamrefiner',
    locations=['mmsamrefiner.refiner', 'mmsamrefiner.models'])
#: Data transforms such as ``RefineCoarseMasks``.
TRANSFORMS = PackageRegistry(
    'transform',
    parent=MMENGINE_TRANSFORMS,
    scope='mmsamrefiner',
    locations=['mmsamrefiner.datasets.transforms'])
#: Hooks such as ``SAMRefinerHook`` and ``SaveIoUAdapterHook``.
HOOKS = PackageRegistry(
    'hook',
    parent=MMENGINE_HOOKS,
    scope='mmsamrefiner',
    locations=['mmsamrefiner.engine.hooks'])
#: Coarse-mask datasets (SAMRefiner++ adapter training) and image folders
#: without annotations (pseudo-labelling).
DATASETS = PackageRegistry(
    'dataset',
    parent=MMENGINE_DATASETS,
    scope='mmsamrefiner',
    locations=['mmsamrefiner.datasets'])
#: Visualizers that draw the coarse prediction beside the refined one (the
#: mmdet one and the mmseg one live in separate modules).
VISUALIZERS = PackageRegistry(
    'visualizer',
    parent=MMENGINE_VISUALIZERS,
    scope='mmsamrefiner',
    locations=[])
#: Mask-quality metrics (mIoU, boundary IoU) and the IoU-ranking metric.
METRICS = PackageRegistry(
    'metric',
    parent=MMENGINE_METRICS,
    scope='mmsamrefiner',
    locations=['mmsamrefiner.evaluation.metrics'])


# The rest of mmengine's registries, empty here: they give the Runner of an
# adapter config (default_scope='mmsamrefiner') a scope to search, so it
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
VISBACKENDS = Registry('vis_backend', parent=MMENGINE_VISBACKENDS, scope='mmsamrefiner')
LOG_PROCESSORS = Registry('log_processor', parent=MMENGINE_LOG_PROCESSORS, scope='mmsamrefiner')


def build_in_scope(cfg: dict, registry: Registry = MODELS):
    """Build ``cfg`` from ``registry`` with ``'mmsamrefiner'`` as default scope.

    Lets mmsamrefiner build its own parts by plain type names even while an
    mmdet or mmseg runner has set another default scope.
    """
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmsamrefiner'):
        return registry.build(cfg)
