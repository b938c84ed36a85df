"""The joblib simulation engine: reproducibility across backends, batching, faults."""

import os

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
    assert res.errors[0] == "output of shape (1,), expected (2,)"


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
