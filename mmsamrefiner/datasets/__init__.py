# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Data: coarse-mask datasets (SAMRefiner++) and the on-the-fly refinement transform."""
from .coarse_mask_dataset import CoarseMaskDataset, CocoCoarseMaskDataset, LabelMapCoarseMaskDataset
from .transforms import RefineCoarseMasks

__all__ = [
    'RefineCoarseMasks', 'CoarseMaskDataset', 'CocoCoarseMaskDataset',
    'LabelMapCoarseMaskDataset'
]
