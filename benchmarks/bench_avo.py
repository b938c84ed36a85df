"""AVO benchmarks: accuracy against the MLE, simulation budget, time, throughput.

Run: ``python benchmarks/bench_avo.py`` (about a minute on 2 cores).

* Poisson (lambda* = 7, 20 000 observations, initial N(log 5, 1)),
* Weinberg (truth (E, G_f) = (42, 0.9), 20 000 observations, initial mean (45, 1),
  variances (1, 0.01)); judged on c(E, G_f), the only identifiable quantity,
* 2-D correlated Gaussian location model with a full-covariance proposal,

each fitted with ``max_simulations=50_000`` against the maximum-likelihood estimate on
the same data (targets, all checked by the printed verdict: within 2 MLE standard
errors, <= 50 000 simulations, <= 60 s), then the throughput of a
10 ms-per-call simulator with n_jobs=2 (target >= 1.8x) and a dask LocalCluster
(target >= 1.6x) relative to n_jobs=1.
"""

from __future__ import annotations

import time

import joblib
import numpy as np
import torch

from sktilt import AVOSimulatorFitter, GaussianProposal, Simulator, simulate
from sktilt.datasets import (
    GAUSSIAN_COVARIANCE,
    gaussian_location_mle,
    gaussian_location_simulator_batch,
    poisson_mle,
    poisson_simulator_batch,
    weinberg_c,
    weinberg_c_mle,
    weinberg_simulator_batch,
)

N_OBS = 20_000
MAX_SIMULATIONS, MAX_WALL = 50_000, 60.0


def sleepy_simulator(theta, random_state):
    """A 10 ms simulator (stands for an expensive one)."""
    time.sleep(0.010)
    return theta + random_state.standard_normal(theta.shape)


def fit(simulator, proposal, X, **kwargs):
    t0 = time.perf_counter()
    f = AVOSimulatorFitter(Simulator(simulator, vectorized=True), proposal, random_state=0,
                           max_simulations=MAX_SIMULATIONS, **kwargs).fit(X)
    return f, time.perf_counter() - t0


def row(name, fitted, mle, se, f, wall):
    z = abs(fitted - mle) / se
    ok = z <= 2 and f.n_simulations_ <= MAX_SIMULATIONS and wall <= MAX_WALL
    print(f"{name:<22} fitted {fitted:9.4f}  MLE {mle:9.4f} +- {se:.4f}  "
          f"|diff|/SE {z:5.2f} {'ok ' if ok else 'MISS'}  "
          f"simulations {f.n_simulations_:6d}  wall {wall:5.1f} s  converged_ "
          f"{f.converged_}")


def accuracy():
    rng = np.random.default_rng(2024)
    print("== accuracy (target: |diff| <= 2 SE, <= 50 000 simulations, <= 60 s)")
    X = rng.poisson(7.0, size=(N_OBS, 1)).astype(float)
    f, wall = fit(poisson_simulator_batch, GaussianProposal([np.log(5.0)], [1.0]), X)
    lam, se = poisson_mle(X)
    row("Poisson lambda", float(np.exp(f.theta_[0])), lam, se, f, wall)

    X = weinberg_simulator_batch(np.tile([42.0, 0.9], (N_OBS, 1)), rng)
    f, wall = fit(weinberg_simulator_batch, GaussianProposal([45.0, 1.0], [1.0, 0.1]), X)
    c_hat, se = weinberg_c_mle(X)
    row("Weinberg c", float(weinberg_c(*f.theta_)), c_hat, se, f, wall)

    truth = np.array([1.0, -0.5])
    X = truth + rng.standard_normal((N_OBS, 2)) @ np.linalg.cholesky(GAUSSIAN_COVARIANCE).T
    f, wall = fit(gaussian_location_simulator_batch,
                  GaussianProposal([0.0, 0.0], [1.0, 1.0], covariance="full"), X)
    mle, se = gaussian_location_mle(X)
    for i in range(2):
        row(f"Gaussian theta[{i}]", float(f.theta_[i]), mle[i], se[i], f, wall)


def throughput():
    print("== throughput, 10 ms per call (targets: n_jobs=2 >= 1.8x, dask >= 1.6x)")
    thetas = np.zeros((200, 1))

    def rate(**kw):
        simulate(sleepy_simulator, thetas[:8], seed=0, **kw)  # start workers
        t0 = time.perf_counter()
        res = simulate(sleepy_simulator, thetas, seed=0, **kw)
        return len(res.X) / (time.perf_counter() - t0), res.X

    base, X1 = rate(n_jobs=1)
    two, X2 = rate(n_jobs=2)
    print(f"n_jobs=1: {base:6.1f} sims/s")
    print(f"n_jobs=2 (loky): {two:6.1f} sims/s  ratio {two / base:.2f}x  "
          f"identical results: {np.array_equal(X1, X2)}")
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster):
        with joblib.parallel_config(backend="dask"):
            dask_rate, X3 = rate(n_jobs=-1)
    print(f"dask LocalCluster (2 workers): {dask_rate:6.1f} sims/s  ratio "
          f"{dask_rate / base:.2f}x  identical results: {np.array_equal(X1, X3)}")


if __name__ == "__main__":
    # The critic is a small MLP: intra-op threads only add contention on 2 cores.
    torch.set_num_threads(1)
    accuracy()
    throughput()
