# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""The configs and tools shipped inside the package, and a command to reach them.

A wheel carries the repository's ``configs/`` and ``tools/`` as
``mmsamrefiner/.mim/configs`` and ``mmsamrefiner/.mim/tools`` (the OpenMMLab
layout, which ``mim run mmsamrefiner refine ...`` reads); an editable install
has symlinks there, and a source checkout used through ``PYTHONPATH`` has
neither, so its top-level folders are used. mmengine's ``package::path``
prefix in ``_base_`` only resolves mmengine's own list of OpenMMLab packages,
so ``mmsamrefiner::...`` does not work; instead::

    python -m mmsamrefiner.configs list [PATTERN]   # shipped config names
    python -m mmsamrefiner.configs path NAME        # absolute path of one
    python -m mmsamrefiner.configs copy DIR         # the config tree, into DIR
    python -m mmsamrefiner.configs tool NAME        # absolute path of a tool

A name is relative to the config root (``samrefiner/samrefiner_sam_toy.py``);
the ``.py`` may be left out. An absolute path works as a ``_base_`` entry and
with the tools; after ``copy DIR`` a config beside ``DIR`` can name
``'./DIR/samrefiner/samrefiner_sam_toy.py'`` in its ``_base_`` (the copied
configs keep their relative ``_base_`` links). This module imports only the
standard library (the package's ``__init__`` loads mmengine's registry, no
torch, mmcv, mmdet or mmseg).
"""
import argparse
import fnmatch
import os
import os.path as osp
import shutil
import sys
from typing import List, Optional, Sequence

PACKAGE_DIR = osp.dirname(osp.abspath(__file__))
#: The shipped folders, and where a source checkout keeps them.
SHIPPED_DIRS = ('configs', 'tools')


def shipped_dir(kind: str) -> str:
    """Absolute path of the shipped ``configs`` or ``tools`` folder.

    ``mmsamrefiner/.mim/<kind>`` when it exists (a wheel or an editable
    install), else ``<checkout>/<kind>`` beside the package in a source
    checkout (a ``setup.py`` next to it).

    Raises:
        ValueError: ``kind`` is neither ``'configs'`` nor ``'tools'``.
        FileNotFoundError: neither folder exists.
    """
    if kind not in SHIPPED_DIRS:
        raise ValueError(f'kind must be one of {SHIPPED_DIRS}, got {kind!r}')
    installed = osp.join(PACKAGE_DIR, '.mim', kind)
    if osp.isdir(installed):
        return installed
    checkout = osp.dirname(PACKAGE_DIR)
    in_checkout = osp.join(checkout, kind)
    if osp.isdir(in_checkout) and osp.isfile(osp.join(checkout, 'setup.py')):
        return in_checkout
    raise FileNotFoundError(
        f'no shipped {kind}: neither {installed} (an installed wheel) nor '
        f'{in_checkout} (a source checkout) exists; reinstall mmsamrefiner')


def config_root() -> str:
    """Absolute path of the shipped config tree (``configs/``)."""
    return shipped_dir('configs')


def list_configs(pattern: str = '*') -> List[str]:
    """Shipped config names (POSIX paths relative to :func:`config_root`,
    sorted) that match the shell-style ``pattern`` (``*`` crosses ``/``),
    ``_base_`` pieces included."""
    root = config_root()
    names = []
    for folder, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if d != '__pycache__')
        for file in files:
            if file.endswith('.py'):
                name = osp.relpath(osp.join(folder, file), root).replace(os.sep, '/')
                if fnmatch.fnmatchcase(name, pattern):
                    names.append(name)
    return sorted(names)


def _shipped_file(kind: str, name: str) -> str:
    """Absolute path of ``name`` in the shipped ``kind`` folder; ``.py`` may
    be left out. Raises FileNotFoundError with the names that exist."""
    root = shipped_dir(kind)
    relative = name.replace('/', os.sep)
    if osp.isabs(relative) or '..' in relative.split(os.sep):
        raise ValueError(f'{kind[:-1]} name must be relative to {root} without "..", got {name!r}')
    for candidate in (relative, relative + '.py'):
        path = osp.join(root, candidate)
        if osp.isfile(path):
            return path
    if kind == 'configs':
        stem = osp.basename(name).split('.')[0]
        close = [n for n in list_configs() if stem and stem in osp.basename(n)]
        hint = (f'; close names: {close}' if close else
                '; `python -m mmsamrefiner.configs list` prints them all')
    else:
        hint = f'; the tools are {sorted(f for f in os.listdir(root) if not f.startswith("_"))}'
    raise FileNotFoundError(f'no shipped {kind[:-1]} {name!r} in {root}{hint}')


def config_path(name: str) -> str:
    """Absolute path of a shipped config, for ``Config.fromfile``, a
    ``_base_`` entry or a tool's ``config`` argument.

    Args:
        name (str): relative to :func:`config_root`, e.g.
            ``'samrefiner/samrefiner_sam_toy.py'`` (``.py`` optional).

    Raises:
        FileNotFoundError: no such config (the message names close ones).
    """
    return _shipped_file('configs', name)


def tool_path(name: str) -> str:
    """Absolute path of a shipped tool, e.g. ``'refine.py'`` (``.py``
    optional), to run with ``python``."""
    return _shipped_file('tools', name)


def copy_configs(target_dir: str) -> str:
    """Copy the whole config tree into ``target_dir`` (created; it must not
    exist, so edits there are never overwritten) and return its absolute
    path. The copies keep their relative ``_base_`` links."""
    target = osp.abspath(target_dir)
    if osp.exists(target):
        raise FileExistsError(f'{target} exists; name a new folder to copy the configs into')
    shutil.copytree(config_root(), target, ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
    return target


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog='python -m mmsamrefiner.configs',
        description='Reach the configs and tools shipped with mmsamrefiner.')
    commands = parser.add_subparsers(dest='command', required=True)
    listing = commands.add_parser('list', help='print the shipped config names')
    listing.add_argument('pattern', nargs='?', default='*',
                         help="shell-style pattern, e.g. 'samrefiner/*toy*' (default: all)")
    path = commands.add_parser('path', help='print the absolute path of a shipped config')
    path.add_argument('name', help="e.g. samrefiner/samrefiner_sam_toy.py ('.py' optional)")
    copy = commands.add_parser('copy', help='copy the config tree into a new folder')
    copy.add_argument('dir', help='the new folder')
    tool = commands.add_parser('tool', help='print the absolute path of a shipped tool')
    tool.add_argument('name', help="e.g. refine.py ('.py' optional)")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        if args.command == 'list':
            lines = list_configs(args.pattern)
        elif args.command == 'path':
            lines = [config_path(args.name)]
        elif args.command == 'copy':
            lines = [copy_configs(args.dir)]
        else:
            lines = [tool_path(args.name)]
    except (FileNotFoundError, FileExistsError, ValueError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    return 0


if __name__ == '__main__':
    sys.exit(main())
