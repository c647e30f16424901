# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Joining several CPU processes, for the tools (``refine.py``, ``adapt.py``)."""
import torch


def init_cpu_processes(launcher: str) -> None:
    """Join torchrun's CPU processes with gloo (mmengine's ``init_dist``
    selects a CUDA device, so it cannot do this); nothing for ``'none'``.

    Raises:
        ValueError: a launcher other than ``'pytorch'`` (torchrun) on CPUs.
    """
    if launcher == 'none':
        return
    if launcher != 'pytorch':
        raise ValueError(f'CPU processes are started with torchrun (--launcher pytorch, '
                         f'tools/dist_*.sh); got --launcher {launcher}')
    torch.distributed.init_process_group(backend='gloo')
