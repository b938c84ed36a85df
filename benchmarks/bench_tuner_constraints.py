"""Constrained tilts: accuracy against the closed form, and cost against an unconstrained fit.

Run: ``python benchmarks/bench_tuner_constraints.py [--seeds 5] [--quick]`` (one torch thread).

* Gaussian base ``N(0, I_d)``, linear ``f = a.x`` and linear constraints ``b_j.x (op) c_j``:
  the constrained optimum is ``N(mu, I)`` with ``mu`` maximising ``a.mu`` subject to
  ``|mu|^2 <= 2C`` and the constraints (SLSQP on the closed form). Targets: every
  constraint met within 2 % of ``sd_p g`` (and of ``|c|``) and ``E_q f`` within 1 % of the
  exact optimum, at the defaults, over seeds.
* Time: the README quickstart decoder (8 -> 64 -> tanh -> 168, ``f = max`` of the curve,
  budget ``-log 0.01``) with and without a constraint on the curve's mean (at most the
  base model's median), fitted alternately in one run. Target: constrained <= 2x.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from scipy.optimize import minimize

from sktilt import BoltzmannTuner, CurveMaximum, LatentSampler, LinearCriterion, quantile_budget


class CurveMean:
    """``g(x)`` = the mean of a curve (picklable, differentiable)."""

    def __call__(self, x):
        return x.reshape(x.shape[0], -1).mean(-1)


def exact_optimum(a, budget, constraints):
    cons = [{"type": "ineq", "fun": lambda m: 2 * budget - m @ m}]
    for b, op, c in constraints:
        b = np.asarray(b, float)
        fun = {"<=": lambda m, b=b, c=c: c - b @ m, ">=": lambda m, b=b, c=c: b @ m - c,
               "==": lambda m, b=b, c=c: b @ m - c}[op]
        cons.append({"type": "eq" if op == "==" else "ineq", "fun": fun})
    res = minimize(lambda m: -a @ m, np.full(len(a), 0.1), constraints=cons, method="SLSQP",
                   options={"ftol": 1e-12})
    return res.x


def gaussian_cases(d: int):
    rng = np.random.default_rng(123)
    a = np.zeros(d)
    a[0] = 1.0
    b1 = rng.standard_normal(d)
    b1 /= np.linalg.norm(b1)
    e2 = np.zeros(d)
    e2[1] = 1.0
    return a, {
        "<= active": [(b1, "<=", 0.2)],
        ">= active": [(e2, ">=", 1.0)],
        "== and <=": [(e2, "==", -0.5), (b1, "<=", 0.3)],
    }


def accuracy(seeds: int, dims, budget: float) -> None:
    print(f"Gaussian linear, budget {budget}: relative error of E_q f against the exact "
          "constrained optimum, worst constraint gap (% of sd_p g = 1, and % of |c|), "
          "KL error")
    print(f"{'d':>3} {'case':<12} {'E_q f err % (mean, worst)':>26} "
          f"{'gap % of sd, of |c| (worst)':>28} {'KL err % (worst)':>17} {'fit s':>6}")
    for d in dims:
        a, cases = gaussian_cases(d)
        base = LatentSampler(torch.nn.Identity(), latent_dim=d)
        for name, spec in cases.items():
            mu = exact_optimum(a, budget, spec)
            errs, gaps, kls, times = [], [], [], []
            for seed in range(seeds):
                t = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    tuner = BoltzmannTuner(
                        base, LinearCriterion(a), kl_budget=budget, random_state=seed,
                        constraints=[(LinearCriterion(b), op, c) for b, op, c in spec]).fit()
                times.append(time.perf_counter() - t)
                errs.append(100 * (tuner.criterion_mean_ / (a @ mu) - 1))
                kls.append(100 * abs(tuner.kl_ / budget - 1))
                gap = (0.0, 0.0)
                for j, (_b, op, c) in enumerate(spec):  # sd_p g = |b| = 1 here
                    v = tuner.constraint_values_[j]
                    miss = max({"<=": v - c, ">=": c - v, "==": abs(v - c)}[op], 0.0)
                    gap = (max(gap[0], 100 * miss), max(gap[1], 100 * miss / abs(c)))
                gaps.append(gap)
            print(f"{d:>3} {name:<12} {np.mean(errs):>+12.2f} {min(errs, key=abs):>+6.2f}"
                  f"{max(errs, key=abs):>+7.2f} {max(g[0] for g in gaps):>20.2f} "
                  f"{max(g[1] for g in gaps):>7.2f} {max(kls):>17.2f} "
                  f"{np.mean(times):>6.1f}")


def timing(repeats: int) -> None:
    torch.manual_seed(0)
    decoder = torch.nn.Sequential(torch.nn.Linear(8, 64), torch.nn.Tanh(),
                                  torch.nn.Linear(64, 168))
    base = LatentSampler(decoder, latent_dim=8)
    with torch.no_grad():
        means = CurveMean()(decoder(torch.randn(100_000, 8))).numpy()
    median = float(np.median(means))
    budget = quantile_budget(0.01)
    plain = BoltzmannTuner(base, CurveMaximum(), kl_budget=budget)
    constrained = BoltzmannTuner(base, CurveMaximum(), kl_budget=budget,
                                 constraints=[(CurveMean(), "<=", median)])
    BoltzmannTuner(base, CurveMaximum(), kl_budget=1.0, random_state=0).fit()  # warm-up
    t_plain, t_cons = [], []
    for seed in range(repeats):
        for est, acc in ((plain, t_plain), (constrained, t_cons)):
            t = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est.set_params(random_state=seed).fit()
            acc.append(time.perf_counter() - t)
        print(f"  seed {seed}: plain {t_plain[-1]:.2f} s (E_q f {plain.criterion_mean_:.3f}), "
              f"constrained {t_cons[-1]:.2f} s (E_q f "
              f"{constrained.criterion_mean_:.3f}, E_q mean "
              f"{constrained.constraint_values_[0]:.4f} vs <= {median:.4f}, KL "
              f"{constrained.kl_:.3f})")
    print(f"quickstart decoder, f = max, budget -log 0.01, constraint mean <= base median: "
          f"median fit time plain {np.median(t_plain):.2f} s, constrained "
          f"{np.median(t_cons):.2f} s, ratio {np.median(t_cons) / np.median(t_plain):.2f}x "
          "(target <= 2x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = 2 if args.quick else args.seeds
    accuracy(seeds, (3,) if args.quick else (3, 8, 16), 2.0)
    timing(2 if args.quick else 5)


if __name__ == "__main__":
    main()
