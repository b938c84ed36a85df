"""The README's quickstart runs as written and prints what it says."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).parents[1] / "README.md"
ALL_BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
# The cluster snippet continues the AVO quickstart (it uses its fitter and X_obs).
BLOCKS = [b for b in ALL_BLOCKS if "LocalCluster" not in b]
CLUSTER = [b for b in ALL_BLOCKS if "LocalCluster" in b]


def _run(code):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.split()


def test_readme_has_the_three_quickstarts():
    assert len(BLOCKS) == 3
    assert "BoltzmannTuner" in BLOCKS[0] and "AVOSimulatorFitter" in BLOCKS[2]
    assert "GaussianMixture" in BLOCKS[1] and "constraints" in BLOCKS[1]


def test_boltzmann_quickstart():
    beta, kl, criterion_mean = map(float, _run(BLOCKS[0]))
    assert beta > 0 and kl == pytest.approx(4.605, rel=0.05) and criterion_mean > 0


def test_sklearn_base_with_a_constraint():
    data_mean, tuned_mean, proline = map(float, _run(BLOCKS[1]))
    assert data_mean == pytest.approx(13.0, abs=0.01)
    assert tuned_mean > data_mean + 1.0
    # At most the median (673.5 mg/l), within the tuner's tolerance (2 % of sd 315).
    assert proline <= 673.5 + 0.02 * 315


def test_avo_quickstart():
    out = _run(BLOCKS[2])
    lam = float(out[-1].strip("[]"))
    assert lam == pytest.approx(7.0, abs=0.5)


def test_cluster_snippet_runs_as_written_on_a_local_cluster():
    assert len(CLUSTER) == 1
    setup = (
        "import numpy as np\n"
        "from sktilt import AVOSimulatorFitter, GaussianProposal\n"
        "from sktilt.datasets import gaussian_location_simulator\n"
        "X_obs = np.random.default_rng(0).normal(size=(300, 2))\n"
        "fitter = AVOSimulatorFitter(gaussian_location_simulator, GaussianProposal("
        "[0.5, 0.5], [1.0, 1.0]), max_iter=5, batch_size=32, random_state=0)\n"
        "alone = fitter.fit(X_obs).theta_.copy()\n")
    check = "\nassert np.array_equal(fitter.theta_, alone)\nprint('same')\n"
    code = "if __name__ == '__main__':\n" + "\n".join(
        "    " + line for line in (setup + CLUSTER[0] + check).splitlines())
    assert _run(code)[-1] == "same"
