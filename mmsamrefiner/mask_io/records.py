# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""What makes a run's outputs resumable: per-image records, the output lock,
and the error of an output that cannot be written.

Every writer of :mod:`.refined_masks` keeps its records in
``<root>/.records/<key>.json``, one per image, written last, so a record
means the image is finished.  A record binds the result to what produced it
and to what it wrote:

* ``status``: ``'refined'`` or ``'failed'`` (with ``reason``, ``ann_id`` when an
  annotation is at fault, and ``transient``: True for errors of the run, such
  as running out of memory, rather than of the input);
* ``input``: a digest of what was refined (a collection: the source's
  ``input_digest`` of the image, its coarse masks or annotations and the
  image file's name, size and mtime; a prediction: the prediction and the
  image);
* ``settings``: a digest of the refiner's fingerprint (settings and weights:
  :func:`~mmsamrefiner.refiner.refiner.fingerprint_of`) and of the format's
  or the hook's options;
* ``outputs``: ``{path relative to root: digest of its content}``;
* ``img_path``, ``num_masks``, ``num_empty``, ``seconds``.

(digests: :mod:`mmsamrefiner.utils.digest`)

:meth:`RecordBook.check` reuses a record only if input and settings digests
match, every output it lists still has its digest and it is not a transient
failure; anything else is redone.

:class:`OutputLock` (``<root>/.lock``) keeps two runs from writing the same
output at once.  A file that cannot be written (disk full, read-only, no
permission) raises :class:`OutputWriteError` naming it (:func:`writing`).
"""
import contextlib
import fcntl
import glob
import json
import os
import os.path as osp
import socket
import time
from typing import Iterable, List, Optional, Tuple

from mmsamrefiner.utils.atomic import atomic_write_bytes
from mmsamrefiner.utils.digest import digest_file

#: why :meth:`RecordBook.check` does not reuse a record
NEW, INPUT_CHANGED, SETTINGS_CHANGED, OUTPUT_CHANGED, RETRY = (
    'new', 'input changed', 'settings changed', 'output missing or changed',
    'failed transiently before')


class OutputWriteError(OSError):
    """An output file cannot be written or removed (disk full, read-only file
    system, no permission, quota): ``filename`` is the file, ``errno`` and
    ``strerror`` say why."""


@contextlib.contextmanager
def writing(path: str):
    """Inside, an ``OSError`` becomes an :class:`OutputWriteError` naming
    ``path`` (the error of a full disk names no file)."""
    try:
        yield
    except OutputWriteError:
        raise
    except OSError as error:
        strerror = error.strerror or (os.strerror(error.errno) if error.errno else str(error))
        raise OutputWriteError(error.errno, strerror, path) from error


def _output_digest(path: str) -> Optional[str]:
    """Digest of an output's content; None if it cannot be read (then it does
    not match its record)."""
    try:
        return digest_file(path)
    except OSError:
        return None


class RecordBook:
    """Per-image completion records under ``<root>/.records``; the outputs
    they list are relative to ``root``."""

    def __init__(self, root: str):
        self.root = root
        self.dir = osp.join(root, '.records')

    def path(self, key: str) -> str:
        return osp.join(self.dir, key + '.json')

    def read(self, key: str) -> Optional[dict]:
        """The record of ``key``; None if there is none (or it is unreadable)."""
        try:
            with open(self.path(key)) as f:
                record = json.load(f)
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def check(self, key: str, input_digest: str, settings: str) -> Tuple[Optional[dict], str]:
        """``(record, '')`` if ``key``'s record can be reused, else ``(None,
        why)`` with ``why`` one of :data:`NEW`, :data:`INPUT_CHANGED`,
        :data:`SETTINGS_CHANGED`, :data:`OUTPUT_CHANGED`, :data:`RETRY`."""
        record = self.read(key)
        if record is None:
            return None, NEW
        if record.get('input') != input_digest:
            return None, INPUT_CHANGED
        if record.get('settings') != settings:
            return None, SETTINGS_CHANGED
        outputs = record.get('outputs')
        if not isinstance(outputs, dict) or any(
                _output_digest(osp.join(self.root, relpath)) != digest
                for relpath, digest in outputs.items()):
            return None, OUTPUT_CHANGED
        if record.get('status') != 'refined' and (record.get('status') != 'failed'
                                                  or record.get('transient', True)):
            return None, RETRY
        return record, ''

    def write(self, key: str, **record) -> None:
        with writing(self.path(key)):
            atomic_write_bytes(self.path(key), json.dumps(dict(key=key, **record)).encode())

    def all(self, keys: Optional[Iterable[str]] = None) -> List[dict]:
        """The records of ``keys`` (those that exist), or all records."""
        if keys is None:
            paths = sorted(glob.glob(osp.join(self.dir, '*.json')))
        else:
            paths = [self.path(key) for key in keys]
        records = []
        for path in paths:
            try:
                with open(path) as f:
                    records.append(json.load(f))
            except FileNotFoundError:
                continue
        return records


class OutputBusyError(RuntimeError):
    """Another run holds the :class:`OutputLock` of an output."""


class OutputLock:
    """An exclusive lock on an output (``<root>/.lock``, ``flock``), held by
    one process of a run (rank 0) for the whole run; it goes with the process.

    :meth:`acquire` creates ``root`` (so an unwritable output is found
    here) and raises :class:`OutputBusyError` naming the holder if another
    run has it.
    """

    def __init__(self, root: str):
        self.root = root
        self.path = osp.join(root, '.lock')
        self.fd: Optional[int] = None

    def acquire(self) -> 'OutputLock':
        os.makedirs(self.root, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode('utf-8', 'replace').strip() or 'unknown'
            os.close(fd)
            raise OutputBusyError(
                f'{self.root} is being written by another run ({holder}); wait for it to '
                'finish or give this run another --out') from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f'pid {os.getpid()} on {socket.gethostname()}, since '
                      f'{time.strftime("%Y-%m-%d %H:%M:%S")}'.encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> 'OutputLock':
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
