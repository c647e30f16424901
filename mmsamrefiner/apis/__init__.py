# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""High-level entry points used by the tools."""
from .mask_collections import (
                               BinaryMaskCollection,
                               CocoCollection,
                               LabelMapCollection,
                               MaskCollection,
                               as_collection,
)
from .refine_collection import refine_collection, summarize

__all__ = [
    'refine_collection', 'summarize', 'MaskCollection', 'CocoCollection',
    'LabelMapCollection', 'BinaryMaskCollection', 'as_collection'
]
