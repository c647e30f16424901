# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""tools/benchmark_refine_checkouts.sh: alternating runs, medians, the masks
of the two checkouts compared."""
import os
import subprocess
import sys

from .refine_helpers import ROOT


def test_one_checkout_against_itself_gives_the_same_masks(tmp_path):
    subprocess.run([sys.executable, 'tools/make_synthetic_collection.py', str(tmp_path / 'c'),
                    '--images', '2', '--height', '96', '--width', '128'], cwd=ROOT, check=True,
                   capture_output=True)
    done = subprocess.run(['bash', 'tools/benchmark_refine_checkouts.sh', ROOT, ROOT,
                           str(tmp_path / 'c'), '1'], cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, PYTHON=sys.executable))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(' (')[0] for line in lines[:2]] == ['run 1 A', 'run 1 B']
    assert 'of A\'s time' in lines[2]
    assert lines[3].startswith('masks ') and lines[3].endswith('identical {0}/{0}'.format(
        lines[3].split()[1].rstrip(':')))
