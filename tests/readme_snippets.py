# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""The README's snippets (a code block after ``<!-- snippet: NAME -->``), read
from the README itself, so the tests run exactly what users copy."""
import os.path as osp
import re

README = osp.join(osp.dirname(osp.dirname(__file__)), 'README.md')


def snippet_names() -> list:
    """Every snippet name of the README, in order."""
    return re.findall(r'<!-- snippet: (\S+) -->', open(README, encoding='utf-8').read())


def snippet_text(name: str, language: str = 'python') -> str:
    """The ```language block after ``<!-- snippet: name -->``."""
    text = open(README, encoding='utf-8').read()
    pattern = r'<!-- snippet: ' + re.escape(name) + r' -->\s*```' + language + r'\n(.*?)```'
    match = re.search(pattern, text, re.S)
    if match is None:
        raise KeyError(f'README.md has no {language} snippet {name!r}')
    return match.group(1)


def readme_snippet(name: str) -> dict:
    """Execute the ```python block after ``<!-- snippet: name -->`` in the
    README and return the names it defines."""
    namespace = {}
    exec(snippet_text(name), namespace)  # noqa: S102 - our own README
    namespace.pop('__builtins__')
    return namespace
