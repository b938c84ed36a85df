"""AVO on a discrete simulator it was not tuned on: the negative binomial.

Run: ``python benchmarks/bench_avo_negbin.py [--seeds 8]`` (about 20 s per fit on one
core).

Counts with mean ``mu`` and dispersion ``r`` (variance ``mu + mu^2 / r``), fitted on
``(log mu, log r)`` from 5 000 observations at ``mu = 3, r = 2`` (20 distinct values, so
many cut points tie), started 20-50 % off, defaults otherwise. The exact MLE maximises
the likelihood (``scipy.stats.nbinom``), its standard errors from the observed
information. Per fit: the distance to the MLE in MLE standard errors, the ratio of the
reported standard errors to the MLE's, whether the 95 % interval holds the MLE, and
``converged_``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from scipy import optimize, stats

from sktilt import AVOSimulatorFitter, GaussianProposal, Simulator


def negbin_simulator_batch(thetas, random_state):
    """Counts (n, 1) at ``thetas`` (n, 2) = (log mean, log dispersion)."""
    t = np.asarray(thetas, dtype=float)
    mu, r = np.exp(t[:, 0]), np.exp(t[:, 1])
    return random_state.negative_binomial(r, r / (r + mu))[:, None].astype(float)


def negbin_nll(t, x) -> float:
    mu, r = np.exp(t)
    return -stats.nbinom.logpmf(x, r, r / (r + mu)).sum()


def negbin_mle(x):
    """The MLE of (log mu, log r) and its standard errors (observed information)."""
    fit = optimize.minimize(negbin_nll, np.log([x.mean(), 1.0]), args=(x,),
                            method="Nelder-Mead",
                            options=dict(xatol=1e-10, fatol=1e-10, maxiter=5000))
    h, E, H = 1e-4, np.eye(2) * 1e-4, np.zeros((2, 2))
    for i in range(2):
        for j in range(2):
            H[i, j] = (negbin_nll(fit.x + E[i] + E[j], x) - negbin_nll(fit.x + E[i] - E[j], x)
                       - negbin_nll(fit.x - E[i] + E[j], x)
                       + negbin_nll(fit.x - E[i] - E[j], x)) / (4 * h * h)
    return fit.x, np.sqrt(np.diag(np.linalg.inv(H)))


def main(seeds: int) -> None:
    torch.set_num_threads(1)
    X = negbin_simulator_batch(np.tile(np.log([3.0, 2.0]), (5000, 1)),
                               np.random.default_rng(7))
    mle, se = negbin_mle(X[:, 0])
    print(f"MLE (log mu, log r) {np.round(mle, 4).tolist()}, SE {np.round(se, 4).tolist()}, "
          f"{len(np.unique(X))} distinct values")
    zs, held, converged = [], [], []
    for seed in range(seeds):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = AVOSimulatorFitter(Simulator(negbin_simulator_batch, vectorized=True),
                                     GaussianProposal(np.log([4.0, 1.2]), [0.5, 0.5]),
                                     random_state=seed).fit(X)
        low, high = fit.confidence_intervals(0.95).T
        zs.append((fit.theta_ - mle) / se)
        held.append(bool(np.all((low <= mle) & (mle <= high))))
        converged.append(fit.converged_)
        print(f"  seed {seed}: {np.round(zs[-1], 2).tolist()} SE from the MLE, SE / MLE SE "
              f"{np.round(fit.standard_errors_ / se, 2).tolist()}, interval holds the MLE "
              f"{held[-1]}, converged_ {converged[-1]} ({time.perf_counter() - t0:.0f} s)",
              flush=True)
    z = np.array(zs)
    print(f"RMS {np.round(np.sqrt((z ** 2).mean(0)), 2).tolist()} MLE SE, within 2 SE on "
          f"both {np.mean(np.all(np.abs(z) < 2, 1)):.0%}, interval holds the MLE "
          f"{np.mean(held):.0%}, converged_ {np.mean(converged):.0%}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8)
    main(parser.parse_args().seeds)
