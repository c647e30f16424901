# Copyright (c) mmsamrefiner contributors. All rights reserved.
from .refine_coarse_masks import RefineCoarseMasks, masks_to_polygons

__all__ = ['RefineCoarseMasks', 'masks_to_polygons']
