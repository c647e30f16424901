# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""``mmsamrefiner.testing`` is for the tests and benchmarks: the package itself
never imports it."""
import ast
import glob
import os.path as osp

import mmsamrefiner

PACKAGE = osp.dirname(mmsamrefiner.__file__)


def imported_modules(path):
    tree = ast.parse(open(path, encoding='utf-8').read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                parts = osp.relpath(osp.dirname(path), osp.dirname(PACKAGE)).split(osp.sep)
                base = '.'.join(parts[:len(parts) - node.level + 1])
                yield f'{base}.{node.module}' if node.module else base
            else:
                yield node.module


def test_nothing_in_the_package_imports_the_testing_helpers():
    sources = [p for p in glob.glob(osp.join(PACKAGE, '**', '*.py'), recursive=True)
               if osp.join(PACKAGE, 'testing') not in p]
    assert sources
    for path in sources:
        for module in imported_modules(path):
            assert not module.startswith('mmsamrefiner.testing'), (path, module)


def test_every_testing_helper_serves_the_tests_or_the_benchmarks():
    """Each helper ``mmsamrefiner.testing`` exports is used by a test or a tool
    (benchmarks, demo): none is dead weight of the package."""
    import mmsamrefiner.testing as testing
    root = osp.dirname(PACKAGE)
    users = [p for pattern in ('tests/**/*.py', 'tools/*.py')
             for p in glob.glob(osp.join(root, pattern), recursive=True)]
    text = '\n'.join(open(p, encoding='utf-8').read() for p in users)
    for name in testing.__all__:
        assert callable(getattr(testing, name)), name
        assert text.count(name) > 0, f'mmsamrefiner.testing.{name} is used by no test or tool'
