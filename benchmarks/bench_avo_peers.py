"""AVO against rejection ABC and sbi's NLE at the same simulation budget.

Run: ``python benchmarks/bench_avo_peers.py [--seeds 3] [--peers abc,sbi]
[--budgets default,10000,30000,100000]`` from ``benchmarks/`` (about 25 minutes for 3
seeds on the three default cases at the default budget, one thread).

The budget is AVO's own count of single-observation simulations
(``AVOSimulatorFitter.n_simulations_``) on each problem of ``bench_avo_accuracy.py``:
its defaults' (``default``), or ``max_simulations`` set to each of ``--budgets``, the
accuracy-versus-budget table (AVO also reports how often its 95 % interval holds the
MLE and the median ratio of its standard errors to the MLE's);
every method is judged like AVO there, in MLE standard errors, RMS over seeds. Both
peers draw parameters from AVO's starting proposal (the same prior knowledge):

* **rejection ABC** needs a whole data set per parameter draw: it simulates ``n_obs``
  observations for each draw as long as the budget lasts, and keeps the 10 % of draws
  whose standardised summary statistics (per-column mean, standard deviation and
  octiles) are closest to the observed ones; its estimate is the mean of the kept draws.
* **sbi NLE** (neural likelihood estimation, sbi 0.27, optional: skipped with a printed
  line if ``import sbi`` fails) is trained on the same number of single-observation
  simulations, ``theta`` drawn from the starting proposal (the sbi prior, a diagonal
  ``Independent(Normal(loc, scale))``). The density estimator is sbi's default MAF for
  vector ``x`` and its NSF for scalar ``x`` (a 1-D MAF is an affine, i.e. Gaussian,
  conditional density; sbi's NSF handles scalar ``x`` with a spline conditioned on
  ``theta``). Training: batches of 500, sbi's early stopping, capped at
  ``_SBI_TRAIN_SAMPLES`` training examples in total (at the present defaults' budgets
  sbi counts 10 epochs on poisson and gk, 15 on gauss10; 1-3 minutes a fit on one
  thread). Integer data (Poisson) are dequantized
  with U[0, 1) noise, on training and observed ``x`` alike, so the flow has a density.
  The learnt likelihood then sees all ``n_obs`` iid observations at once (sbi sums the
  log-likelihood over iid trials), and the estimate is the MAP of that NLE posterior,
  found by ``MCMCPosterior.map`` (Adam) started from the best of ``_SBI_MAP_INITS``
  proposal draws, in three stages of decreasing learning rate (``_SBI_MAP_STAGES``).

Not run, and why (2-core machine, one torch thread): the NLE posterior *mean* by MCMC.
sbi 0.27's default chain initialisation (``init_strategy="resample"``) scores 10 000
proposal candidates per chain against all iid trials at once (it exhausted 19 GB in
issue #12); with 20 candidates, 4 vectorised slice chains
(``slice_np_vectorized``) and 20 warm-up + 10 kept steps took 12 minutes on gauss10
(1 000 trials) and had not mixed (spread 36-580 SE). The MAP is computed with
``enable_transform=False``: with sbi's default z-scoring transform, ``gradient_ascent``
in sbi 0.27 returns the untransformed starting point passed through the inverse
transform whenever no step improves on it (a wrong point, not the start).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time
import warnings

import numpy as np
import torch

from sktilt import AVOSimulatorFitter, Simulator

from bench_avo_accuracy import point_cases  # noqa: E402  (run from benchmarks/)

_QUANTILES = np.arange(1, 8) / 8
# sbi NLE settings (see the module docstring).
_SBI_TRAIN_SAMPLES = 1_600_000    # cap on epochs x training examples
_SBI_MAP_INITS = 10               # proposal draws scored to start the MAP search
_SBI_MAP_STAGES = ((0.05, 100), (0.005, 60), (0.0005, 40))  # (learning rate, steps)


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


class _NullTracker:
    """sbi training tracker that logs nothing (the default writes ./sbi-logs/)."""

    log_dir = None

    def log_metric(self, name, value, step=None):
        pass

    def log_metrics(self, metrics, step=None):
        pass

    def log_params(self, params):
        pass

    def add_figure(self, name, figure, step=None):
        pass

    def flush(self):
        pass


def sbi_nle_map(simulator, X, prop, budget, seed):
    """MAP of sbi's NLE posterior given all of ``X``; returns (theta, epochs trained)."""
    from sbi.inference import NLE, MCMCPosterior
    from sbi.inference.potentials import likelihood_estimator_based_potential
    from torch.distributions import Independent, Normal

    if prop.bounds is not None:
        raise NotImplementedError("the sbi prior is the unbounded Gaussian proposal")
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    k = prop.n_parameters
    loc = torch.tensor(np.broadcast_to(prop.loc, (k,)), dtype=torch.float32)
    scale = torch.tensor(np.broadcast_to(prop.scale, (k,)), dtype=torch.float32)
    prior = Independent(Normal(loc, scale), 1)
    theta = prop.sample(budget, random_state=rng)
    x, x_o = simulator(theta, rng), np.asarray(X, dtype=float)
    if np.all(x_o == np.round(x_o)):
        # Integer data (Poisson counts): dequantize training and observed x with U[0, 1)
        # noise, so that the flow models a density (that of floor(x) + U is the pmf).
        x, x_o = x + rng.random(x.shape), x_o + rng.random(x_o.shape)
    inference = NLE(prior=prior, density_estimator="maf" if x.shape[1] > 1 else "nsf",
                    show_progress_bars=False, tracker=_NullTracker())
    n_train = int(0.9 * budget)  # sbi's default validation_fraction=0.1
    with warnings.catch_warnings():
        # sbi warns of "extreme outliers" in x on poisson and gk (heavy-tailed prior
        # predictive); its default z-scoring is kept.
        warnings.simplefilter("ignore")
        inference.append_simulations(torch.as_tensor(theta, dtype=torch.float32),
                                     torch.as_tensor(x, dtype=torch.float32))
        with contextlib.redirect_stdout(io.StringIO()):  # its "converged after" line
            estimator = inference.train(
                training_batch_size=500,
                max_num_epochs=max(5, min(500, _SBI_TRAIN_SAMPLES // n_train)))
        potential_fn, transform = likelihood_estimator_based_potential(
            estimator, prior, x_o=None, enable_transform=False)
        posterior = MCMCPosterior(potential_fn, proposal=prior, theta_transform=transform)
        posterior.set_default_x(torch.as_tensor(x_o, dtype=torch.float32))  # iid trials
        init = torch.as_tensor(prop.sample(_SBI_MAP_INITS, random_state=rng),
                               dtype=torch.float32)
        for lr, steps in _SBI_MAP_STAGES:
            init = posterior.map(init_method=init, num_to_optimize=1, num_iter=steps,
                                 learning_rate=lr, force_update=True,
                                 show_progress_bars=False).reshape(1, k)
    return init[0].detach().numpy().astype(float), inference._summary["epochs_trained"][-1]


def rms(z) -> float:
    z = np.asarray(z)
    return float(np.sqrt((z**2).mean()))


def compare(name, sim, X, prop, ident, mle, se, budget, peers, seeds, sbi_seeds):
    """One row of the table: AVO at ``budget`` (``None``: its defaults) and the peers
    at AVO's count of simulations."""
    z = {"avo": [], "abc": [], "sbi": []}
    secs = {"avo": 0.0, "abc": 0.0, "sbi": 0.0}
    budgets, draws, epochs, held, ratios = [], 0, [], [], []
    for s in range(seeds):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            f = AVOSimulatorFitter(Simulator(sim, vectorized=True), prop,
                                   max_simulations=budget, random_state=s).fit(X)
        secs["avo"] += time.perf_counter() - t0
        z["avo"].append((ident(f.theta_) - mle) / se)
        if f.standard_errors_ is not None and len(f.theta_) == len(mle):
            # the interval in the judged units: ident is elementwise and increasing on
            # these cases (exp for the Poisson log-rate, identity elsewhere)
            low, high = (ident(end) for end in f.confidence_intervals(0.95).T)
            held.append((low <= mle) & (mle <= high))
            ratios.append((high - low) / (2 * 1.959964) / se)
        budgets.append(f.n_simulations_)
        if "abc" in peers:
            t0 = time.perf_counter()
            theta, draws = rejection_abc(sim, X, prop, f.n_simulations_,
                                         np.random.default_rng(s))
            secs["abc"] += time.perf_counter() - t0
            z["abc"].append((ident(theta) - mle) / se)
        if "sbi" in peers and s < sbi_seeds:
            t0 = time.perf_counter()
            theta, n_epochs = sbi_nle_map(sim, X, prop, f.n_simulations_, s)
            secs["sbi"] += time.perf_counter() - t0
            epochs.append(n_epochs)
            z["sbi"].append((ident(theta) - mle) / se)
            print(f"  {name} seed {s}: sbi NLE MAP z {np.round(z['sbi'][-1], 2).tolist()}"
                  f"  ({n_epochs} epochs, {time.perf_counter() - t0:.0f} s); AVO z "
                  f"{np.round(z['avo'][-1], 2).tolist()}", flush=True)
    within = np.mean([np.all(np.abs(v) < 2) for v in z["avo"]])
    line = (f"{name:<8} budget {int(np.mean(budgets)):7d} simulations "
            f"(max_simulations={budget}) | AVO RMS {rms(z['avo']):6.2f} SE, within 2 SE "
            f"{within:4.0%}")
    if held:
        line += (f", 95 % interval holds the MLE {np.mean(held):4.0%}, SE/MLE SE "
                 f"{np.median(ratios):.2f}")
    line += f" ({secs['avo'] / seeds:.0f} s/fit)"
    if z["abc"]:
        line += (f" | rejection ABC ({draws} data sets from the starting proposal) RMS "
                 f"{rms(z['abc']):6.2f} SE ({secs['abc'] / seeds:.0f} s/fit)")
    if z["sbi"]:
        line += (f" | sbi NLE MAP ({len(z['sbi'])} seeds, same budget, "
                 f"{np.mean(epochs):.0f} epochs) RMS {rms(z['sbi']):6.2f} SE "
                 f"({secs['sbi'] / len(z['sbi']):.0f} s/fit)")
    print(line, flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--cases", default="poisson,gauss10,gk")
    parser.add_argument("--peers", default="abc,sbi",
                        help="comma-separated subset of abc,sbi")
    parser.add_argument("--budgets", default="default",
                        help="comma-separated max_simulations values, or default")
    parser.add_argument("--sbi-seeds", type=int, default=None,
                        help="seeds for sbi (default: --seeds); sbi is the slow peer")
    args = parser.parse_args()
    torch.set_num_threads(1)
    names, peers = args.cases.split(","), set(args.peers.split(","))
    if "sbi" in peers:
        try:
            import sbi
        except ImportError:
            print("sbi is not installed: skipping the sbi NLE peer", flush=True)
            peers.discard("sbi")
        else:
            print(f"sbi {sbi.__version__}", flush=True)
    sbi_seeds = args.seeds if args.sbi_seeds is None else min(args.sbi_seeds, args.seeds)
    budgets = [None if b == "default" else int(b) for b in args.budgets.split(",")]
    for name, sim, X, prop, ident, mle, se, *_ in point_cases():
        if name not in names:
            continue
        for budget in budgets:
            compare(name, sim, X, prop, ident, mle, se, budget, peers, args.seeds,
                    sbi_seeds)
