# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""tools/benchmark_speed.py --upscale-bench: both modes run, their masks are
checked equal, and the table comes out."""
import re
import sys

from .tool_modules import load_tool


def test_upscale_bench_times_both_modes_on_a_small_image(monkeypatch, capsys):
    bench = load_tool('benchmark_speed')
    monkeypatch.setattr(sys, 'argv', ['benchmark_speed.py', '--upscale-bench', '--height', '96',
                                      '--width', '128', '--runs', '1', '--warmup', '0',
                                      '--device', 'cpu'])
    bench.main()
    out = capsys.readouterr().out
    assert '96x128 image' in out and 'median of 7 runs' in out
    row = out.strip().splitlines()[-1]
    assert re.fullmatch(r'\| [\d.]+ \| [\d.]+ \| [\d.]+x \|', row), row
