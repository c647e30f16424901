# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""High-level entry points used by the tools: :func:`refine_collection` (what
``tools/refine.py`` runs) and :func:`summarize`.  The collections it refines
are in :mod:`mmsamrefiner.mask_io.mask_collections`."""
from .refine_collection import refine_collection, summarize

__all__ = ['refine_collection', 'summarize']
