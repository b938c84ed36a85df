"""``sktilt energy-peaks``: tune a VAE of weekly load curves to the top-rho peak weeks."""

from __future__ import annotations

__all__ = ["run_energy_peaks"]

import time
from pathlib import Path

import numpy as np

from .._training import EpochProgress
from ..datasets import load_meter_curves, make_load_curves
from ..models import VAE
from ..tilt import BoltzmannTuner, CurveMaximum, quantile_budget
from ._common import cached_fit, save_figure, write_json


def run_energy_peaks(*, quantile=0.01, data=None, out="sktilt-out/energy-peaks",
                     n_weeks=3000, households=10, epochs=60, seed=0, progress=True,
                     log=print) -> dict:
    """Load or generate curves, train (or load) the VAE, tune, report, draw.

    Returns the summary dict also written to ``out/summary.json``.
    """
    t_start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if data is not None:
        X = load_meter_curves(data, group_size=households, random_state=seed)
        source = f"{data} ({households} meters per curve)"
    else:
        X = make_load_curves(n_weeks, n_households=households, random_state=seed)
        source = f"synthetic: {n_weeks} weeks x {households} households"
    log(f"data: {X.shape[0]} weekly curves of {X.shape[1]} hours from {source}")

    callbacks = [EpochProgress(epochs, desc="VAE of load curves")] if progress else None
    vae = cached_fit(VAE(latent_dim=8, max_epochs=epochs, random_state=seed,
                         callbacks=callbacks), X, out, "vae", log=log)
    peak = CurveMaximum()
    tuner = BoltzmannTuner(vae, peak, kl_budget=quantile_budget(quantile), random_state=seed,
                           verbose=int(progress)).fit()

    base = vae.sample(5000, random_state=seed + 1)
    tuned = tuner.sample(5000, random_state=seed + 2)
    threshold = float(np.quantile(X.max(1), 1 - quantile))
    tail = tuner.tail_probability(threshold, n_samples=50_000, random_state=seed + 3)
    summary = {
        "source": source,
        "n_curves": int(X.shape[0]),
        "quantile": quantile,
        "kl_budget": quantile_budget(quantile),
        "beta": tuner.beta_,
        "kl": tuner.kl_,
        "kl_se": tuner.kl_se_,
        "converged": bool(tuner.converged_),
        "peak_kw": {"data": float(X.max(1).mean()), "base": float(base.max(1).mean()),
                    "tuned": float(tuned.max(1).mean()),
                    "data_top_quantile_mean": float(np.sort(X.max(1))[
                        -max(1, int(quantile * len(X))):].mean())},
        "weekly_kwh": {"data": float(X.sum(1).mean()), "base": float(base.sum(1).mean()),
                       "tuned": float(tuned.sum(1).mean())},
        "peak_threshold_kw": threshold,
        "p_peak_above_threshold": tail.probability,
        "p_peak_above_threshold_se": tail.std_error,
        "seconds": None,
    }
    _figures(X, base, tuned, tuner, out)
    summary["seconds"] = time.perf_counter() - t_start
    write_json(out / "summary.json", summary)
    log(_table(summary))
    log(f"wrote {out / 'summary.json'}, {out / 'curves.png'}, {out / 'pareto.png'}")
    return summary


def _table(s: dict) -> str:
    rows = [
        ("beta", f"{s['beta']:.3f}"),
        ("KL(q || p)", f"{s['kl']:.3f} ± {s['kl_se']:.3f} (budget {s['kl_budget']:.3f})"),
        ("mean weekly peak [kW]", f"base {s['peak_kw']['base']:.2f}  tuned "
         f"{s['peak_kw']['tuned']:.2f}  (data top-{s['quantile']:.0%} "
         f"{s['peak_kw']['data_top_quantile_mean']:.2f})"),
        ("mean weekly consumption [kWh]", f"base {s['weekly_kwh']['base']:.0f}  tuned "
         f"{s['weekly_kwh']['tuned']:.0f}"),
        (f"P(peak > {s['peak_threshold_kw']:.2f} kW)",
         f"{s['p_peak_above_threshold']:.2e} ± {s['p_peak_above_threshold_se']:.1e} "
         f"(the data's top-{s['quantile']:.0%} peak)"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _figures(X, base, tuned, tuner, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..plotting import plot_curves, plot_pareto_front

    fig, axes = plt.subplots(1, 2, figsize=(13, 4), sharey=True)
    plot_curves(X[:1000], base[:1000], labels=("data", "VAE p"), ax=axes[0])
    axes[0].set_title("data vs the trained VAE")
    plot_curves(base[:1000], tuned[:1000], labels=("VAE p", "tuned q"), ax=axes[1])
    axes[1].set_title(f"VAE p vs tuned q (top {np.exp(-tuner.kl_budget):.0%} peaks)")
    save_figure(fig, out / "curves.png")
    fig, ax = plt.subplots(figsize=(5, 4))
    hist = tuner.history_
    ref = tuner.reference_curve(np.linspace(0, tuner.beta_ * 1.2, 40))
    plot_pareto_front([h["kl"] for h in hist], [h["criterion_mean"] for h in hist],
                      reference=ref, ax=ax)
    ax.set_ylabel("E_q weekly peak [kW]")
    save_figure(fig, out / "pareto.png")
