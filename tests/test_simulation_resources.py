"""What a fit takes it gives back: no joblib folders in /dev/shm, no processes that grow.

joblib 1.6 left one empty ``joblib_memmapping_folder_*`` per ``Parallel`` call in
/dev/shm until the interpreter exited (``sktilt.simulation._memmapping_arguments``).

Processes: loky keeps its worker pool alive between calls by design (a reusable
executor, shut down after 300 s idle), and a second fit reuses it. So "a fit leaves no
child process" is checked as: after the first fit, later fits (finished, failed,
with timeouts) leave exactly the same set of descendant processes, the pool's workers,
and no more than ``n_jobs`` of them; simulations' own processes (``timeout``) are gone.
"""

import glob
import os
import tempfile
import time

import numpy as np
import pytest

from sktilt import AVOSimulatorFitter, Critic, GaussianProposal, SimulationError, Simulator
from sktilt.simulation import SimulationWorkerError, simulate


def _folders() -> set:
    pattern = f"joblib_memmapping_folder_{os.getpid()}_*"
    return {p for root in ("/dev/shm", tempfile.gettempdir())
            for p in glob.glob(os.path.join(root, pattern))}


def _descendants(pid: int | None = None) -> set:
    """Live descendants of ``pid`` (this process), from /proc (zombies excluded)."""
    pid = os.getpid() if pid is None else pid
    parents = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if fields[0] != "Z":
            parents.setdefault(int(fields[1]), []).append(int(stat.split("/")[2]))
    found, todo = set(), [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _kind(pid: int) -> str:
    """A loky worker, a resource tracker (loky's or multiprocessing's), a fork server
    (a worker's, for simulations with a timeout), or the command line of another."""
    try:
        with open(f"/proc/{pid}/cmdline") as f:
            cmd = f.read()
    except OSError:
        return "gone"
    return ("worker" if "LokyProcess" in cmd else "tracker" if "resource_tracker" in cmd
            else "forkserver" if "multiprocessing.forkserver" in cmd
            else cmd.replace("\0", " "))


def _poisson(theta, random_state):
    if theta[0] > 3.0:  # raises for large rates: a failure with on_failure="raise"
        raise RuntimeError("rate too large")
    return random_state.poisson(np.exp(theta), size=1).astype(float)


def _fitter(gamma=1.0, **simulator):
    return AVOSimulatorFitter(Simulator(_poisson, **simulator),
                              GaussianProposal(loc=[1.5], scale=[1.0]), gamma=gamma,
                              max_iter=4, batch_size=16, critic=Critic(n_steps=2),
                              refinement=None, n_jobs=2,
                              random_state=0)


X_OBS = np.random.default_rng(0).poisson(5.0, size=(50, 1)).astype(float)


def _settled(expected: set, seconds: float = 10.0) -> set:
    """Descendants once the processes being torn down are gone (at most ``seconds``:
    a worker's simulation process ends ``_IDLE_SECONDS`` = 5 s after its last batch)."""
    deadline = time.monotonic() + seconds
    while (now := _descendants()) != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return now


@pytest.mark.filterwarnings("ignore")
def test_fits_leave_no_folders_and_no_new_processes():
    folders = _folders()
    _fitter().fit(X_OBS)  # starts loky's reusable pool, or reuses one
    _fitter(timeout=5.0).fit(X_OBS)  # starts each worker's fork server, once
    pool = _settled(set())
    kinds = [_kind(p) for p in pool]
    assert 1 <= kinds.count("worker") <= 2, kinds
    assert set(kinds) <= {"worker", "tracker", "forkserver"}, kinds
    # One fork server per worker, plus at most this process's own: multiprocessing keeps
    # one per process until exit, started by any earlier in-process simulation with a
    # timeout (another test's, in a full run). What matters is that nothing grows below.
    assert kinds.count("forkserver") <= kinds.count("worker") + 1
    _fitter().fit(X_OBS)
    with pytest.raises(SimulationError):  # a fit that raises
        _fitter(on_failure="raise", gamma=0.0).fit(X_OBS + 100)
    _fitter(timeout=5.0).fit(X_OBS)  # simulations in their own processes
    assert _folders() == folders
    assert _settled(pool) == pool


def test_a_dead_worker_leaves_no_folder():
    folders = _folders()
    with pytest.raises(SimulationWorkerError):
        simulate(_dies, np.arange(6.0)[:, None], seed=0, n_jobs=2, batch_size=1)
    assert _folders() == folders


def _dies(theta, random_state):
    if theta[0] == 3.0:
        os._exit(1)
    return theta


_FIT_AND_EXIT = """
import numpy as np
import pytest
from sktilt import AVOSimulatorFitter, Critic, GaussianProposal, SimulationError, Simulator

def poisson(theta, random_state):
    if theta[0] > 3.0:
        raise RuntimeError("rate too large")
    return random_state.poisson(np.exp(theta), size=1).astype(float)

def fitter(gamma=1.0, **simulator):
    return AVOSimulatorFitter(Simulator(poisson, **simulator),
                              GaussianProposal(loc=[1.5], scale=[1.0]), gamma=gamma,
                              max_iter=4, batch_size=16, critic=Critic(n_steps=2),
                              refinement=None, n_jobs=2, random_state=0)

if __name__ == "__main__":
    X = np.random.default_rng(0).poisson(5.0, size=(50, 1)).astype(float)
    fitter().fit(X)
    fitter(timeout=5.0).fit(X)
    try:
        fitter(on_failure="raise", gamma=0.0).fit(X + 100)
    except SimulationError:
        pass
    print("done")
"""


def test_a_process_that_fits_exits_without_leaks(tmp_path):
    # multiprocessing's resource tracker reports, at exit, the semaphores and shared
    # memory a process left behind ("There appear to be N leaked semaphore objects");
    # POSIX semaphores live in /dev/shm as sem.*: none may stay after the process.
    import subprocess
    import sys

    script = tmp_path / "fit_and_exit.py"
    script.write_text(_FIT_AND_EXIT)
    before = set(glob.glob("/dev/shm/sem.*")) | set(glob.glob("/dev/shm/joblib_*"))
    done = subprocess.run([sys.executable, "-W", "ignore::UserWarning", str(script)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("done")
    assert "leaked" not in done.stderr, done.stderr[-2000:]
    time.sleep(1.0)  # the resource tracker unlinks after the process has gone
    after = set(glob.glob("/dev/shm/sem.*")) | set(glob.glob("/dev/shm/joblib_*"))
    assert after <= before, sorted(after - before)
