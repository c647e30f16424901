# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""What the tests of tools/refine.py share: the tool as a module, a run through
its own entry points, generated collections, json files."""
import json
import os.path as osp
import sys

from ..mm_data import make_coco_dataset

ROOT = osp.dirname(osp.dirname(osp.dirname(__file__)))
sys.path.insert(0, osp.join(ROOT, 'tools'))
import refine as refine_tool  # noqa: E402


def run(argv, after_image=None):
    """tools/refine.py with ``argv``, in this process."""
    return refine_tool.run(refine_tool.parse_args(argv), after_image=after_image)


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
