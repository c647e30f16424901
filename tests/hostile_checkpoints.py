# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Checkpoint files that try to run code when loaded, built by hand.

Each gadget is a real PyTorch zip checkpoint whose ``data.pkl`` is replaced
with a pickle program assembled here opcode by opcode; if a load runs it, the
program creates the file ``marker`` (so a test asserts the file is absent):

* ``'getattr'``: reaches ``exec`` through ``builtins.getattr``
  (``getattr(getattr(getattr, '__self__'), 'exec')``), stores it as a
  ``collections.Counter``'s ``__setstate__`` with one BUILD and calls it with
  a second BUILD: what an allow-list holding ``getattr`` and ``Counter`` runs.
* ``'history_buffer'``: the same through mmengine's ``HistoryBuffer``, the
  type runner checkpoints need.
* ``'os_system'``: calls ``os.system`` directly (any loader that is not
  weights-only runs it).
"""
import io
import os
import shlex
import struct
import sys
import zipfile

import torch

GADGETS = ('getattr', 'history_buffer', 'os_system')


def _global(module: str, name: str) -> bytes:
    return b'c' + module.encode() + b'\n' + name.encode() + b'\n'


def _text(value: str) -> bytes:
    data = value.encode('utf-8')
    return b'X' + struct.pack('<I', len(data)) + data


_REDUCE, _BUILD, _TUPLE1, _TUPLE2, _EMPTY_TUPLE = b'R', b'b', b'\x85', b'\x86', b')'
_EMPTY_DICT, _SETITEM, _STOP, _PROTO2 = b'}', b's', b'.', b'\x80\x02'


def _exec_function() -> bytes:
    """Pushes ``exec``: getattr(getattr(getattr, '__self__'), 'exec')."""
    return (_global('builtins', 'getattr')
            + _global('builtins', 'getattr') + _global('builtins', 'getattr')
            + _text('__self__') + _TUPLE2 + _REDUCE
            + _text('exec') + _TUPLE2 + _REDUCE)


def _set_state_gadget(module: str, cls: str, code: str) -> bytes:
    return (_PROTO2 + _global(module, cls) + _EMPTY_TUPLE + _REDUCE
            + _EMPTY_DICT + _text('__setstate__') + _exec_function() + _SETITEM + _BUILD
            + _text(code) + _BUILD + _STOP)


def gadget_pickle(kind: str, marker: str) -> bytes:
    """The pickle program of gadget ``kind`` (module docstring)."""
    code = f'open({marker!r}, "w").write("ran")'
    if kind == 'getattr':
        return _set_state_gadget('collections', 'Counter', code)
    if kind == 'history_buffer':
        return _set_state_gadget('mmengine.logging.history_buffer', 'HistoryBuffer', code)
    if kind == 'os_system':
        command = f'{shlex.quote(sys.executable)} -c {shlex.quote(code)}'
        return _PROTO2 + _global('os', 'system') + _text(command) + _TUPLE1 + _REDUCE + _STOP
    raise ValueError(f'unknown gadget {kind!r}; one of {GADGETS}')


def write_gadget_checkpoint(path, kind: str, marker) -> str:
    """Write a PyTorch zip checkpoint at ``path`` whose pickle is gadget
    ``kind``, creating ``marker`` if it runs; returns ``str(path)``."""
    buffer = io.BytesIO()
    torch.save({'weight': torch.zeros(1)}, buffer)
    buffer.seek(0)
    out = io.BytesIO()
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(out, 'w', zipfile.ZIP_STORED) as dest:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename.endswith('/data.pkl'):
                data = gadget_pickle(kind, str(marker))
            dest.writestr(info.filename, data)
    with open(path, 'wb') as f:
        f.write(out.getvalue())
    return str(path)


def assert_did_not_run(marker) -> None:
    assert not os.path.exists(marker), f'a checkpoint ran code: {marker} exists'
