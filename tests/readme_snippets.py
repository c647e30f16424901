# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""The config lines the README tells users to add, read from the README itself,
so the tests run exactly what users copy."""
import os.path as osp
import re

README = osp.join(osp.dirname(osp.dirname(__file__)), 'README.md')


def readme_snippet(name: str) -> dict:
    """Execute the ```python block after ``<!-- snippet: name -->`` in the
    README and return the names it defines."""
    text = open(README, encoding='utf-8').read()
    match = re.search(r'<!-- snippet: ' + re.escape(name) + r' -->\s*```python\n(.*?)```',
                      text, re.S)
    if match is None:
        raise KeyError(f'README.md has no snippet {name!r}')
    namespace = {}
    exec(match.group(1), namespace)  # noqa: S102 - our own README
    namespace.pop('__builtins__')
    return namespace
