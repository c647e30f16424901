# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""What importing the package loads, and the layers of its folders.

Each import case runs in a fresh interpreter (``sys.executable``, this tree
first on ``PYTHONPATH``) and looks at ``sys.modules``: the refiner core loads
none of mmcv, mmdet, mmseg, pycocotools and mmengine's runner; an mmseg
config never loads mmdet and an mmdet config never loads mmseg; bare type
names resolve from other scopes whatever the import order.  The layer test
reads every module's imports with ``ast``.
"""
import ast
import importlib
import os
import os.path as osp
import subprocess
import sys
import textwrap

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
PACKAGE = osp.join(ROOT, 'mmsamrefiner')

PRELUDE = '''
import sys
FORBIDDEN = ('mmcv', 'mmdet', 'mmseg', 'pycocotools', 'mmengine.runner')

def loaded(*names):
    return sorted(m for m in sys.modules
                  if any(m == n or m.startswith(n + '.') for n in names))
'''
EPILOGUE = '''
assert sys.modules['mmsamrefiner'].__file__.startswith({root!r}), \\
    sys.modules['mmsamrefiner'].__file__
print('ok')
'''

#: The shipped toy SAM (read from the package, no network), and a refiner with it.
TOY_SAM = "dict(type='SAM', arch='toy', checkpoint='mmsamrefiner://toy_sam.pth')"
TOY_REFINER = f"dict(type='SAMRefiner', iters=1, sam={TOY_SAM})"


def run(code: str, cwd: str = ROOT) -> None:
    """Run ``code`` in a fresh interpreter that finds this tree first."""
    paths = [ROOT] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
    source = PRELUDE + textwrap.dedent(code) + EPILOGUE.format(root=PACKAGE)
    result = subprocess.run([sys.executable, '-c', source], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0 and result.stdout.strip().endswith('ok'), \
        f'{result.stdout}\n{result.stderr}'


def test_importing_the_refiner_core_loads_no_mm_stack():
    run('''
        import mmsamrefiner.refiner
        assert loaded(*FORBIDDEN) == [], loaded(*FORBIDDEN)
        mine = loaded('mmsamrefiner')
        assert all(m in ('mmsamrefiner', 'mmsamrefiner.registry', 'mmsamrefiner.version',
                         'mmsamrefiner.runner_checkpoints')
                   or m.startswith(('mmsamrefiner.refiner', 'mmsamrefiner.utils'))
                   for m in mine), mine
    ''')


def test_the_package_loads_its_parts_on_demand_and_the_refiner_runs_without_the_mm_stack():
    run(f'''
        import numpy as np

        import mmsamrefiner
        # the package itself: its registry, version and the runner-checkpoint
        # loader (installed only once mmengine's runner is loaded), not even torch
        assert loaded('mmsamrefiner') == ['mmsamrefiner', 'mmsamrefiner.registry',
                                          'mmsamrefiner.runner_checkpoints',
                                          'mmsamrefiner.version'], loaded('mmsamrefiner')
        assert loaded('torch') == [], 'torch'
        from mmsamrefiner import SAMRefiner
        refiner = SAMRefiner(sam={TOY_SAM}, iters=1)
        image = np.zeros((64, 80, 3), np.uint8)
        image[16:48, 20:60] = 200
        masks = np.zeros((1, 64, 80), bool)
        masks[18:46, 24:56] = True
        result = refiner.refine(image, masks)
        assert result.masks.shape == (1, 64, 80)
        assert loaded(*FORBIDDEN) == [], loaded(*FORBIDDEN)
    ''')


def build_from_config(scope: str, tmp_path) -> str:
    """Code that loads a ``scope`` config naming the package's types by bare
    name (``custom_imports``) and builds them through ``scope``'s registries."""
    path = tmp_path / 'cfg.py'
    path.write_text(textwrap.dedent(f"""
        custom_imports = dict(imports=['mmsamrefiner'], allow_failed_imports=False)
        default_scope = '{scope}'
        refiner = {TOY_REFINER}
        custom_hooks = [dict(type='SAMRefinerHook', refiner=refiner)]
        refine_coarse_masks = dict(type='RefineCoarseMasks', refiner=refiner, device='cpu')
        val_evaluator = dict(type='MaskRefinementMetric')
    """))
    return f'''
        from mmengine.config import Config
        from mmengine.registry import init_default_scope

        assert loaded('mmsamrefiner') == []
        cfg = Config.fromfile({str(path)!r})  # imports mmsamrefiner (custom_imports)
        assert 'mmsamrefiner' in sys.modules
        init_default_scope(cfg.default_scope)
        from {scope}.registry import HOOKS, METRICS, TRANSFORMS
        hook = HOOKS.build(cfg.custom_hooks[0])
        transform = TRANSFORMS.build(cfg.refine_coarse_masks)
        metric = METRICS.build(cfg.val_evaluator)
        from mmsamrefiner.datasets.transforms import RefineCoarseMasks
        from mmsamrefiner.engine.hooks import SAMRefinerHook
        from mmsamrefiner.evaluation.metrics import MaskRefinementMetric
        assert type(hook) is SAMRefinerHook and type(transform) is RefineCoarseMasks
        assert type(metric) is MaskRefinementMetric
        # the stand-ins in mmengine's root registries are now the real classes
        assert HOOKS.get('SAMRefinerHook') is SAMRefinerHook
        assert TRANSFORMS.get('RefineCoarseMasks') is RefineCoarseMasks
    '''


