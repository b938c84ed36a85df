"""BoltzmannTuner vs rejection sampling and latent NUTS, the exact case, BoltzmannPath (one run).

Run: ``python benchmarks/bench_boltzmann.py [--quick] [--no-nuts]`` on one torch thread.

* the README quickstart decoder ``8 -> 64 -> tanh -> 168``, ``f = max``: fit + 10^4 samples
  against rejection sampling for 10^4 samples of the top-rho tail (targets: >= 1x at
  rho = 1e-2, >= 100x at rho = 1e-4), tuned sampling throughput against the base
  sampler's (target >= 80 %), ``E_q f`` against the rejection mean, ``KL`` against the
  budget;
* latent NUTS (pyro, an optional extra of this benchmark only) on ``q_beta`` at the same
  beta, per 10^4 effective samples (target: the tuner >= 100x faster);
* the exact Gaussian case (``d = 8``, budget 2): beta against ``sqrt(2C) / |a|``;
* ``BoltzmannPath`` on the exact case: beta(C) along the path (target: within 3 %), its
  fit against one tuner fit at the largest budget (target: <= 2x), ``tuner_at`` time
  (target: under a second).

The first optimiser of a process imports torch's compiler machinery (about 2 s, once);
it is paid before the timings and reported.
"""

from __future__ import annotations

import argparse
import math
import time
import warnings

import numpy as np
import torch

from sktilt import (
    BoltzmannPath,
    BoltzmannTuner,
    CurveMaximum,
    LatentSampler,
    LinearCriterion,
    quantile_budget,
)

N_WANTED = 10_000


def quickstart_decoder():
    torch.manual_seed(0)  # the README's decoder
    return torch.nn.Sequential(torch.nn.Linear(8, 64), torch.nn.Tanh(),
                               torch.nn.Linear(64, 168))


def rejection(base, threshold, n_wanted, chunk=200_000, seed=0):
    """Draw from ``base`` until ``n_wanted`` samples have max > threshold."""
    kept, rng = [], np.random.default_rng(seed)
    while sum(len(k) for k in kept) < n_wanted:
        f = base.sample(chunk, random_state=rng).max(1)
        kept.append(f[f > threshold])
    return np.concatenate(kept)[:n_wanted]


def throughput(fn, n, repeat=3):
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(n)
        best = min(best, time.perf_counter() - t0)
    return n / best


def nuts_seconds_per_effective(decoder, beta, n_draws, warmup):
    """Latent NUTS on p(z) exp(beta max decoder(z)): seconds per effective sample."""
    import pyro
    from pyro.infer import MCMC, NUTS

    def potential(params):
        z = params["z"]
        return 0.5 * (z**2).sum() - beta * decoder(z[None]).max()

    pyro.set_rng_seed(0)
    mcmc = MCMC(NUTS(potential_fn=potential), num_samples=n_draws, warmup_steps=warmup,
                initial_params={"z": torch.zeros(8)}, disable_progbar=True)
    t0 = time.perf_counter()
    mcmc.run()
    elapsed = time.perf_counter() - t0
    z = mcmc.get_samples()["z"]
    with torch.no_grad():
        f = decoder(z).max(1).values.numpy()
    ess = float(pyro.ops.stats.effective_sample_size(torch.as_tensor(f)[None, :, None]))
    return elapsed / max(ess, 1.0), ess, n_draws


def tail_benchmark(rhos, pilot, nuts):
    decoder = quickstart_decoder()
    base = LatentSampler(decoder, latent_dim=8)
    f_pilot = base.sample(pilot, random_state=123).max(1)
    base_rate = throughput(lambda n: base.sample(n, random_state=0), 200_000)
    print(f"base sampler: {base_rate:,.0f} samples/s (decoder 8 -> 64 -> tanh -> 168)")
    print(f"{'rho':>7} {'fit+10k':>8} {'reject 10k':>10} {'speed-up':>8} {'tuned/base':>10} "
          f"{'E_q f':>7} {'reject':>7} {'KL':>6} {'budget':>6} {'NUTS/10k ESS':>12} "
          f"{'vs NUTS':>8}")
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
        accepted = rejection(base, threshold, N_WANTED)
        t_reject = time.perf_counter() - t0
        rate = throughput(lambda n, t=tuner: t.sample(n, random_state=0), 200_000)
        column = ""
        if nuts:
            per_ess, _, _ = nuts_seconds_per_effective(decoder, tuner.beta_, 300, 200)
            column = f"{per_ess * N_WANTED:11.0f}s {per_ess * N_WANTED / t_tuner:7.0f}x"
        print(f"{rho:7.0e} {t_tuner:7.2f}s {t_reject:9.1f}s {t_reject / t_tuner:7.1f}x "
              f"{rate / base_rate:10.0%} {X.max(1).mean():7.3f} {accepted.mean():7.3f} "
              f"{tuner.kl_:6.2f} {quantile_budget(rho):6.2f} {column}")


def gaussian_benchmark():
    a = np.array([1.0, 0.5, -0.5, 0.0, 0.3, 0.2, -0.1, 0.4])
    base = LatentSampler(torch.nn.Identity(), latent_dim=8)
    beta_star = math.sqrt(2 * 2.0) / np.linalg.norm(a)
    t0 = time.perf_counter()
    tuner = BoltzmannTuner(base, LinearCriterion(a), kl_budget=2.0, random_state=0).fit()
    elapsed = time.perf_counter() - t0
    print(f"exact Gaussian d=8, budget 2: beta {tuner.beta_:.4f} vs {beta_star:.4f} "
          f"(error {abs(tuner.beta_ / beta_star - 1):.2%}), KL {tuner.kl_:.3f}±{tuner.kl_se_:.3f}, "
          f"fit {elapsed:.2f} s")
    t0 = time.perf_counter()
    BoltzmannTuner(base, LinearCriterion(a), kl_budget=4.0, random_state=0).fit()
    t_tuner = time.perf_counter() - t0
    t0 = time.perf_counter()
    path = BoltzmannPath(base, LinearCriterion(a), max_kl_budget=4.0, random_state=0).fit()
    t_path = time.perf_counter() - t0
    errors, t_at = [], 0.0
    for budget in (0.25, 0.5, 1.0, 2.0, 3.0, 4.0):
        t0 = time.perf_counter()
        model = path.tuner_at(budget)
        t_at = max(t_at, time.perf_counter() - t0)
        errors.append(model.beta_ / (math.sqrt(2 * budget) / np.linalg.norm(a)) - 1)
    print(f"BoltzmannPath up to budget 4: fit {t_path:.2f} s = {t_path / t_tuner:.1f}x one "
          f"tuner fit at budget 4 ({t_tuner:.2f} s); beta(C) error at C = 0.25..4: "
          f"{', '.join(f'{100 * e:+.1f}%' for e in errors)}; tuner_at <= {t_at:.2f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="rho = 1e-2 and 1e-3 only")
    parser.add_argument("--no-nuts", action="store_true", help="skip the pyro NUTS column")
    args = parser.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])
    print(f"one-time torch.optim import: {time.perf_counter() - t0:.1f} s (not in the timings)")
    gaussian_benchmark()
    try:
        import pyro  # noqa: F401 - an optional extra of this benchmark
        use_nuts = not args.no_nuts
    except ImportError:
        use_nuts = False
        print("pyro-ppl not installed: no NUTS column (pip install torch==2.13.0 pyro-ppl)")
    rhos = [1e-2, 1e-3] if args.quick else [1e-2, 1e-3, 1e-4]
    tail_benchmark(rhos, pilot=2_000_000 if args.quick else 5_000_000, nuts=use_nuts)
