# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Data-pipeline parts: the on-the-fly refinement transform."""
from .transforms import RefineCoarseMasks

__all__ = ['RefineCoarseMasks']
