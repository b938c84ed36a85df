"""The README's AVO quickstart against a bare loop of the same simulations.

Run: ``python benchmarks/bench_avo_quickstart.py [--repeats 3]``.

Times the quickstart as the README writes it (a per-theta Poisson simulator,
``max_simulations=20_000``), then a plain Python loop calling the same simulator as
many times as the fit simulated (``n_simulations_``), alternately, and prints both and
their ratio: the fit's overhead over the simulations it needs, which a busy machine
slows alike (the README states the time on an idle 2-core machine and this ratio).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from sktilt import AVOSimulatorFitter, GaussianProposal


def simulator(theta, random_state):                   # the README's black box
    return random_state.poisson(np.exp(theta), size=1).astype(float)


def quickstart():
    X_obs = np.random.default_rng(0).poisson(7.0, size=(2000, 1)).astype(float)
    fitter = AVOSimulatorFitter(simulator, GaussianProposal(loc=[np.log(5.0)], scale=[1.0]),
                                max_simulations=20_000, random_state=0)
    fitter.fit(X_obs)
    return fitter


def bare_loop(n):
    rng = np.random.default_rng(0)
    thetas = rng.normal(np.log(7.0), 0.01, size=(n, 1))
    return [simulator(t, np.random.default_rng(i)) for i, t in enumerate(thetas)]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    fits, loops = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        fitter = quickstart()
        fits.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        bare_loop(fitter.n_simulations_)
        loops.append(time.perf_counter() - t0)
    fit, loop = np.median(fits), np.median(loops)
    print(f"quickstart: {fit:.1f} s (median of {args.repeats}), "
          f"{fitter.n_simulations_} simulations; exp(theta_) "
          f"{np.exp(fitter.theta_).round(3).tolist()}, 95 % interval "
          f"{np.exp(fitter.confidence_intervals()).round(3).tolist()}, converged_ "
          f"{fitter.converged_}")
    print(f"bare loop of the same {fitter.n_simulations_} simulations: {loop:.2f} s; "
          f"ratio {fit / loop:.1f}")
