# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""The repository's ``tools/*.py`` scripts as modules, for tests that call
their functions in this process."""
import importlib.util
import os.path as osp
import sys

TOOLS = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'tools')


def load_tool(name: str):
    """``tools/<name>.py`` imported from its path as the module
    ``tools_<name>`` (once: later calls give the same module, so a test's
    monkeypatch reaches every user)."""
    module_name = f'tools_{name}'
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, osp.join(TOOLS, name + '.py'))
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[module_name]
            raise
    return sys.modules[module_name]
