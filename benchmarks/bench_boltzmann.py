"""BoltzmannTuner vs rejection sampling, and the exact Gaussian case (one run, ratios).

Run: ``python benchmarks/bench_boltzmann.py [--quick]``. Targets (2 CPU cores):

* at rho = 1e-4, tuning (fit included) gets 10^4 tail samples >= 20x faster than
  rejection sampling from the same base;
* after fit, sampling throughput >= 50 % of the base sampler's own;
* E_q f >= the rejection-sampling mean of f over the top-rho tail;
* exact Gaussian case (d = 8, budget 2): beta within 1 % of sqrt(2C)/|a| in <= 10 s.
"""

from __future__ import annotations

import argparse
import math
import time
import warnings

import numpy as np
import torch

from sktilt import BoltzmannTuner, LatentSampler, quantile_budget
from sktilt import CurveMaximum, LinearCriterion

N_WANTED = 10_000


def mlp_decoder(latent_dim=8, out=168, seed=0):
    torch.manual_seed(seed)
    # a small VAE-like decoder: latent 8 -> 128 -> 128 -> one week at hourly steps
    return torch.nn.Sequential(torch.nn.Linear(latent_dim, 128), torch.nn.Tanh(),
                               torch.nn.Linear(128, 128), torch.nn.Tanh(),
                               torch.nn.Linear(128, out))


def rejection(base, threshold, n_wanted, chunk=200_000, seed=0):
    """Draw from ``base`` until ``n_wanted`` samples have max > threshold."""
    kept, drawn, rng = [], 0, np.random.default_rng(seed)
    while sum(len(k) for k in kept) < n_wanted:
        X = base.sample(chunk, random_state=rng)
        drawn += chunk
        f = X.max(1)
        kept.append(f[f > threshold])
    return np.concatenate(kept)[:n_wanted], drawn


def throughput(fn, n, repeat=3):
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(n)
        best = min(best, time.perf_counter() - t0)
    return n / best


def tail_benchmark(rhos, pilot):
    base = LatentSampler(mlp_decoder(), latent_dim=8)
    f_pilot = base.sample(pilot, random_state=123).max(1)
    base_rate = throughput(lambda n: base.sample(n, random_state=0), 200_000)
    print(f"base sampler throughput: {base_rate:,.0f} samples/s (decoder 8 -> 128 -> 128 -> 168)")
    print(f"{'rho':>7} {'fit+10k (s)':>11} {'reject 10k (s)':>14} {'speed-up':>8} "
          f"{'tuned/base rate':>15} {'E_q f':>7} {'reject mean':>11} {'KL':>6} {'budget':>6}")
    for rho in rhos:
        threshold = np.quantile(f_pilot, 1 - rho)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tuner = BoltzmannTuner(base, CurveMaximum(), kl_budget=quantile_budget(rho),
                                   random_state=0).fit()
        X = tuner.sample(N_WANTED)
        t_tuner = time.perf_counter() - t0
        t0 = time.perf_counter()
        accepted, drawn = rejection(base, threshold, N_WANTED)
        t_reject = time.perf_counter() - t0
        rate = throughput(lambda n, t=tuner: t.sample(n, random_state=0), 200_000)
        print(f"{rho:7.0e} {t_tuner:11.1f} {t_reject:14.1f} {t_reject / t_tuner:7.1f}x "
              f"{rate / base_rate:14.0%} {X.max(1).mean():7.3f} {accepted.mean():11.3f} "
              f"{tuner.kl_:6.2f} {quantile_budget(rho):6.2f}")


def gaussian_benchmark():
    a = np.array([1.0, 0.5, -0.5, 0.0, 0.3, 0.2, -0.1, 0.4])
    beta_star = math.sqrt(2 * 2.0) / np.linalg.norm(a)
    t0 = time.perf_counter()
    tuner = BoltzmannTuner(LatentSampler(torch.nn.Identity(), latent_dim=8),
                           LinearCriterion(a), kl_budget=2.0, random_state=0).fit()
    elapsed = time.perf_counter() - t0
    print(f"exact Gaussian d=8, budget 2: beta {tuner.beta_:.4f} vs {beta_star:.4f} "
          f"(error {abs(tuner.beta_ / beta_star - 1):.2%}, target <= 1%), KL "
          f"{tuner.kl_:.3f}±{tuner.kl_se_:.3f}, fit {elapsed:.1f} s (target <= 10 s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="rho = 1e-2 and 1e-3 only")
    args = parser.parse_args()
    torch.set_num_threads(2)
    gaussian_benchmark()
    rhos = [1e-2, 1e-3] if args.quick else [1e-2, 1e-3, 1e-4]
    tail_benchmark(rhos, pilot=2_000_000 if args.quick else 5_000_000)
