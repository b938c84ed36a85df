"""Calibration of AVO's standard errors and of its self-checks over replicated data sets.

Run: ``python benchmarks/bench_avo_coverage.py [--replicates 100] [--cases poisson,...]
[--n-jobs 2] [--max-simulations N] [--first-replicate 100]`` (about 12 s per fit on one
core; ``--first-replicate`` draws further data sets, to pool with an earlier run).

For each simulator with an exact MLE, ``--replicates`` data sets are drawn at the true
parameter and fitted with the defaults apart from the start (one ``random_state`` per
replicate). Reported per parameter:

* ``coverage`` -- how often ``confidence_intervals(0.95)`` contains the true parameter
  (target 93-97 %), beside the MLE's own Wald interval on the same data sets;
* ``SE/MLE SE`` -- the mean ratio of ``standard_errors_`` to the MLE's (the efficiency
  lost to the moment features and to the simulation noise);
* ``within 2 SE`` -- fits within 2 MLE standard errors of the MLE on every parameter;
* the self-checks: the fraction of fits with ``converged_=False`` among those >= 3 MLE
  SE off on some parameter (target >= 90 %) and among those within 2 (target <= 10 %).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from joblib import Parallel, delayed

from sktilt import AVOSimulatorFitter, GaussianProposal, Simulator
from sktilt.datasets import (
    GK_TRUE_THETA,
    RESONANCE_CASES,
    gaussian_location_mle,
    gaussian_location_simulator_batch,
    gk_mle,
    gk_simulator_batch,
    poisson_mle,
    poisson_simulator_batch,
    resonance_mle,
    resonance_simulator_batch,
)


def _poisson(rng):
    X = rng.poisson(7.0, size=(5_000, 1)).astype(float)
    lam, se = poisson_mle(X)
    return X, np.array([lam]), np.array([se])


def _gauss2(rng):
    X = gaussian_location_simulator_batch(np.tile([0.5, -0.3], (2_000, 1)), rng)
    return X, *gaussian_location_mle(X)


def _gk(rng):
    X = gk_simulator_batch(np.tile(GK_TRUE_THETA, (2_000, 1)), rng)
    return X, *gk_mle(X)


_ISSUE = RESONANCE_CASES["issue"]


def _resonance(rng):
    X = resonance_simulator_batch(np.tile(_ISSUE["theta"], (_ISSUE["n_obs"], 1)), rng)
    return X, *resonance_mle(X)


# name: (simulator, data maker, truth, start proposal, fitted parameter -> theta)
CASES = {
    "poisson": (poisson_simulator_batch, _poisson, np.array([7.0]),
                GaussianProposal([np.log(5.0)], [1.0]), np.exp),
    "gauss2": (gaussian_location_simulator_batch, _gauss2, np.array([0.5, -0.3]),
               GaussianProposal([0.0, 0.0], [1.0, 1.0]), lambda t: t),
    "gk": (gk_simulator_batch, _gk, np.asarray(GK_TRUE_THETA, dtype=float),
           GaussianProposal([2.5, 1.5, 1.0, 0.3], [0.5, 0.5, 0.5, 0.2]), lambda t: t),
    "resonance": (resonance_simulator_batch, _resonance, np.asarray(_ISSUE["theta"]),
                  GaussianProposal([0.4, 0.05, 0.3, 1.0], [0.05, 0.02, 0.1, 1.0],
                                   bounds=[(0, 1), (1e-3, 0.5), (1e-3, 0.999), (-20, 20)]),
                  lambda t: t),
}


def one_fit(name, replicate, settings):
    simulator, make, truth, start, _ = CASES[name]
    X, mle, mle_se = make(np.random.default_rng(10_000 + replicate))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = AVOSimulatorFitter(Simulator(simulator, vectorized=True), start,
                                 random_state=replicate, **settings).fit(X)
    theta, se = fit.theta_, fit.standard_errors_
    if name == "poisson":  # fitted on log(lambda): the intervals are in the fitted units
        low, high = np.exp(fit.confidence_intervals(0.95).T)
        theta, se = np.exp(theta), np.exp(theta) * se
    else:
        low, high = fit.confidence_intervals(0.95).T
    return dict(covered=(low <= truth) & (truth <= high),
                mle_covered=np.abs(mle - truth) <= 1.96 * mle_se,
                z_mle=(theta - mle) / mle_se, ratio=se / mle_se,
                converged=fit.converged_, n_simulations=fit.n_simulations_)


def study(name, replicates, n_jobs, settings, first=0):
    t0 = time.perf_counter()
    rows = Parallel(n_jobs=n_jobs)(delayed(one_fit)(name, r, settings)
                                   for r in range(first, first + replicates))
    cols = {k: np.array([r[k] for r in rows]) for k in rows[0]}
    worst = np.abs(cols["z_mle"]).max(1)
    off, good = worst >= 3, worst < 2
    flagged = ~cols["converged"]
    print(f"{name:<10} {replicates} fits, {np.mean(cols['n_simulations']):.0f} simulations "
          f"each, {(time.perf_counter() - t0) / replicates:.1f} s/fit (wall, n_jobs={n_jobs})")
    print(f"  coverage of the truth, 95 % intervals: "
          f"{np.round(100 * cols['covered'].mean(0), 1).tolist()} %"
          f"  (the MLE's Wald interval: {np.round(100 * cols['mle_covered'].mean(0), 1).tolist()}"
          " %)")
    print(f"  SE / MLE SE (median): {np.round(np.median(cols['ratio'], 0), 2).tolist()}"
          f"   RMS distance to the MLE in MLE SE: "
          f"{np.round(np.sqrt((cols['z_mle'] ** 2).mean(0)), 2).tolist()}")
    print(f"  within 2 MLE SE on every parameter: {good.mean():.0%};  flagged: "
          f"{flagged[off].mean() if off.any() else float('nan'):.0%} of {off.sum()} fits "
          f">= 3 SE off, {flagged[good].mean() if good.any() else float('nan'):.0%} of "
          f"{good.sum()} within 2 SE", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=100)
    parser.add_argument("--cases", default="poisson,gauss2,gk")
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument("--max-simulations", type=int, default=None)
    parser.add_argument("--first-replicate", type=int, default=0)
    args = parser.parse_args()
    settings = {} if args.max_simulations is None else {
        "max_simulations": args.max_simulations}
    for case in args.cases.split(","):
        study(case, args.replicates, args.n_jobs, settings, args.first_replicate)
