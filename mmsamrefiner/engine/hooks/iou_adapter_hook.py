# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""``SaveIoUAdapterHook``: write the trained IoU adapter on its own file."""
import os.path as osp
from typing import Optional

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmsamrefiner.registry import HOOKS


@HOOKS.register_module()
class SaveIoUAdapterHook(Hook):
    """Save the adapter of an :class:`IoUAdapterModel` (kilobytes, not SAM).

    The main process writes ``<out_dir or work_dir>/<filename>`` after every
    training epoch (so an interrupted run keeps the last one) and at the end
    of training.  The refiner loads it with
    ``dict(type='SAMRefiner', ..., iou_adapter=dict(checkpoint=PATH))``.

    Args:
        filename: name of the file.
        out_dir: folder; default the runner's ``work_dir``.
    """
    priority = 'LOW'

    def __init__(self, filename: str = 'iou_adapter.pth', out_dir: Optional[str] = None) -> None:
        self.filename = filename
        self.out_dir = out_dir

    def path(self, runner) -> str:
        return osp.join(self.out_dir or runner.work_dir, self.filename)

    def save(self, runner) -> None:
        if not is_main_process():
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not hasattr(model, 'iou_adapter'):
            raise TypeError(f'SaveIoUAdapterHook needs an IoUAdapterModel, got '
                            f'{type(model).__name__}')
        model.iou_adapter.save(self.path(runner))
        runner.logger.info(f'IoU adapter saved to {self.path(runner)}')

    def after_train_epoch(self, runner) -> None:
        self.save(runner)

    def after_train(self, runner) -> None:
        self.save(runner)