@pytest.mark.parametrize('scope,other,kind,dataset', [
    ('mmseg', 'mmdet', 'Seg', 'ImageFolderSegDataset'),
    ('mmdet', 'mmseg', 'Det', 'ImageFolderDetDataset')])
def test_a_config_of_one_stack_builds_the_packages_types_without_loading_the_other(
        tmp_path, scope, other, kind, dataset):
    """In one interpreter per stack: the hook, the transform, the metric, the
    visualizer (as the current one) and the image-folder dataset build by bare
    name through ``scope``'s registries, and ``other`` is never imported."""
    import cv2
    import numpy as np
    (tmp_path / 'images').mkdir()
    cv2.imwrite(str(tmp_path / 'images' / 'a.png'), np.zeros((4, 4, 3), np.uint8))
    prefix = 'img_path' if scope == 'mmseg' else 'img'
    run(build_from_config(scope, tmp_path) + f'''
        # Visualizers are mmengine ManagerMixins: the visualization hooks find the
        # one the Runner built through Visualizer.get_current_instance(), so the
        # stand-in must build through get_instance as mmengine's registry does.
        from mmengine.registry import VISUALIZERS, DefaultScope
        from mmengine.visualization import Visualizer
        name = 'SAMRefiner{kind}LocalVisualizer'
        with DefaultScope.overwrite_default_scope('{scope}'):
            first = VISUALIZERS.build(dict(type=name, name='first'))  # through the stand-in
            assert Visualizer.get_current_instance() is first
            second = VISUALIZERS.build(dict(type='mmsamrefiner.' + name, name='second'))
            assert Visualizer.get_current_instance() is second
        assert type(first) is type(second) and type(first).__name__ == name

        from {scope}.registry import DATASETS
        folder = DATASETS.build(dict(
            type={dataset!r}, data_prefix={{{prefix!r}: {str(tmp_path / 'images')!r}}},
            metainfo=dict(classes=('a', 'b')), test_mode=True))
        assert type(folder).__name__ == {dataset!r} and len(folder) == 1
        assert loaded({other!r}) == [], loaded({other!r})
    ''')


def test_bare_names_resolve_from_mmdet_when_the_package_was_imported_first():
    run(f'''
        import mmsamrefiner  # before mmdet's registries exist, before any Runner
        from mmdet.registry import HOOKS, TRANSFORMS
        hook = HOOKS.build(dict(type='SAMRefinerHook', refiner={TOY_REFINER}))
        transform = TRANSFORMS.build(dict(type='RefineCoarseMasks', refiner={TOY_REFINER}))
        assert type(hook).__name__ == 'SAMRefinerHook', type(hook)
        assert type(transform).__name__ == 'RefineCoarseMasks', type(transform)
        assert loaded('mmseg') == [], loaded('mmseg')
    ''')


def test_every_root_type_is_registered_by_the_module_the_table_names():
    from mmengine.registry import Registry

    from mmsamrefiner import registry
    children = {r.name: r for r in vars(registry).values()
                if isinstance(r, registry.PackageRegistry)}
    assert sorted(children) == sorted(registry.ROOT_TYPES)
    for registry_name, types in registry.ROOT_TYPES.items():
        child = children[registry_name]
        assert isinstance(child.parent, Registry) and child.parent.parent is None
        for name, module in types.items():
            importlib.import_module(module)
            real = child.module_dict[name]
            assert real.__module__ == module
            assert child.parent.module_dict[name] is real, (registry_name, name)


