# Copyright (c) mmsamrefiner contributors. All rights reserved.
from .iou_adapter_hook import SaveIoUAdapterHook
from .samrefiner_hook import SAMRefinerHook

__all__ = ['SAMRefinerHook', 'SaveIoUAdapterHook']
