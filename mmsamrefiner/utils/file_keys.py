# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""File-system-safe keys for images named by ids or names that someone else wrote.

An image's key names its output files and its record (``<key>.json``,
``<key>.png``), so a key must never be a path, whatever the id holds
(``"../../x"``, ``"/etc/x"``, ``".records"``, an empty string, 300
characters):

* :func:`file_key`: a safe id (letters, digits, ``_``, ``.``, ``-``, starting
  with a letter or digit, at most :data:`MAX_PLAIN_LENGTH` characters) is its
  own key, so ``id 42`` writes ``42.json``; any other id keeps its safe
  characters and gets ``-`` and 8 hex digits of a digest of the id (with its
  type), so ``"a/b"`` and ``"a_b"`` stay apart.
* :func:`find_collision`: the first two names whose keys coincide (id ``1``
  and ``"1"``), to refuse them before anything is written.
"""
import hashlib
import re
from typing import Hashable, Iterable, Optional, Tuple

#: The longest id that is its own key.
MAX_PLAIN_LENGTH = 100
_PLAIN = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.-]*')
_UNSAFE = re.compile(r'[^A-Za-z0-9_.-]+')


def file_key(name) -> str:
    """A key for an image id or name that is safe as a file stem.

    Args:
        name: an image id (int or str) or a name (a file stem, a relative
            path); anything else is keyed by its ``repr``.

    Returns:
        ``str(name)`` when it is a plain name (see the module docstring),
        else its safe characters (``_`` for runs of others, at most 40) and
        ``-`` with 8 hex digits of a digest of the name and its type.
    """
    text = str(name)
    if len(text) <= MAX_PLAIN_LENGTH and _PLAIN.fullmatch(text):
        return text
    readable = _UNSAFE.sub('_', text).strip('._-')[:40] or 'key'
    tag = hashlib.sha256(f'{type(name).__name__}:{text!r}'.encode('utf-8')).hexdigest()[:8]
    return f'{readable}-{tag}'


def find_collision(named_keys: Iterable[Tuple[str, Hashable]]) -> Optional[Tuple[str, object,
                                                                                  object]]:
    """``(key, first, second)`` for the first key shared by two different
    names among ``(key, name)`` pairs, else None (the same name twice is no
    collision)."""
    seen = {}
    for key, name in named_keys:
        if key in seen and (type(seen[key]), seen[key]) != (type(name), name):
            return key, seen[key], name
        seen.setdefault(key, name)
    return None
