# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""What the tests of tools/refine.py share: the tool as a module, a run through
its own entry points and its exit status, generated collections, json files,
the files under a folder, big but cheap PNGs."""
import json
import os
import os.path as osp
import struct
import zlib

from ..mm_data import make_coco_dataset
from .tool_modules import load_tool

ROOT = osp.dirname(osp.dirname(osp.dirname(__file__)))
refine_tool = load_tool('refine')


def run(argv):
    """tools/refine.py with ``argv``, in this process."""
    return refine_tool.run(refine_tool.parse_args(argv))


def coco_collection(root, num_images=3):
    """A generated collection: ``(img_dir, coarse json, ground-truth json)``."""
    gt = make_coco_dataset(root / 'gt', num_images=num_images)
    coarse = make_coco_dataset(root / 'coarse', num_images=num_images, coarse=True)
    return str(root / 'coarse' / 'images'), coarse, gt


def load(path):
    with open(path) as f:
        return json.load(f)


def save(path, obj):
    with open(path, 'w') as f:
        json.dump(obj, f)


def exit_status(argv):
    """tools/refine.py's ``main`` with ``argv`` (on the CPU): its exit status
    (0 when it returns)."""
    try:
        refine_tool.main(list(argv) + ['--device', 'cpu'])
    except SystemExit as exit_info:
        return exit_info.code
    return 0


def files_under(root):
    """Every file (and symbolic link) under ``root``, as paths relative to it."""
    found = set()
    for folder, _, names in os.walk(root):
        found.update(osp.relpath(osp.join(folder, name), root) for name in names)
    return found


def write_big_png(path, height, width, palette=False):
    """A ``height`` x ``width`` PNG of zeros, 1 bit per pixel (grey, or palette
    with ``palette``), compressed row by row: a small file whose header
    announces many pixels, written without an image of that size in memory."""
    def chunk(kind, data):
        return (struct.pack('>I', len(data)) + kind + data +
                struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff))

    header = struct.pack('>IIBBBBB', width, height, 1, 3 if palette else 0, 0, 0, 0)
    compressor = zlib.compressobj()
    row = bytes(1 + (width + 7) // 8)  # filter byte, then the packed bits
    data = b''.join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    with open(path, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header) +
                (chunk(b'PLTE', bytes(6)) if palette else b'') + chunk(b'IDAT', data) +
                chunk(b'IEND', b''))
