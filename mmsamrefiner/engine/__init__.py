# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""The MM layer's runtime parts: the refinement hook and sample helpers."""
from .hooks import SAMRefinerHook, SaveIoUAdapterHook
from .sample_refiner import refine_det_sample, refine_seg_sample, sample_image

__all__ = ['SAMRefinerHook', 'SaveIoUAdapterHook', 'refine_det_sample', 'refine_seg_sample', 'sample_image']
