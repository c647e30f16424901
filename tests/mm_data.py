# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Tiny datasets written to a temp dir from generated scenes."""
from mmsamrefiner.synthetic.coco_collection import write_coco_collection
from mmsamrefiner.testing import write_label_map_collection

HEIGHT, WIDTH = 96, 128


def make_coco_dataset(root, num_images: int = 2, coarse: bool = False, seed: int = 0):
    """``root/images`` + ``root/instances.json``; returns the json path."""
    return write_coco_collection(str(root), num_images, coarse, seed, HEIGHT, WIDTH)


def make_seg_dataset(root, num_images: int = 2, coarse: bool = False, seed: int = 0):
    """``root/img_dir`` + ``root/ann_dir``; returns ``root``."""
    write_label_map_collection(str(root), num_images, coarse, seed, HEIGHT, WIDTH)
    return root
