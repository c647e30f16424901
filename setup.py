#!/usr/bin/env python
# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Packaging for mmsamrefiner, in the OpenMMLab style.

``requirements/runtime.txt`` and ``requirements/mminstall.txt`` are the install
requirements, ``requirements/tests.txt`` and ``requirements/optional.txt`` the
extras.  ``configs/`` and ``tools/`` are exposed to ``mim`` under
``mmsamrefiner/.mim`` (symlinks for editable installs, copies otherwise).
"""
import os
import os.path as osp
import shutil
import sys
from typing import List

from setuptools import find_packages, setup

ROOT = osp.dirname(osp.abspath(__file__))


def readme() -> str:
    with open(osp.join(ROOT, 'README.md'), encoding='utf-8') as f:
        return f.read()


def get_version() -> str:
    scope: dict = {}
    with open(osp.join(ROOT, 'mmsamrefiner', 'version.py'), encoding='utf-8') as f:
        exec(compile(f.read(), 'version.py', 'exec'), scope)
    return scope['__version__']


def parse_requirements(fname: str) -> List[str]:
    """Requirement lines of ``fname``, following ``-r`` includes."""
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


def add_mim_extension() -> None:
    """Expose ``configs/`` and ``tools/`` to mim under ``mmsamrefiner/.mim``."""
    if 'develop' in sys.argv or 'editable_wheel' in sys.argv:
        mode = 'symlink'
    elif any(cmd in sys.argv for cmd in ('sdist', 'bdist_wheel', 'install')):
        mode = 'copy'
    else:
        return
    mim_path = osp.join(ROOT, 'mmsamrefiner', '.mim')
    os.makedirs(mim_path, exist_ok=True)
    for name in ('configs', 'tools'):
        src, dst = osp.join(ROOT, name), osp.join(mim_path, name)
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if mode == 'symlink':
            os.symlink(osp.relpath(src, mim_path), dst, target_is_directory=True)
        else:
            shutil.copytree(src, dst)


if __name__ == '__main__':
    add_mim_extension()
    setup(
        name='mmsamrefiner',
        version=get_version(),
        description='SAMRefiner (ICLR 2025) for MMDetection and MMSegmentation: '
        'refine coarse masks with the Segment Anything Model',
        long_description=readme(),
        long_description_content_type='text/markdown',
        keywords='computer vision, segmentation, SAM, mask refinement, '
        'pseudo-labels, openmmlab',
        packages=find_packages(exclude=('configs', 'tools', 'tests')),
        include_package_data=True,
        package_data={
            'mmsamrefiner':
            ['checkpoints/*.pth', '.mim/configs/**/*', '.mim/tools/**/*']
        },
        classifiers=[
            'Development Status :: 3 - Alpha',
            'License :: OSI Approved :: Apache Software License',
            'Operating System :: OS Independent',
            'Programming Language :: Python :: 3',
            'Programming Language :: Python :: 3.11',
        ],
        license='Apache License 2.0',
        python_requires='>=3.8',
        install_requires=parse_requirements('requirements/runtime.txt') +
        parse_requirements('requirements/mminstall.txt'),
        extras_require={
            'all': parse_requirements('requirements.txt'),
            'tests': parse_requirements('requirements/tests.txt'),
            'optional': parse_requirements('requirements/optional.txt'),
            'hq': parse_requirements('requirements/hq.txt'),
            'sam2': parse_requirements('requirements/sam2.txt'),
            'mim': parse_requirements('requirements/mminstall.txt'),
        },
        zip_safe=False)
