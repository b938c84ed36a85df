"""The joblib simulation engine: reproducibility across backends, batching, faults."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import joblib
import numpy as np
import pytest

import sktilt.simulation as simulation
from sktilt import SimulationError, SimulationWorkerError, simulate


def noisy(theta, random_state):
    return theta + random_state.standard_normal(theta.shape)


def noisy_batch(thetas, random_state):
    return thetas + random_state.standard_normal(thetas.shape)


def faulty(theta, random_state):
    """Raises for theta < -1, NaN for theta > 1, wrong shape for |theta| in (0.5, 1]."""
    t = theta[0]
    if t < -1:
        raise RuntimeError("simulator crashed")
    if t > 1:
        return np.array([np.nan])
    if abs(t) > 0.5:
        return np.zeros(3)
    return theta + random_state.standard_normal(1)


def die_at_three(theta, random_state):
    if theta[0] == 3.0:
        os._exit(1)  # a hard crash of the worker process
    return theta


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


THETAS = np.linspace(-2, 2, 50)[:, None]


@pytest.mark.parametrize("simulator, vectorized", [(noisy, False), (noisy_batch, True)])
def test_identical_results_for_sequential_loky_and_dask(simulator, vectorized, dask_client):
    ref = simulate(simulator, THETAS, seed=5, n_jobs=1, vectorized=vectorized).X
    loky = simulate(simulator, THETAS, seed=5, n_jobs=2, vectorized=vectorized).X
    with joblib.parallel_config(backend="dask"):
        dask = simulate(simulator, THETAS, seed=5, n_jobs=-1, vectorized=vectorized).X
    with joblib.parallel_config(backend="threading", n_jobs=2):
        threads = simulate(simulator, THETAS, seed=5, vectorized=vectorized).X
    np.testing.assert_array_equal(ref, loky)
    np.testing.assert_array_equal(ref, dask)
    np.testing.assert_array_equal(ref, threads)
    assert not np.array_equal(ref, simulate(simulator, THETAS, seed=6, n_jobs=1,
                                            vectorized=vectorized).X)


def test_one_seed_sequence_child_per_simulation():
    """Simulation i uses default_rng(SeedSequence(seed).spawn(n)[i]), whatever the batch."""
    children = np.random.SeedSequence(11).spawn(len(THETAS))
    expected = np.array([noisy(t, np.random.default_rng(c)) for t, c in zip(THETAS, children)])
    for batch_size in (1, 7, 50):
        res = simulate(noisy, THETAS, seed=11, batch_size=batch_size)
        np.testing.assert_array_equal(res.X, expected)


def test_batches_many_thetas_per_task(monkeypatch):
    calls = []
    real = simulation._run_batch

    def counting(simulator, thetas, *args):
        calls.append(len(thetas))
        return real(simulator, thetas, *args)

    monkeypatch.setattr(simulation, "_run_batch", counting)
    with joblib.parallel_config(backend="threading"):
        simulate(noisy, THETAS, seed=0, n_jobs=2)
    assert sum(calls) == len(THETAS)
    assert len(calls) == 8  # 4 tasks per worker, not one per simulation


def test_faults_are_recorded_and_dropped():
    res = simulate(faulty, THETAS, seed=0, n_features=1)
    t = THETAS[:, 0]
    expected_ok = np.abs(t) <= 0.5
    np.testing.assert_array_equal(res.ok, expected_ok)
    assert res.X.shape == (expected_ok.sum(), 1)
    np.testing.assert_array_equal(res.failed_parameters, THETAS[~expected_ok])
    errors = dict(zip(res.failed_parameters[:, 0], res.errors))
    assert errors[-2.0] == "RuntimeError: simulator crashed"
    assert errors[2.0] == "non-finite output (NaN or inf)"
    assert errors[t[t > 0.5][0]] == "output of shape (3,), expected (1,)"


def test_raise_mode_names_the_failed_theta():
    with pytest.raises(SimulationError, match=r"theta=\[-2.0\].*simulator crashed") as info:
        simulate(faulty, THETAS, seed=0, n_features=1, on_failure="raise")
    assert len(info.value.errors) == info.value.result.n_failed > 0


def test_vectorized_faults():
    def bad_rows(thetas, random_state):
        out = thetas.copy()
        out[thetas[:, 0] > 1] = np.inf
        return out

    res = simulate(bad_rows, THETAS, seed=0, vectorized=True, n_features=1)
    np.testing.assert_array_equal(res.ok, THETAS[:, 0] <= 1)
    res = simulate(noisy_batch, THETAS, seed=0, vectorized=True, n_features=2)
    assert res.n_failed == len(THETAS)
    assert res.errors[0] == "vectorized output of shape (7, 1), expected (7, 2)"


def test_width_inferred_from_first_success():
    def ragged(theta, random_state):
        return np.zeros(2 if theta[0] < 0 else 3)

    res = simulate(ragged, THETAS, seed=0)
    assert res.X.shape == ((THETAS[:, 0] < 0).sum(), 2)
    assert res.errors[0] == "output of shape (3,), expected (2,)"


def test_dead_worker_is_reported_not_retried():
    thetas = np.arange(8.0)[:, None]
    with pytest.raises(SimulationWorkerError, match="worker died"):
        simulate(die_at_three, thetas, seed=0, n_jobs=2, batch_size=1)


def test_bad_arguments():
    with pytest.raises(TypeError, match="simulator must be callable"):
        simulate(3, THETAS)
    with pytest.raises(ValueError, match="on_failure"):
        simulate(noisy, THETAS, on_failure="ignore")


# ----------------------------------------------------------------- failures of any kind
class Fatal(BaseException):
    """Not an Exception: a simulator's own BaseException is still a failed simulation."""


