# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""For the tests and the benchmarks only (as ``mmdet.testing``): nothing in
the package uses this code.

* :mod:`.naive`: SAMRefiner's prompt mining and upscaling done the authors'
  way, mask by mask on full-size maps: the speed benchmark's baseline and a
  second implementation the batched code must agree with;
* :func:`distance_to_background`: the whole-image form of the refiner's
  box-restricted distance transform;
* :func:`write_label_map_collection`: generated scenes as an mmseg-style
  dataset (images + PNG label maps);
* :func:`count_host_syncs`: the calls that would sync host and device on a
  GPU, counted by name on any device.
* :class:`StandInSAM`: a SAM that costs nothing with a real SAM's frames
  (the speed benchmark's host ceiling).
"""
from .distance import distance_to_background
from .label_map_collection import write_label_map_collection
from .naive import elastic_box_one_mask, mine_mask_by_mask, upscale_all_then_select
from .stand_in_sam import StandInSAM
from .syncs import count_host_syncs

__all__ = [
    'write_label_map_collection', 'distance_to_background', 'elastic_box_one_mask',
    'mine_mask_by_mask', 'upscale_all_then_select', 'count_host_syncs', 'StandInSAM'
]
