"""Rare-event probability: tuned importance sampling vs crude Monte Carlo (one run).

Target: at P ≈ 1e-4, relative error <= 10 % using <= 1 % of the samples crude Monte
Carlo needs for the same error. Run: ``python benchmarks/bench_rare_events.py``.
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
import torch
from scipy.stats import norm

from sktilt import BoltzmannTuner, LatentSampler, quantile_budget
from sktilt import CurveMaximum, LinearCriterion

P_TARGET = 1e-4
REL = 0.10


def crude_samples_for(p, rel=REL):
    """Crude MC samples for relative error ``rel``: (1 - p) / (p rel^2)."""
    return (1 - p) / (p * rel**2)


def report(name, tuner, threshold, p_ref, p_ref_se, fit_s):
    n = 20_000
    t0 = time.perf_counter()
    est = tuner.tail_probability(threshold, n_samples=n, random_state=1)
    est_s = time.perf_counter() - t0
    # samples the IS estimator needs for REL relative error (its variance scales 1/n)
    n_is = n * (est.relative_error / REL) ** 2
    n_crude = crude_samples_for(p_ref)
    z = abs(est.probability - p_ref) / math.hypot(est.std_error, p_ref_se)
    print(f"{name:<22} P_ref {p_ref:.3e}  IS {est.probability:.3e} ± {est.std_error:.1e} "
          f"(rel {est.relative_error:.1%}, |diff| {z:.1f} SE) | samples for {REL:.0%}: IS "
          f"{n_is:,.0f} vs crude {n_crude:,.0f} = {n_is / n_crude:.3%} | fit {fit_s:.1f} s, "
          f"estimate {est_s:.2f} s")


def gaussian_case():
    base = LatentSampler(torch.nn.Identity(), latent_dim=8)
    a = np.zeros(8)
    a[0] = 1.0
    t0 = time.perf_counter()
    tuner = BoltzmannTuner(base, LinearCriterion(a), kl_budget=quantile_budget(P_TARGET),
                           random_state=0).fit()
    threshold = norm.isf(P_TARGET)
    report("Gaussian, exact P", tuner, threshold, P_TARGET, 0.0, time.perf_counter() - t0)


def mlp_case(n_crude=20_000_000):
    torch.manual_seed(0)
    dec = torch.nn.Sequential(torch.nn.Linear(8, 128), torch.nn.Tanh(),
                              torch.nn.Linear(128, 168))
    base = LatentSampler(dec, latent_dim=8)
    f, rng = [], np.random.default_rng(5)
    for _ in range(n_crude // 1_000_000):
        f.append(base.sample(1_000_000, random_state=rng).max(1))
    f = np.concatenate(f)
    threshold = np.quantile(f, 1 - P_TARGET)
    p_ref = float((f > threshold).mean())
    p_ref_se = math.sqrt(p_ref * (1 - p_ref) / f.size)
    t0 = time.perf_counter()
    tuner = BoltzmannTuner(base, CurveMaximum(), kl_budget=quantile_budget(P_TARGET),
                           random_state=0).fit()
    report("MLP decoder, f = max", tuner, threshold, p_ref, p_ref_se, time.perf_counter() - t0)


if __name__ == "__main__":
    torch.set_num_threads(2)
    warnings.simplefilter("ignore")
    gaussian_case()
    mlp_case()
