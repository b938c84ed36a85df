"""Every example runs in fast mode (SKTILT_EXAMPLES_FAST=1) and prints what it claims."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("plot_*.py"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_fast(path, tmp_path):
    env = {**os.environ, "SKTILT_EXAMPLES_FAST": "1", "MPLBACKEND": "Agg",
           "SKTILT_OUT": str(tmp_path), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(path)], cwd=path.parent, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip(), "an example should print its key figures"
