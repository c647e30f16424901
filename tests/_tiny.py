# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""A refiner config file using the tests' tiny SAM, for tools that take configs."""
from .tiny_models import TINY_SAM_ARCH


def tiny_refiner_config(tmp_path, checkpoint: str, iters: int = 2) -> str:
    path = tmp_path / 'tiny_refiner.py'
    path.write_text(
        f'refiner = dict(type="SAMRefiner", iters={iters}, sam=dict(type="SAM", '
        f'arch={dict(TINY_SAM_ARCH)!r}, checkpoint={checkpoint!r}))\n')
    return str(path)
