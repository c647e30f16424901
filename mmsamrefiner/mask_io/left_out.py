# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Images that a pass over a refined collection (``tools/refine.py --eval``,
``--show-dir``) leaves out, and why.

Images whose refinement failed are left out (their output is the coarse input,
possibly malformed), and so are images whose masks cannot be read or decoded
by the pass itself (e.g. a malformed ground-truth annotation).  The pass goes
on with the others and says how many images it left out::

    eval: 2 images left out (failed: 2, 3; cannot be read: 5 (ground truth:
    annotation 7: polygon 0 has 2 point(s); ...))
"""
from typing import Dict, Iterable, Optional, Tuple

FAILED = 'failed'
UNREADABLE = 'cannot be read'


class LeftOut:
    """``{key: (kind, reason)}`` of the images left out of a pass.

    Args:
        records: the collection's records (``RecordBook.all``): those with
            status ``'failed'`` are left out from the start.
    """

    #: keys listed per kind in :meth:`message` (the rest are counted)
    max_listed = 10

    def __init__(self, records: Iterable[dict] = ()):
        self.images: Dict[str, Tuple[str, str]] = {}
        for record in records:
            if record.get('status') == 'failed':
                self.images[str(record['key'])] = (FAILED, str(record.get('reason')))

    def __contains__(self, key) -> bool:
        return str(key) in self.images

    def __len__(self) -> int:
        return len(self.images)

    def add(self, key, reason: str) -> None:
        """Leave out image ``key``, whose masks cannot be read: ``reason``."""
        self.images.setdefault(str(key), (UNREADABLE, reason))

    def reasons(self) -> Dict[str, str]:
        """``{key: 'failed: ...' or 'cannot be read: ...'}`` (for json reports)."""
        return {key: f'{kind}: {reason}' for key, (kind, reason) in self.images.items()}

    def message(self, what: str) -> Optional[str]:
        """One line for ``what`` (``'eval'``, ``'overlays'``), or None when no
        image was left out."""
        if not self.images:
            return None
        parts = []
        failed = [key for key, (kind, _) in self.images.items() if kind == FAILED]
        if failed:
            parts.append(f'{FAILED}: ' + self._listed(failed))
        unreadable = [f'{key} ({reason})' for key, (kind, reason) in self.images.items()
                      if kind == UNREADABLE]
        if unreadable:
            parts.append(f'{UNREADABLE}: ' + self._listed(unreadable, '; '))
        count = len(self.images)
        return (f'{what}: {count} image{"" if count == 1 else "s"} left out '
                f'({"; ".join(parts)})')

    def _listed(self, entries, separator: str = ', ') -> str:
        text = separator.join(entries[:self.max_listed])
        if len(entries) > self.max_listed:
            text += f'{separator}and {len(entries) - self.max_listed} more'
        return text
