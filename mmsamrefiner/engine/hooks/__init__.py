# Copyright (c) mmsamrefiner contributors. All rights reserved.
from .samrefiner_hook import SAMRefinerHook

__all__ = ['SAMRefinerHook']
