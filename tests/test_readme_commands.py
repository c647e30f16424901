# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""The README's runnable snippets run as written: the bash examples in a
workspace laid out as the repository (``.venv/bin/python``, ``tools/``,
``configs/``), and what they print is what the README shows.  The python
snippets (the hook and transform lines) are run by the MM tests
(``tests/mm_runs.py``, ``tests/test_datasets/pipelines.py``)."""
import os
import os.path as osp
import re
import subprocess
import sys

import pytest

from .readme_snippets import README, snippet_names, snippet_text

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
PYTHON_SNIPPETS = {'mmdet-hook', 'mmseg-hook', 'mmdet-transform'}
BASH_SNIPPETS = {'refine-example', 'adapt-example'}


def test_every_readme_snippet_is_run_by_a_test():
    assert set(snippet_names()) == PYTHON_SNIPPETS | BASH_SNIPPETS


@pytest.fixture
def workspace(tmp_path):
    """A folder laid out as the repository for the README's commands: its
    ``.venv/bin/python`` runs this interpreter on this tree."""
    for name in ('tools', 'configs'):
        os.symlink(osp.join(ROOT, name), tmp_path / name)
    python = tmp_path / '.venv' / 'bin' / 'python'
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    python.chmod(0o755)
    return tmp_path


def run_snippet(name, cwd):
    env = dict(os.environ, PYTHONPATH=ROOT)
    done = subprocess.run(['bash', '-e', '-c', snippet_text(name, 'bash')], cwd=cwd, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout


@pytest.mark.slow
def test_the_refine_example_runs_as_written_and_prints_the_readme_table(workspace):
    out = run_snippet('refine-example', workspace)
    readme = open(README, encoding='utf-8').read()
    after = readme.split('<!-- snippet: refine-example')[1]
    rows = re.findall(r'^\| (?:coarse|refined) \|.*$', after, re.M)[:2]
    assert len(rows) == 2
    for row in rows:  # the figures the README quotes are this run's
        assert row in out, out
    assert (workspace / 'work_dirs' / 'refined.json').is_file()
    assert len(os.listdir(workspace / 'work_dirs' / 'show')) == 20


@pytest.mark.slow
def test_the_adapt_example_runs_as_written(workspace):
    run_snippet('adapt-example', workspace)
    assert (workspace / 'work_dirs' / 'adapt_toy' / 'iou_adapter.pth').is_file()


def test_the_docs_config_example_inherits_a_copy_of_the_shipped_configs(tmp_path):
    from mmengine.config import Config
    docs = open(osp.join(ROOT, 'docs', 'mm_configs.md'), encoding='utf-8').read()
    example = re.search(r'```python\n(# my_configs/(\S+)\n.*?)```', docs, re.S)
    subprocess.run([sys.executable, '-m', 'mmsamrefiner.configs', 'copy',
                    str(tmp_path / 'my_configs' / 'mmsamrefiner')], check=True,
                   env=dict(os.environ, PYTHONPATH=ROOT))
    path = tmp_path / 'my_configs' / example.group(2)
    path.write_text(example.group(1))
    cfg = Config.fromfile(str(path))
    (hook, ) = cfg.custom_hooks
    assert hook.refiner.sam.arch == 'vit_b' and 'sam' not in cfg
    assert cfg.model.type == 'MaskRCNN'