def exits(theta, random_state):
    if theta[0] < 0:
        sys.exit(3)
    if theta[0] > 1:
        raise Fatal("deep trouble")
    return theta


@pytest.mark.parametrize("timeout", [None, 30])
def test_system_exit_and_base_exceptions_are_failed_simulations(timeout):
    res = simulate(exits, THETAS, seed=0, n_features=1, timeout=timeout)
    t = THETAS[:, 0]
    np.testing.assert_array_equal(res.ok, (t >= 0) & (t <= 1))
    errors = dict(zip(res.failed_parameters[:, 0], res.failures))
    assert errors[-2.0].kind == errors[2.0].kind == "exception"
    assert str(errors[-2.0]) == "SystemExit: 3"
    assert str(errors[2.0]) == "Fatal: deep trouble"
    assert errors[2.0].theta.tolist() == [2.0]  # each failure carries its theta


def interrupts(theta, random_state):
    if theta[0] > 0:
        raise KeyboardInterrupt
    return theta


@pytest.mark.parametrize("timeout", [None, 30])
def test_keyboard_interrupt_propagates(timeout):
    with pytest.raises(KeyboardInterrupt):
        simulate(interrupts, THETAS, seed=0, timeout=timeout)


NOT_NUMBERS = {
    "str": "1.0", "list of str": ["1.0", "2.0"], "bytes": b"1", "dict": {"x": 1.0},
    "None": None, "object array": np.array([1.0, None]), "complex": np.array([1 + 2j]),
    "ragged": [[1.0], [1.0, 2.0]], "dates": np.array(["2024-01-01"], dtype="M8[D]"),
}


def returns(theta, random_state):
    return NOT_NUMBERS[list(NOT_NUMBERS)[int(theta[0])]]


def test_strings_and_objects_are_not_numeric():
    thetas = np.arange(len(NOT_NUMBERS), dtype=float)[:, None]
    res = simulate(returns, thetas, seed=0)
    assert not res.ok.any()
    assert [f.kind for f in res.failures] == ["not-numeric"] * len(NOT_NUMBERS)
    assert res.errors[0] == "output is not numeric (str of dtype <U3)"
    assert res.errors[4] == "output is not numeric (NoneType of dtype object)"
    res = simulate(lambda thetas, rs: np.full(thetas.shape, "1.0"), THETAS, seed=0,
                   vectorized=True)
    assert {f.kind for f in res.failures} == {"not-numeric"} and not res.ok.any()
    assert res.errors[0].startswith("vectorized output is not numeric (ndarray of dtype <U")


def test_bools_and_ints_are_numbers():
    res = simulate(lambda theta, rs: [theta[0] > 0, True], THETAS, seed=0, n_features=2)
    assert res.ok.all() and res.X.dtype == np.float64
    np.testing.assert_array_equal(res.X[:, 0], THETAS[:, 0] > 0)
    res = simulate(lambda theta, rs: np.int8(7), THETAS[:3], seed=0)
    np.testing.assert_array_equal(res.X, [[7.0]] * 3)


