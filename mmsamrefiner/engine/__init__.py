# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""The MM layer's runtime parts.

* ``hooks/``: :class:`SAMRefinerHook` (settings and loop wiring, thin) and
  :class:`SaveIoUAdapterHook`;
* :mod:`.prediction_refiner`: wrapping ``val_step``/``test_step`` and
  refining a loop's predictions;
* :mod:`.prediction_kinds`: what depends on the kind of prediction (mmdet
  instances, mmseg label maps): refining, digesting, naming, writing and
  reading back one, an object per kind;
* :mod:`.pseudo_label_export`: exporting refined pseudo-labels with keys, and
  reading them back on a re-run;
* :mod:`.loop_report`: a loop's counts and log lines;
* :mod:`.teacher`: refining a semi-supervised teacher's pseudo-instances;
* :mod:`.sample_refiner`: refining one mmdet/mmseg data sample.
"""
from .hooks import SAMRefinerHook, SaveIoUAdapterHook
from .sample_refiner import refine_det_sample, refine_seg_sample, sample_image

__all__ = ['SAMRefinerHook', 'SaveIoUAdapterHook', 'refine_det_sample', 'refine_seg_sample',
           'sample_image']
