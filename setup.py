#!/usr/bin/env python
# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Packaging for mmsamrefiner, in the OpenMMLab plugin style.

Requirements (``requirements/``, each file says what it is for):

* ``runtime.txt`` is ``install_requires``: mmengine, torch, segment-anything,
  ... , enough for ``import mmsamrefiner`` and the refiner;
* mmcv is left to the user, who needs a build for their torch/CUDA:
  ``mim install "mmcv>=2.0.0rc4,<2.2.0"`` (``mminstall.txt`` is the mim list,
  also the ``mim`` extra);
* the extras ``mmdet`` and ``mmseg`` bring one framework each, ``hq`` and
  ``sam2`` the other SAM families, ``tests`` the test tools; ``all`` is all
  of them.

``configs/`` and ``tools/`` ship inside the package as ``mmsamrefiner/.mim/``
(the OpenMMLab layout, read by ``mim run`` and by
``python -m mmsamrefiner.configs``):

* a wheel (or a non-editable install) gets copies, made by ``build_py`` in the
  build folder, never in the work tree;
* an editable install gets symlinks in the work tree (``mmsamrefiner/.mim/``,
  ignored by git), so edits to ``configs/`` show at once.

Building a wheel or an sdist leaves the work tree as it was: ``build/`` and
``mmsamrefiner.egg-info/`` are removed afterwards when that build made them.
"""
import os
import os.path as osp
import shutil
import sys
from typing import Iterable, List

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py
from setuptools.command.develop import develop

ROOT = osp.dirname(osp.abspath(__file__))
PACKAGE = 'mmsamrefiner'
#: Top-level folders shipped as ``mmsamrefiner/.mim/<name>``.
MIM_RESOURCES = ('configs', 'tools')
#: Commands after which the folders they wrote into the work tree are removed.
CLEAN_AFTER_COMMANDS = frozenset({'bdist_wheel', 'sdist'})


def readme() -> str:
    with open(osp.join(ROOT, 'README.md'), encoding='utf-8') as f:
        return f.read()


def get_version() -> str:
    scope: dict = {}
    with open(osp.join(ROOT, PACKAGE, 'version.py'), encoding='utf-8') as f:
        exec(compile(f.read(), 'version.py', 'exec'), scope)
    return scope['__version__']


def parse_requirements(fname: str) -> List[str]:
    """Requirement lines of ``fname`` (relative to the repository root),
    following ``-r`` includes, without comments."""
    lines: List[str] = []
    with open(osp.join(ROOT, fname), encoding='utf-8') as f:
        for raw in f:
            line = raw.split('#', 1)[0].strip()
            if not line:
                continue
            if line.startswith('-r '):
                lines += parse_requirements(
                    osp.join(osp.dirname(fname), line[3:].strip()))
            else:
                lines.append(line)
    return lines


def merge_requirements(*fnames: str) -> List[str]:
    """The requirement lines of several files, each line once, in order."""
    return list(dict.fromkeys(
        line for fname in fnames for line in parse_requirements(fname)))


def remove_path(path: str) -> None:
    """Remove a file, a symlink (never what it points to) or a folder."""
    if osp.islink(path) or osp.isfile(path):
        os.remove(path)
    elif osp.isdir(path):
        shutil.rmtree(path)


def copy_mim_resources(package_dir: str) -> None:
    """Copy ``configs/`` and ``tools/`` to ``<package_dir>/.mim/``, without
    ``__pycache__`` nor ``tools/setup_env.sh`` (it sets up a checkout);
    ``package_dir`` is the package in a build folder."""
    mim_dir = osp.join(package_dir, '.mim')
    os.makedirs(mim_dir, exist_ok=True)
    for name in MIM_RESOURCES:
        target = osp.join(mim_dir, name)
        remove_path(target)
        shutil.copytree(osp.join(ROOT, name), target,
                        ignore=shutil.ignore_patterns('__pycache__', '*.pyc',
                                                      'setup_env.sh'))


def link_mim_resources(package_dir: str) -> None:
    """Make ``<package_dir>/.mim/configs`` and ``.../tools`` relative
    symlinks to the top-level folders (editable installs)."""
    mim_dir = osp.join(package_dir, '.mim')
    os.makedirs(mim_dir, exist_ok=True)
    for name in MIM_RESOURCES:
        target = osp.join(mim_dir, name)
        link = osp.relpath(osp.join(ROOT, name), mim_dir)
        if osp.islink(target) and os.readlink(target) == link:
            continue
        remove_path(target)
        os.symlink(link, target, target_is_directory=True)


class BuildPyWithMimResources(build_py):
    """``build_py`` that also ships ``configs/`` and ``tools/`` as
    ``mmsamrefiner/.mim/``: copied into the build folder, or, for an editable
    install, linked in the work tree."""

    def run(self) -> None:
        if self.editable_mode:
            link_mim_resources(osp.join(ROOT, PACKAGE))
        super().run()
        if not self.editable_mode:
            copy_mim_resources(osp.join(self.build_lib, PACKAGE))


class DevelopWithMimResources(develop):
    """``develop`` (an editable install with setuptools < 80, which does not
    run ``build_py``) that also links ``mmsamrefiner/.mim/``."""

    def run(self) -> None:
        link_mim_resources(osp.join(ROOT, PACKAGE))
        super().run()


def build_outputs_in_work_tree() -> List[str]:
    """Folders a build writes into the current folder (setuptools' defaults):
    the build folder and the egg-info."""
    return [osp.abspath('build'), osp.abspath(f'{PACKAGE}.egg-info')]


def cleans_up_after(commands: Iterable[str]) -> bool:
    """Whether the command line only builds distributions (a wheel, an
    sdist), or is the ``egg_info`` that a PEP 517 front-end runs to read the
    build requirements: then their folders in the work tree are removed."""
    commands = list(commands)
    if not commands:
        return False
    if commands == ['egg_info']:
        return 'setuptools.build_meta' in sys.modules
    return set(commands) <= CLEAN_AFTER_COMMANDS


def main() -> None:
    new_outputs = [p for p in build_outputs_in_work_tree() if not osp.exists(p)]
    dist = setup(
        name=PACKAGE,
        version=get_version(),
        description='SAMRefiner (ICLR 2025) for MMDetection and MMSegmentation: '
        'refine coarse masks with the Segment Anything Model',
        long_description=readme(),
        long_description_content_type='text/markdown',
        keywords='computer vision, segmentation, SAM, mask refinement, '
        'pseudo-labels, openmmlab',
        packages=find_packages(include=(PACKAGE, f'{PACKAGE}.*')),
        package_data={PACKAGE: ['checkpoints/*.pth']},
        include_package_data=False,
        cmdclass={'build_py': BuildPyWithMimResources,
                  'develop': DevelopWithMimResources},
        classifiers=[
            'Development Status :: 3 - Alpha',
            'Operating System :: OS Independent',
            'Programming Language :: Python :: 3',
            'Programming Language :: Python :: 3 :: Only',
            'Programming Language :: Python :: 3.10',
            'Programming Language :: Python :: 3.11',
            'Topic :: Scientific/Engineering :: Artificial Intelligence',
            'Topic :: Scientific/Engineering :: Image Recognition',
        ],
        license_expression='Apache-2.0',
        license_files=['LICENSE', 'NOTICE'],
        # torch 2.9 (requirements/build.txt) and sam2 1.1 need Python 3.10+
        python_requires='>=3.10',
        install_requires=parse_requirements('requirements/runtime.txt'),
        extras_require={
            'mmdet': parse_requirements('requirements/mmdet.txt'),
            'mmseg': parse_requirements('requirements/mmseg.txt'),
            'hq': parse_requirements('requirements/hq.txt'),
            'sam2': parse_requirements('requirements/sam2.txt'),
            'optional': parse_requirements('requirements/optional.txt'),
            'tests': parse_requirements('requirements/tests.txt'),
            'mim': parse_requirements('requirements/mminstall.txt'),
            'all': merge_requirements('requirements/mmdet.txt',
                                      'requirements/mmseg.txt',
                                      'requirements/optional.txt',
                                      'requirements/tests.txt'),
        },
        zip_safe=False)
    if cleans_up_after(dist.commands):
        for path in new_outputs:
            remove_path(path)


if __name__ == '__main__':
    main()