@pytest.mark.parametrize("thetas, what", [
    (np.zeros((2, 3, 1)), r"shape \(2, 3, 1\)"),
    ([[0.0], [np.nan]], r"NaN or inf, e\.g\. row 1: \[nan\]"),
    ([[np.inf, 0.0]], "NaN or inf"),
    (np.zeros((4, 0)), r"k >= 1; got shape \(4, 0\)"),
    ([], r"k >= 1; got shape \(1, 0\)"),
    (["1.0", "2.0"], "of numbers; got list of dtype <U3"),
    ([[1.0], [1.0, 2.0]], "could not make an array"),
])
def test_bad_thetas_are_refused(thetas, what):
    with pytest.raises(ValueError, match=r"thetas must be an array of shape \(n, k\)") as info:
        simulate(noisy, thetas, seed=0)
    assert info.match(what)


def test_one_dimensional_thetas_are_one_theta():
    res = simulate(noisy, [1.0, 2.0], seed=0)
    assert res.X.shape == (1, 2)
    np.testing.assert_array_equal(res.X, simulate(noisy, [[1.0, 2.0]], seed=0).X)
    res = simulate(noisy, np.empty((0, 2)), seed=0, n_features=2)
    assert res.X.shape == (0, 2) and res.failed_parameters.shape == (0, 2)


# ------------------------------------------------------------------------- timeouts
def hangs(theta, random_state):
    """Spins in Python ignoring SIGTERM for theta < -1.5, sleeps in C for theta > 1.5."""
    if theta[0] < -1.5:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        while True:
            pass
    if theta[0] > 1.5:
        time.sleep(1000)
    return theta + random_state.standard_normal(theta.shape)


def hangs_batch(thetas, random_state):
    if (np.abs(thetas) > 1.5).any():
        time.sleep(1000)
    return thetas + random_state.standard_normal(thetas.shape)


THETAS_T = np.linspace(-2, 2, 9)[:, None]  # -2 and 2 hang
HUNG = np.abs(THETAS_T[:, 0]) > 1.5


def test_timeout_abandons_hung_simulations_sequentially():
    start = time.perf_counter()
    res = simulate(hangs, THETAS_T, seed=3, n_jobs=1, timeout=0.5)
    elapsed = time.perf_counter() - start
    np.testing.assert_array_equal(res.ok, ~HUNG)
    assert [f.kind for f in res.failures] == ["timeout", "timeout"]
    assert res.errors[0] == "timeout: still running after 0.5 s, abandoned (its process " \
                            "was killed)"
    np.testing.assert_array_equal(res.failed_parameters, [[-2.0], [2.0]])
    # same seeds as without timeout: the simulations that finish give the same outputs
    np.testing.assert_array_equal(res.X, simulate(noisy, THETAS_T, seed=3).X[~HUNG])
    assert elapsed < 2 * 0.5 + 30  # two timeouts, process start-ups (a fork server once)



