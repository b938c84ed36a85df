"""The README's quickstart runs as written and prints what it says."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).parents[1] / "README.md"
# The cluster snippet needs a scheduler's address; tests/test_avo.py and
# tests/test_simulation.py run the same code on a real distributed.LocalCluster.
BLOCKS = [b for b in re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
          if "scheduler-address" not in b]


def _run(code):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.split()


def test_readme_has_the_two_quickstarts():
    assert len(BLOCKS) == 2
    assert "BoltzmannTuner" in BLOCKS[0] and "AVOSimulatorFitter" in BLOCKS[1]


def test_boltzmann_quickstart():
    beta, kl, criterion_mean = map(float, _run(BLOCKS[0]))
    assert beta > 0 and kl == pytest.approx(4.605, rel=0.05) and criterion_mean > 0


def test_avo_quickstart():
    out = _run(BLOCKS[1])
    lam = float(out[-1].strip("[]"))
    assert lam == pytest.approx(7.0, abs=0.5)
