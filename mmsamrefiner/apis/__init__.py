# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""High-level entry points used by the tools."""
from .refine_collection import refine_collection, summarize

__all__ = ['refine_collection', 'summarize']