@pytest.mark.parametrize("simulator, vectorized, hung", [
    (hangs, False, HUNG),
    # batches of 2 (9 thetas in 8 batches): a hung call fails its whole batch
    (hangs_batch, True, np.isin(np.arange(9), [0, 1, 8])),
])
def test_timeout_gives_the_same_results_with_every_backend(simulator, vectorized, hung,
                                                           dask_client):
    ref = simulate(noisy_batch if vectorized else noisy, THETAS_T, seed=5,
                   vectorized=vectorized).X[~hung]
    runs = {"sequential": simulate(simulator, THETAS_T, seed=5, n_jobs=1,
                                   vectorized=vectorized, timeout=0.5),
            "loky": simulate(simulator, THETAS_T, seed=5, n_jobs=2, vectorized=vectorized,
                             timeout=0.5)}
    with joblib.parallel_config(backend="threading", n_jobs=2):
        runs["threads"] = simulate(simulator, THETAS_T, seed=5, vectorized=vectorized,
                                   timeout=0.5)
    with joblib.parallel_config(backend="dask"):
        runs["dask"] = simulate(simulator, THETAS_T, seed=5, n_jobs=-1,
                                vectorized=vectorized, timeout=0.5)
    for name, res in runs.items():
        np.testing.assert_array_equal(res.ok, ~hung, err_msg=name)
        np.testing.assert_array_equal(res.X, ref, err_msg=name)
        assert {f.kind for f in res.failures} == {"timeout"}, name


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (Linux)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _eventually(condition, seconds=20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


class StartsSleep:
    """Simulator running an external program that hangs; writes both pids to ``folder``."""

    def __init__(self, folder):
        self.folder = Path(folder)

    def __call__(self, theta, random_state):
        if theta[0] > 0:
            sleeper = subprocess.Popen(["sleep", "1000"])
            (self.folder / f"pids-{theta[0]:g}").write_text(f"{os.getpid()} {sleeper.pid}")
            sleeper.wait()
        return theta


@needs_proc
def test_timeout_kills_the_simulation_and_the_programs_it_started(tmp_path):
    res = simulate(StartsSleep(tmp_path), [[-1.0], [1.0], [2.0]], seed=0, timeout=1.0,
                   batch_size=3)
    np.testing.assert_array_equal(res.ok, [True, False, False])
    pids = [int(p) for f in sorted(tmp_path.glob("pids-*")) for p in f.read_text().split()]
    assert len(pids) == 4 and os.getpid() not in pids
    assert _eventually(lambda: not any(_running(p) for p in pids))


def crashes(theta, random_state):
    if theta[0] < 0:
        os._exit(3)
    if theta[0] > 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return theta


def test_timeout_mode_records_a_crashed_process_and_carries_on():
    res = simulate(crashes, [[-1.0], [0.5], [2.0], [0.25]], seed=0, timeout=30, batch_size=4)
    np.testing.assert_array_equal(res.ok, [False, True, False, True])
    assert [f.kind for f in res.failures] == ["crashed", "crashed"]
    assert res.errors == ["the simulation's process died (exit code 3)",
                          "the simulation's process died (killed by SIGKILL)"]
    np.testing.assert_array_equal(res.X, [[0.5], [0.25]])


class WritesPidThenHangs:
    def __init__(self, path):
        self.path = Path(path)

    def __call__(self, theta, random_state):
        self.path.write_text(str(os.getpid()))
        time.sleep(1000)


@needs_proc
def test_ctrl_c_stops_a_timed_call_and_kills_its_simulation(tmp_path, ctrl_c):
    pid_file = tmp_path / "pid"
    with ctrl_c(when=pid_file.exists) as sent:
        with pytest.raises(KeyboardInterrupt):
            res = simulate(WritesPidThenHangs(pid_file), [[0.0]], seed=0, timeout=300)
            pytest.fail(f"simulate returned, recording {res.errors}")
        assert time.perf_counter() - sent[0] < 10
    assert _eventually(lambda: not _running(int(pid_file.read_text())))


@needs_proc
def test_a_simulation_does_not_outlive_a_killed_caller(tmp_path):
    pid_file = tmp_path / "pid"
    script = textwrap.dedent(f"""
        import os, time
        from sktilt.simulation import simulate

        def hang(theta, random_state):
            open({str(pid_file)!r}, "w").write(str(os.getpid()))
            time.sleep(1000)

        simulate(hang, [[0.0]], seed=0, timeout=600)
    """)
    caller = subprocess.Popen([sys.executable, "-c", script])
    try:
        # the worker creates the file before it writes its pid: wait for the pid
        assert _eventually(lambda: pid_file.exists() and pid_file.read_text().strip(), 120)
        child = int(pid_file.read_text())
        assert _running(child)
        caller.kill()  # SIGKILL: no finally, no atexit in the caller
        caller.wait(30)
        assert _eventually(lambda: not _running(child))
    finally:
        caller.kill()


class Unpicklable:
    def __init__(self):
        self.lock = threading.Lock()

    def __call__(self, theta, random_state):
        return theta


def _explode():
    raise ImportError("no such simulator here")


class FailsToLoad:
    def __reduce__(self):
        return _explode, ()

    def __call__(self, theta, random_state):
        return theta


class DiesWhenLoaded:
    def __reduce__(self):
        return os._exit, (5,)

    def __call__(self, theta, random_state):  # pragma: no cover - never loaded
        return theta


def test_timeout_arguments():
    for bad in (0, -1.0, float("inf"), float("nan"), True, "1"):
        with pytest.raises(ValueError, match="timeout must be None or a positive number"):
            simulate(noisy, THETAS, timeout=bad)
    with pytest.raises(TypeError, match="must be picklable"):
        simulate(Unpicklable(), THETAS, timeout=1)
    assert simulate(Unpicklable(), THETAS, seed=0).ok.all()  # fine without a timeout
    with pytest.raises(SimulationError, match="could not load the simulator.*no such"):
        simulate(FailsToLoad(), THETAS, timeout=10)
    res = simulate(DiesWhenLoaded(), THETAS[:3], timeout=10)
    assert [f.kind for f in res.failures] == ["crashed"] * 3
    assert res.errors[0].startswith("the simulation's process died before loading the "
                                    "simulator (exit code 5); a script calling")
    # lambdas and closures work: cloudpickle
    offset = 2.0
    res = simulate(lambda theta, rs: theta + offset, THETAS[:4], seed=0, timeout=10)
    np.testing.assert_array_equal(res.X, THETAS[:4] + 2.0)


def _simulate_in_forked_process(queue):
    res = simulate(hangs, THETAS_T, seed=3, timeout=0.5, batch_size=9)
    queue.put((res.ok.tolist(), res.X.tolist()))


@pytest.mark.skipif("fork" not in __import__("multiprocessing").get_all_start_methods(),
                    reason="needs fork")
@pytest.mark.parametrize("daemon", [False, True])
def test_timeout_in_forked_and_daemonic_processes(daemon):
    """A forked process inherits its parent's fork server (not its own to use), and a
    daemonic one (a multiprocessing pool worker) may not have children: both work."""
    import multiprocessing

    simulate(noisy, THETAS[:1], seed=0, timeout=10)  # this process's fork server is up
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_simulate_in_forked_process, args=(queue,), daemon=daemon)
    proc.start()
    try:
        ok, X = queue.get(timeout=60)
    finally:
        proc.join(10)
        proc.kill()
    np.testing.assert_array_equal(ok, ~HUNG)
    np.testing.assert_array_equal(X, simulate(noisy, THETAS_T, seed=3).X[~HUNG])



