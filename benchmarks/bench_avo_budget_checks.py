"""Small simulation budgets: how far AVO's point ends from the MLE, and whether it says so.

Run: ``python benchmarks/bench_avo_budget_checks.py [--seeds 6]
[--runs acc_gk:30000,acc_gk:50000,...]`` from ``benchmarks/`` (about 10 s per fit on
one core, 30 s on the 10-D Gaussian).

Each run is ``case:max_simulations``. ``acc_<name>`` cases are the accuracy benchmark's
point cases (one data set, ``bench_avo_accuracy.point_cases``; the seed varies the fit),
the others the coverage benchmark's (``bench_avo_coverage.CASES``; the seed varies the
data set too). Per fit it prints the distance to the MLE in MLE standard errors, whether
the 95 % interval holds the MLE, ``converged_``, the moment test's p-value, the polish's
model precision (``n_sim / (n_terms n_obs)``) and whether the starved-polish warning
fired; per run, the share of fits within 2 SE and the flag rates among fits >= 3 SE off
and within 2 SE.
"""

from __future__ import annotations

import argparse
import functools
import time
import warnings

import numpy as np
import torch

import sktilt.avo._polish as polish_module
from sktilt import AVOSimulatorFitter, Simulator

from bench_avo_accuracy import point_cases  # noqa: E402  (run from benchmarks/)
from bench_avo_coverage import CASES  # noqa: E402

_RUNS = ("acc_gk:30000,acc_gk:50000,acc_gk:100000,gk:30000,resonance:30000,"
         "resonance:60000,gauss2:20000,acc_gauss10:30000")


def _last_solution():
    """Wraps ``PolishSamples.solve`` to keep its last solution (the model precision)."""
    kept = []
    solve = polish_module.PolishSamples.solve

    def keeping(self, *args, **kwargs):
        out = solve(self, *args, **kwargs)
        if out is not None:
            kept.append(out)
        return out

    polish_module.PolishSamples.solve = keeping
    return kept


@functools.cache
def _accuracy_cases() -> dict:
    return {c[0]: c for c in point_cases()}


def _problem(case: str, seed: int):
    """(simulator, X, start proposal, map to judged units, MLE, MLE SE)."""
    if case.startswith("acc_"):
        found = _accuracy_cases()[case[4:]]
        return found[1], found[2], found[3], found[4], found[5], found[6]
    simulator, make, _, start, to_units = CASES[case]
    X, mle, se = make(np.random.default_rng(10_000 + seed))
    return simulator, X, start, to_units, mle, se


def run(case: str, budget: int, seeds: int, kept: list) -> None:
    rows = []
    for seed in range(seeds):
        simulator, X, start, to_units, mle, se = _problem(case, seed)
        kept.clear()
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit = AVOSimulatorFitter(Simulator(simulator, vectorized=True), start,
                                     max_simulations=budget, random_state=seed).fit(X)
        low, high = (to_units(end) for end in fit.confidence_intervals(0.95).T)
        z = (to_units(fit.theta_) - mle) / se
        starved = any("as precise as the observations" in str(w.message) for w in caught)
        test = fit.moment_test_
        rows.append((np.abs(z).max(), fit.converged_))
        print(f"  {case} {budget} seed {seed}: z {np.round(z, 1).tolist()} interval holds "
              f"the MLE {bool(np.all((low <= mle) & (mle <= high)))}, converged_ "
              f"{fit.converged_}, moment p "
              f"{'-' if test is None else f'{test.p_value:.3g}'}, model precision "
              f"{kept[-1].model_precision if kept else float('nan'):.3f}, starved "
              f"{starved} ({time.perf_counter() - t0:.0f} s)", flush=True)
    worst, converged = (np.array(c) for c in zip(*rows))
    off, good = worst >= 3, worst < 2
    print(f"{case} max_simulations={budget}: within 2 SE {good.mean():.0%}; flagged "
          f"{(~converged[off]).sum()} of {off.sum()} fits >= 3 SE off, "
          f"{(~converged[good]).sum()} of {good.sum()} within 2 SE", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--runs", default=_RUNS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    kept = _last_solution()
    for spec in args.runs.split(","):
        case, budget = spec.split(":")
        run(case, int(budget), args.seeds, kept)
