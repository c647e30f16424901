# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Fixtures of the tools' tests."""
import pytest

from .._tiny import tiny_refiner_config
from .refine_helpers import refine_tool


@pytest.fixture
def config(tmp_path, tiny_sam_checkpoint):
    """A refiner config file (on the tests' tiny SAM) for tools that take one."""
    return tiny_refiner_config(tmp_path, tiny_sam_checkpoint)


@pytest.fixture
def no_model(monkeypatch):
    """Fail the test if tools/refine.py builds the refiner."""
    def build(args):
        raise AssertionError('the model was loaded')
    monkeypatch.setattr(refine_tool, 'build_refiner', build)