def test_hung_simulations_are_waited_for_in_parallel():
    # 6 hung calls among 64, side by side: in one task of the default batching before,
    # where they cost 6 timeouts one after the other; now each worker waits on half.
    def hangs_below_zero(theta, random_state):
        # nested: cloudpickle sends it by value, so a fresh simulation process (one
        # after each timeout) need not import this test module
        if theta[0] < 0:
            time.sleep(1000)
        return theta + random_state.standard_normal(1)

    thetas = np.zeros((64, 1))
    thetas[:6] = -1.0
    simulate(hangs_below_zero, thetas[6:10], n_jobs=2, timeout=1.0)  # workers, fork servers
    start = time.perf_counter()
    res = simulate(hangs_below_zero, thetas, seed=1, n_jobs=2, timeout=3.0)
    elapsed = time.perf_counter() - start
    assert [f.kind for f in res.failures] == ["timeout"] * 6
    np.testing.assert_array_equal(res.X, simulate(noisy, thetas, seed=1).X[6:])
    # ceil(6 / 2) timeouts of 3 s side by side take 9 s, one after the other 18 s. The
    # 6 s between them absorb process restarts on a loaded runner (a 1 s timeout with a
    # 0.8 s margin failed there), and still tell the two apart.
    assert 9.0 <= elapsed < 15.0


@pytest.mark.parametrize("vectorized", [False, True])
def test_check_first_keeps_the_results(vectorized):
    simulator = noisy_batch if vectorized else noisy
    ref = simulate(simulator, THETAS, seed=4, vectorized=vectorized)
    for n_jobs in (1, 2):
        res = simulate(simulator, THETAS, seed=4, n_jobs=n_jobs, vectorized=vectorized,
                       check_first=True)
        np.testing.assert_array_equal(res.X, ref.X)
    single = simulate(simulator, THETAS[:1], seed=4, vectorized=vectorized,
                      check_first=True)
    np.testing.assert_array_equal(single.X, simulate(simulator, THETAS[:1], seed=4,
                                                     vectorized=vectorized).X)


def test_check_first_stops_a_wrong_shape_before_any_worker(monkeypatch):
    def no_pool(*args, **kwargs):
        raise AssertionError("a joblib pool was started")

    monkeypatch.setattr(simulation, "Parallel", no_pool)
    with pytest.raises(ValueError, match=r"'faulty' returned an output of shape \(3,\) for "
                       r"theta=\[0.75\], where \(1,\) was expected"):
        simulate(faulty, np.full((20, 1), 0.75), n_jobs=2, n_features=1, check_first=True)
    with pytest.raises(ValueError, match=r"\(2, 1\).*np.ravel"):
        simulate(lambda t, r: np.zeros((2, 1)), np.zeros((20, 1)), n_jobs=2, n_features=2,
                 check_first=True)
    with pytest.raises(ValueError, match=r"shape \(3, 2\) for a batch of 3 parameter "
                       r"vectors, where \(3, 1\) was expected"):
        simulate(lambda t, r: np.zeros((len(t), 2)), np.zeros((20, 1)), n_jobs=2,
                 vectorized=True, n_features=1, check_first=True)
    # other failures follow on_failure: "raise" at once, "drop" carries on (here, with
    # the pool that the spy refuses)
    with pytest.raises(SimulationError, match="first simulation"):
        simulate(faulty, np.full((20, 1), -2.0), n_jobs=2, on_failure="raise",
                 check_first=True)
    with pytest.raises(AssertionError, match="pool"):
        simulate(faulty, np.full((20, 1), -2.0), n_jobs=2, check_first=True)
