"""The README runs as written: each python block as a script file, the way a user runs
it (``python script.py`` from an empty folder), prints what the README says; its shell
commands work on a fresh machine."""

import functools
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text()
ALL_BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)
BASH = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
# The cluster script is the AVO quickstart again, on a dask LocalCluster.
BLOCKS = [b for b in ALL_BLOCKS if "LocalCluster" not in b]
CLUSTER = [b for b in ALL_BLOCKS if "LocalCluster" in b]


@functools.cache
def _run(code):
    # A fresh folder, a file, `python script.py`: what a user pasting the block does
    # (a script read with -c or on stdin cannot start dask's worker processes).
    import tempfile

    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "script.py").write_text(code)
        proc = subprocess.run([sys.executable, "script.py"], cwd=folder, env=env,
                              capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tuple(proc.stdout.split())


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
    # converged_, the rate and its 95 % interval, which holds the MLE (the mean, 7.0x)
    # and is about as wide as the MLE's (+- 1.96 x 0.059)
    out = _run(BLOCKS[2])  # whitespace-separated tokens
    assert out[-4] == "True"
    lam = float(out[-3].strip("[]"))
    low, high = (float(v.strip("[]")) for v in out[-2:])
    assert lam == pytest.approx(7.0, abs=0.2)
    assert low < lam < high
    assert 2 * 1.96 * 0.059 * 0.9 < high - low < 2 * 1.96 * 0.059 * 2


def test_cluster_script_runs_as_written_on_a_local_cluster():
    # The guarded script, verbatim, on a dask LocalCluster: the same result as the
    # quickstart's loky workers (one seed per simulation, whatever the backend).
    assert len(CLUSTER) == 1
    assert 'if __name__ == "__main__":' in CLUSTER[0]
    assert _run(CLUSTER[0])[-1] == _run(BLOCKS[2])[-3]


def test_shell_commands_work_without_an_activated_environment():
    # One line sets up a fresh machine and runs the main job, one runs the tests (the
    # line .ci/run calls); the command is called from .venv/bin, which is not on PATH.
    setup, tests = BASH[0].strip(), BASH[1].strip()
    assert setup == ('python3 -m venv .venv && .venv/bin/pip install torch==2.13.0 '
                     '-e ".[test,docs]" && .venv/bin/sktilt energy-peaks')
    assert tests == ".venv/bin/python -m pytest -q"
    assert tests in (ROOT / ".ci" / "run").read_text()
    for block in BASH:
        for line in block.splitlines():
            assert not re.match(r"\s*sktilt\b", line), line
            assert "pip install" not in line or "torch==2.13.0" in line, line