def test_one_table_names_every_public_name(tmp_path):
    """``registry.PUBLIC_NAMES`` is the one list: the package gives each
    name's object, the sub-packages that export a public name give the same
    object, and docs/api.md's tables of names list exactly them."""
    import re

    import mmsamrefiner
    from mmsamrefiner.registry import PUBLIC_NAMES, ROOT_TYPES
    for name, (module, attribute, registry_name) in PUBLIC_NAMES.items():
        assert getattr(mmsamrefiner, name) is getattr(importlib.import_module(module), attribute)
        assert (registry_name is None) == all(name not in t for t in ROOT_TYPES.values())
    for package in ('refiner', 'engine', 'datasets', 'evaluation', 'models'):
        sub = importlib.import_module(f'mmsamrefiner.{package}')
        for name in set(sub.__all__) & set(PUBLIC_NAMES):
            assert getattr(sub, name) is getattr(mmsamrefiner, name), (package, name)
    api = open(osp.join(ROOT, 'docs', 'api.md'), encoding='utf-8').read()
    tables = api[:api.index('## Collections and files')]
    documented = set()
    for first_cell in re.findall(r'^\| (.+?) \|', tables, re.M):
        documented.update(re.findall(r'`([A-Za-z_]+)[(`]', first_cell))
    assert documented == set(PUBLIC_NAMES)


def test_public_names_come_from_the_package():
    import mmsamrefiner
    for name in mmsamrefiner.__all__:
        assert getattr(mmsamrefiner, name) is not None, name
    assert set(mmsamrefiner.__all__) <= set(dir(mmsamrefiner))
    with pytest.raises(AttributeError):
        mmsamrefiner.no_such_name


# -- layers --------------------------------------------------------------------

FOLDERS = sorted(d for d in os.listdir(PACKAGE)
                 if osp.isfile(osp.join(PACKAGE, d, '__init__.py')))


def package_imports():
    """(importing module, imported module) for every import of the package in
    its own modules, at any depth (functions too), relative ones resolved."""
    for folder, _, files in os.walk(PACKAGE):
        for file in files:
            if not file.endswith('.py'):
                continue
            path = osp.join(folder, file)
            parts = osp.relpath(path, ROOT)[:-3].split(os.sep)
            is_package = parts[-1] == '__init__'
            module = '.'.join(parts[:-1] if is_package else parts)
            package = module if is_package else module.rpartition('.')[0]
            with open(path) as f:
                tree = ast.parse(f.read(), path)
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    targets = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom):
                    base = node.module or ''
                    if node.level:
                        anchor = package.split('.')[:len(package.split('.')) - node.level + 1]
                        base = '.'.join(anchor + ([base] if base else []))
                    # ``from pkg import name``: name may be a submodule
                    targets = [base] if node.module else [f'{base}.{a.name}' for a in node.names]
                else:
                    continue
                for target in targets:
                    if target == 'mmsamrefiner' or target.startswith('mmsamrefiner.'):
                        yield module, target


def layer(module: str) -> str:
    """The package folder (or top-level module) a module belongs to."""
    parts = module.split('.')
    return parts[1] if len(parts) > 1 else '<package>'


def test_the_layer_reader_sees_relative_and_function_level_imports():
    pairs = set(package_imports())
    assert ('mmsamrefiner.refiner.backends.base', 'mmsamrefiner.refiner.resize') in pairs
    assert ('mmsamrefiner.refiner.iou_adapter', 'mmsamrefiner.refiner.sam') in pairs  # in load()
    assert ('mmsamrefiner', 'mmsamrefiner.registry') in pairs
    assert {'refiner', 'mask_io', 'datasets', 'engine', 'evaluation', 'models', 'apis',
            'visualization', 'synthetic', 'utils'} <= set(FOLDERS)


def test_the_folders_import_each_other_without_a_cycle():
    edges = {}
    for source, target in package_imports():
        assert target != 'mmsamrefiner' or source == 'mmsamrefiner', \
            f'{source} imports the package root (import from the part instead)'
        a, b = layer(source), layer(target)
        if a != b:
            edges.setdefault(a, set()).add(b)
    state = {}

    def visit(node, path):
        state[node] = 'open'
        for nxt in sorted(edges.get(node, ())):
            assert state.get(nxt) != 'open', 'import cycle: ' + ' -> '.join(path + [nxt])
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 'done'

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])


@pytest.mark.parametrize('folder,allowed', [
    ('refiner', {'refiner', 'utils', 'registry'}),  # the core stands alone
    ('utils', {'utils'}),  # the bottom layer
    ('registry', set()),  # types are reached through ROOT_TYPES' strings
])
def test_the_core_and_the_bottom_layer_import_only_what_is_below_them(folder, allowed):
    found = {layer(target) for source, target in package_imports()
             if layer(source) == folder and layer(target) != folder}
    assert found <= allowed, sorted(found - allowed)


