"""AVO against an ABC baseline at the same simulation budget (peers are optional).

Run: ``python benchmarks/bench_avo_peers.py [--seeds 4]`` (a few minutes on 2 cores).

The budget is AVO's own count of single-observation simulations on each problem of
``bench_avo_accuracy.py``. ABC needs a whole data set per parameter draw: rejection
ABC draws parameters from AVO's starting proposal (the same prior knowledge),
simulates ``n_obs`` observations for each draw as long as the budget lasts, and keeps
the 10 % of draws whose standardised summary statistics (per-column mean, standard
deviation and octiles) are closest to the
observed ones; its estimate is the mean of the kept draws. sbi (NPE/NLE) is not run
here: on this 2-core machine its NLE with iid trials exhausted 19 GB at the default
MCMC start and slice MCMC did not finish in 5-8 minutes (issue #12); install sbi and
add it if you have the hardware.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import torch

from sktilt import AVOSimulatorFitter

from bench_avo_accuracy import point_cases  # noqa: E402  (run from benchmarks/)

_QUANTILES = np.arange(1, 8) / 8


def summaries(X: np.ndarray) -> np.ndarray:
    return np.concatenate([X.mean(0), X.std(0), np.quantile(X, _QUANTILES, axis=0).ravel()])


def rejection_abc(simulator, X, prior, budget, rng, keep=0.1):
    n_obs = len(X)
    n_draws = max(2, budget // n_obs)
    s_obs = summaries(X)
    thetas, dists = [], []
    for theta in prior.sample(n_draws, random_state=rng):
        sims = simulator(np.tile(theta, (n_obs, 1)), rng)
        thetas.append(theta)
        dists.append(summaries(sims))
    S = np.array(dists)
    scale = S.std(0) + 1e-12
    d = np.sqrt((((S - s_obs) / scale) ** 2).sum(1))
    kept = np.argsort(d)[:max(1, int(keep * n_draws))]
    return np.array(thetas)[kept].mean(0), n_draws


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--cases", default="poisson,gauss10,gk")
    args = parser.parse_args()
    torch.set_num_threads(1)
    names = args.cases.split(",")
    for name, sim, X, prop, ident, mle, se in point_cases():
        if name not in names:
            continue
        z_avo, z_abc, budgets, draws = [], [], [], 0
        for s in range(args.seeds):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                f = AVOSimulatorFitter(sim, prop, vectorized=True, random_state=s).fit(X)
            z_avo.append((ident(f.theta_) - mle) / se)
            budgets.append(f.n_simulations_)
            theta, draws = rejection_abc(sim, X, prop, f.n_simulations_,
                                         np.random.default_rng(s))
            z_abc.append((ident(theta) - mle) / se)
        za, zb = np.array(z_avo), np.array(z_abc)
        print(f"{name:<8} budget {int(np.mean(budgets)):7d} simulations | AVO RMS "
              f"{np.sqrt((za**2).mean()):6.2f} SE | rejection ABC ({draws} data sets from "
              f"the starting proposal) RMS {np.sqrt((zb**2).mean()):6.2f} SE",
              flush=True)
