# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""The built wheel: what it holds, its metadata, and that it works installed.

The wheel is built once, in place, the way a user builds it
(``pip wheel --no-index --no-deps --no-build-isolation -w DIR .``), and the
work tree must be as it was (``git status --porcelain --ignored`` and the
editable install's ``mmsamrefiner/.mim`` links). It is then installed with
``pip install --no-deps --target`` into a throwaway virtual environment whose
``.pth`` line reuses this interpreter's site-packages for the dependencies:
a ``.pth`` line adds a folder without running that folder's own ``.pth``
files, so an editable install of the checkout there cannot shadow the wheel.
From a temporary folder (not the checkout) that environment imports the
package, finds a shipped config and refines a mask with the toy SAM read from
the package (``mmsamrefiner://toy_sam.pth``). No network: ``--no-index``.
"""
import email
import os
import os.path as osp
import site
import subprocess
import sys
import venv
import zipfile

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
VERSION_FILE = osp.join(ROOT, 'mmsamrefiner', 'version.py')
PIP_ENV = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK='1', PIP_NO_INPUT='1')


def package_version() -> str:
    scope: dict = {}
    with open(VERSION_FILE, encoding='utf-8') as f:
        exec(f.read(), scope)
    return scope['__version__']


def work_tree_state() -> tuple:
    """What a build could change: git's view of the tree (ignored files
    too) and where the editable install's ``.mim`` entries point."""
    status = subprocess.run(['git', 'status', '--porcelain', '--ignored'], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout
    mim_dir = osp.join(ROOT, 'mmsamrefiner', '.mim')
    mim = sorted((name, os.readlink(osp.join(mim_dir, name))
                  if osp.islink(osp.join(mim_dir, name)) else 'not a link')
                 for name in (os.listdir(mim_dir) if osp.isdir(mim_dir) else []))
    return status, mim


def run(command: list, cwd: str, env: dict = PIP_ENV, timeout: int = 300) -> str:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, f'{command}\n{result.stdout}\n{result.stderr}'
    return result.stdout


@pytest.fixture(scope='module')
def build(tmp_path_factory):
    """(wheel path, work tree state before the build, state after)."""
    if not osp.isdir(osp.join(ROOT, '.git')) and not osp.isfile(osp.join(ROOT, '.git')):
        pytest.skip('not a git checkout: the work-tree check needs git')
    out_dir = tmp_path_factory.mktemp('wheel')
    before = work_tree_state()
    run([sys.executable, '-m', 'pip', 'wheel', '--no-index', '--no-deps', '--no-build-isolation',
         '--no-cache-dir', '-q', '-w', str(out_dir), '.'], cwd=ROOT)
    after = work_tree_state()
    wheels = [f for f in os.listdir(out_dir) if f.endswith('.whl')]
    assert wheels == [f'mmsamrefiner-{package_version()}-py3-none-any.whl'], wheels
    return str(out_dir / wheels[0]), before, after


@pytest.fixture(scope='module')
def wheel_names(build):
    with zipfile.ZipFile(build[0]) as wheel:
        return wheel.namelist()


@pytest.fixture(scope='module')
def metadata(build):
    with zipfile.ZipFile(build[0]) as wheel:
        text = wheel.read(f'mmsamrefiner-{package_version()}.dist-info/METADATA').decode()
    return email.message_from_string(text)


@pytest.mark.slow  # builds a wheel (and a venv)
def test_building_the_wheel_leaves_the_work_tree_as_it_was(build):
    _, (status_before, mim_before), (status_after, mim_after) = build
    assert status_after == status_before
    assert mim_after == mim_before


@pytest.mark.slow  # builds a wheel (and a venv)
def test_the_wheel_holds_only_the_package_and_its_metadata(wheel_names):
    top_level = {name.split('/')[0] for name in wheel_names}
    assert top_level == {'mmsamrefiner', f'mmsamrefiner-{package_version()}.dist-info'}
    assert not [n for n in wheel_names if '__pycache__' in n or n.endswith('.pyc')]


@pytest.mark.slow  # builds a wheel (and a venv)
def test_the_wheel_ships_the_licenses_the_toy_sam_the_configs_and_the_tools(wheel_names):
    dist_info = f'mmsamrefiner-{package_version()}.dist-info'
    assert {f'{dist_info}/licenses/LICENSE', f'{dist_info}/licenses/NOTICE'} <= set(wheel_names)
    assert 'mmsamrefiner/checkpoints/toy_sam.pth' in wheel_names
    shipped = {n[len('mmsamrefiner/.mim/'):] for n in wheel_names
               if n.startswith('mmsamrefiner/.mim/')}
    in_repo = set()
    for folder in ('configs', 'tools'):
        for parent, subdirs, files in os.walk(osp.join(ROOT, folder)):
            subdirs[:] = [d for d in subdirs if d != '__pycache__']
            in_repo |= {osp.relpath(osp.join(parent, f), ROOT).replace(os.sep, '/')
                        for f in files if not f.endswith('.pyc')}
    # every config and tool, except the checkout's own set-up script
    assert shipped == in_repo - {'tools/setup_env.sh'}
    assert 'configs/samrefiner/samrefiner_sam_toy.py' in shipped


@pytest.mark.slow  # builds a wheel (and a venv)
def test_the_wheel_requires_no_mmcv_mmdet_nor_mmseg_and_offers_them_as_extras(metadata):
    assert metadata['Requires-Python'] == '>=3.10'
    assert metadata['License-Expression'] == 'Apache-2.0'
    required = metadata.get_all('Requires-Dist')
    base = [r for r in required if 'extra ==' not in r]
    assert any(r.startswith('mmengine') for r in base), base
    assert not [r for r in base if r.startswith(('mmcv', 'mmdet', 'mmsegmentation'))], base

    def extra(name):
        return sorted(r.split(';')[0].split('<')[0].split('>')[0].split('=')[0].strip()
                      for r in required if f'extra == "{name}"' in r)

    assert extra('mmdet') == ['mmdet']
    assert extra('mmseg') == ['ftfy', 'mmsegmentation', 'regex']
    assert extra('mim') == ['mmcv', 'mmengine']
    assert set(extra('all')) >= {'mmdet', 'mmsegmentation', 'segment-anything-hq', 'sam2',
                                 'pytest'}
    assert 'mmcv' not in extra('all')


INSTALLED_CHECK = '''
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np

import mmsamrefiner
assert mmsamrefiner.__file__.startswith(sys.argv[1]), mmsamrefiner.__file__
package = osp.dirname(mmsamrefiner.__file__)

# a shipped config, by the command a user runs
config = subprocess.run([sys.executable, '-m', 'mmsamrefiner.configs', 'path',
                         'samrefiner/samrefiner_sam_toy.py'],
                        capture_output=True, text=True, check=True).stdout.strip()
assert config == osp.join(package, '.mim', 'configs', 'samrefiner', 'samrefiner_sam_toy.py'), config
from mmsamrefiner.configs import tool_path
assert tool_path('refine') == osp.join(package, '.mim', 'tools', 'refine.py')

# the refiner it configures, with the toy SAM read from the package
from mmengine.config import Config
from mmsamrefiner.registry import build_in_scope
cfg = Config.fromfile(config)
assert cfg.refiner.sam.checkpoint == 'mmsamrefiner://toy_sam.pth', cfg.refiner.sam
from mmsamrefiner.refiner.sam import PACKAGE_CHECKPOINT_DIR
assert PACKAGE_CHECKPOINT_DIR == osp.join(package, 'checkpoints'), PACKAGE_CHECKPOINT_DIR
refiner = build_in_scope(dict(cfg.refiner, iters=1))

# an RGB image of one rectangle; the coarse mask is the true one dilated by 6 px
image = np.full((160, 192, 3), (60, 80, 70), np.uint8)
image[40:120, 48:144] = (200, 180, 60)
truth = np.zeros((1, 160, 192), bool)
truth[0, 40:120, 48:144] = True
coarse = cv2.dilate(truth[0].astype(np.uint8), np.ones((13, 13), np.uint8))[None] > 0
refined = refiner.refine(image, coarse).masks


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


assert refined.shape == (1, 160, 192) and refined.dtype == bool
assert iou(coarse, truth) < 0.8 and iou(refined, truth) > 0.95, (iou(coarse, truth),
                                                                  iou(refined, truth))
print('ok')
'''


@pytest.mark.slow  # builds a wheel (and a venv)
def test_the_installed_wheel_refines_with_the_toy_sam_and_finds_its_configs(build, tmp_path):
    environment = tmp_path / 'env'
    venv.EnvBuilder(with_pip=False).create(environment)
    python = str(environment / 'bin' / 'python')
    target = run([python, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
                 cwd=str(tmp_path)).strip()
    # the dependencies: this interpreter's site-packages, after the wheel's folder
    with open(osp.join(target, 'deps.pth'), 'w') as f:
        f.write('\n'.join(site.getsitepackages()) + '\n')
    run([sys.executable, '-m', 'pip', 'install', '--no-index', '--no-deps', '--no-cache-dir',
         '-q', '--target', target, build[0]], cwd=str(tmp_path))

    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'PYTHONHOME')}
    out = run([python, '-c', INSTALLED_CHECK, target], cwd=str(elsewhere), env=env)
    assert out.strip().endswith('ok'), out


# -- python -m mmsamrefiner.configs ---------------------------------------------

def test_the_shipped_configs_are_named_relative_to_the_config_root():
    from mmsamrefiner import configs
    assert configs.list_configs('samrefiner/*toy*') == ['samrefiner/samrefiner_sam_toy.py']
    names = configs.list_configs()
    assert '_base_/models/samrefiner.py' in names and names == sorted(names)
    path = configs.config_path('samrefiner/samrefiner_sam_toy.py')
    assert path == configs.config_path('samrefiner/samrefiner_sam_toy')
    assert path == osp.join(configs.config_root(), 'samrefiner', 'samrefiner_sam_toy.py')
    assert osp.isfile(path)
    assert configs.tool_path('refine') == osp.join(configs.shipped_dir('tools'), 'refine.py')


def test_a_missing_config_names_close_ones_and_a_path_out_of_the_root_is_refused():
    from mmsamrefiner import configs
    with pytest.raises(FileNotFoundError, match=r"no shipped config 'toy'.*samrefiner_sam_toy"):
        configs.config_path('toy')
    with pytest.raises(FileNotFoundError, match=r"no shipped tool 'nope'.*'refine\.py'"):
        configs.tool_path('nope')
    with pytest.raises(ValueError, match=r'without "\.\."'):
        configs.config_path('../setup.py')
    with pytest.raises(ValueError, match=r"one of \('configs', 'tools'\), got 'docs'"):
        configs.shipped_dir('docs')


def test_the_installed_layout_comes_first_then_the_checkout(tmp_path, monkeypatch):
    from mmsamrefiner import configs
    checkout = tmp_path / 'checkout'
    package = checkout / 'mmsamrefiner'
    (package / '.mim' / 'configs').mkdir(parents=True)
    (checkout / 'configs').mkdir()
    monkeypatch.setattr(configs, 'PACKAGE_DIR', str(package))
    # no setup.py beside the package: not a checkout, only .mim counts
    assert configs.config_root() == str(package / '.mim' / 'configs')
    with pytest.raises(FileNotFoundError, match='no shipped tools'):
        configs.shipped_dir('tools')
    (checkout / 'setup.py').write_text('')
    (package / '.mim' / 'configs').rmdir()
    assert configs.config_root() == str(checkout / 'configs')


def test_copied_configs_serve_as_base_of_a_config_beside_them(tmp_path, capsys):
    from mmengine.config import Config

    from mmsamrefiner import configs
    assert configs.main(['copy', str(tmp_path / 'shipped')]) == 0
    assert capsys.readouterr().out == f'{tmp_path / "shipped"}\n'
    assert configs.main(['copy', str(tmp_path / 'shipped')]) == 1  # never overwrites
    assert 'exists; name a new folder' in capsys.readouterr().err
    mine = tmp_path / 'mine.py'
    mine.write_text("_base_ = ['./shipped/samrefiner/samrefiner_sam_toy.py']\n"
                    'refiner = dict(iters=2)\n')
    cfg = Config.fromfile(str(mine))
    assert cfg.refiner.iters == 2
    assert cfg.refiner.sam == dict(type='SAM', arch='toy', checkpoint='mmsamrefiner://toy_sam.pth')
