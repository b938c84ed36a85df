"""``sktilt energy-peaks``: tune a VAE of weekly load curves to the top-rho peak weeks."""

from __future__ import annotations

__all__ = ["run_energy_peaks"]

import time
from pathlib import Path

import numpy as np
from scipy import stats

from .._training import EpochProgress
from ..datasets import load_meter_curves, make_load_curves
from ..models import VAE
from ..tilt import BoltzmannTuner, CurveMaximum, quantile_budget
from ._common import cached_fit, save_figure, write_json


# The base model: a log-normal VAE whose hour-scale noise is part of the tuned model
# (a VAE's decoded mean is smooth and has almost no peak tail: P(peak > q99) was 2e-5),
# with a noise scale that follows the decoded level (noise_model="level"): the true
# top-1 % weeks are cold, heating-dominated and smooth, and with one scale per hour the
# model's peaks came from noise spikes in ordinary weeks (scenario energy 0.87x the true
# top weeks', peak KS 0.25). Chosen by measurement against the generator's truth
# (100 000 fresh weeks): latent 16, 160 epochs give P(peak > q99) 0.5 %, scenario peak
# KS 0.06 and energy ratio 1.05 (constant noise: 2.0 %, 0.21, 0.87; latent 32 or
# beta_kl 0.5 were worse).
_VAE = dict(latent_dim=16, max_epochs=160, likelihood="lognormal", noise_model="level")


def run_energy_peaks(*, quantile=0.01, data=None, out="sktilt-out/energy-peaks",
                     n_weeks=3000, households=10, epochs=_VAE["max_epochs"], seed=0,
                     device="cpu", n_scenarios=1000, progress=True, log=print) -> dict:
    """Load or generate curves, train (or load) the VAE, tune, write scenarios, draw.

    Returns the summary dict also written to ``out/summary.json``; the peak-week
    scenarios (one row per week, 168 hourly kW) go to ``out/scenarios.csv``, both before
    any figure.
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
    if X.min() <= 0:
        X = np.maximum(X, 1e-3)  # a log-normal model needs positive loads (empty meters)

    callbacks = [EpochProgress(epochs, desc="VAE of load curves")] if progress else None
    vae = cached_fit(VAE(**{**_VAE, "max_epochs": epochs}, random_state=seed, device=device,
                         callbacks=callbacks), X, out, "vae", log=log)
    peak = CurveMaximum(log=True)  # the log-normal model's peak tilt exists in log kW
    base_sampler = vae.get_base_sampler(observation_noise=True)
    tuner = BoltzmannTuner(base_sampler, peak, kl_budget=quantile_budget(quantile),
                           device=device, random_state=seed, verbose=int(progress)).fit()

    base = vae.sample(5000, observation_noise=True, random_state=seed + 1)
    tuned = tuner.sample(5000, random_state=seed + 2)
    data_peaks = X.max(1)
    threshold = float(np.quantile(data_peaks, 1 - quantile))
    tail = tuner.tail_probability(np.log(threshold), n_samples=50_000, random_state=seed + 3)
    scenarios = tuner.sample_tail(n_scenarios, np.log(threshold), random_state=seed + 4)
    np.savetxt(out / "scenarios.csv", scenarios, delimiter=",", fmt="%.4f",
               header=",".join(f"h{h}" for h in range(X.shape[1])), comments="")
    top = X[data_peaks > threshold]
    summary = {
        "source": source,
        "n_curves": int(X.shape[0]),
        "quantile": quantile,
        "kl_budget": quantile_budget(quantile),
        "beta": tuner.beta_,
        "kl": tuner.kl_,
        "kl_se": tuner.kl_se_,
        "converged": bool(tuner.converged_),
        "peak_kw": {"data": float(data_peaks.mean()), "base": float(base.max(1).mean()),
                    "tuned": float(tuned.max(1).mean()),
                    "scenarios": float(scenarios.max(1).mean()),
                    "data_top_quantile_mean": float(top.max(1).mean())},
        "weekly_kwh": {"data": float(X.sum(1).mean()), "base": float(base.sum(1).mean()),
                       "tuned": float(tuned.sum(1).mean()),
                       "scenarios": float(scenarios.sum(1).mean()),
                       "data_top_quantile_mean": float(top.sum(1).mean())},
        "peak_threshold_kw": threshold,
        # the base model's calibration: about `quantile` when p reproduces the data's tail
        "p_peak_above_threshold": tail.probability,
        "p_peak_above_threshold_se": tail.std_error,
        # the base model's weekly peaks against the data's (0 when identical)
        "base_peak_ks_vs_data": float(stats.ks_2samp(base.max(1), data_peaks).statistic),
        "scenario_check": {
            "n_scenarios": int(len(scenarios)),
            "n_data_top_weeks": int(len(top)),
            "peak_ks_vs_data_top": float(stats.ks_2samp(scenarios.max(1),
                                                        top.max(1)).statistic),
            "energy_ratio_vs_data_top": float(scenarios.sum(1).mean() / top.sum(1).mean()),
        },
        "seconds": None,
    }
    summary["seconds"] = time.perf_counter() - t_start
    write_json(out / "summary.json", summary)
    log(_table(summary))
    written = [out / "summary.json", out / "scenarios.csv"]
    try:
        written += _figures(X, base, tuned, scenarios, top, threshold, tuner, out)
    except ImportError as exc:
        log(f"figures skipped: {exc}")
    log("wrote " + ", ".join(str(p) for p in written))
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
        (f"P_model(peak > {s['peak_threshold_kw']:.2f} kW)",
         f"{s['p_peak_above_threshold']:.2e} ± {s['p_peak_above_threshold_se']:.1e} "
         f"(the data's top-{s['quantile']:.0%} peak: {s['quantile']:.0e} if calibrated)"),
        ("scenarios vs data's top weeks",
         f"peak KS {s['scenario_check']['peak_ks_vs_data_top']:.2f}, energy ratio "
         f"{s['scenario_check']['energy_ratio_vs_data_top']:.2f} "
         f"({s['scenario_check']['n_data_top_weeks']} data weeks)"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _figures(X, base, tuned, scenarios, top, threshold, tuner, out: Path) -> list:
    """curves.png (weekday ticks, threshold, the data's top weeks), peaks.png, pareto.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..plotting import plot_curves, plot_pareto_front

    colours = {"data": "C0", "base": "C1", "tuned": "C2", "scenarios": "C3"}
    days = np.arange(0, X.shape[1] + 1, 24)
    fig, axes = plt.subplots(1, 2, figsize=(13, 4), sharey=True)
    plot_curves(X[:1000], base[:1000], labels=("data", "base model p"), ax=axes[0])
    axes[0].set_title("data vs the base model")
    plot_curves(scenarios, top, labels=("peak scenarios", "data's top weeks"), ax=axes[1])
    axes[1].set_title(f"scenarios vs the data's top-{np.exp(-tuner.kl_budget):.0%} weeks")
    for ax in axes:
        ax.axhline(threshold, color="k", ls="--", lw=1, label="peak threshold")
        ax.set_xticks(days[:-1] + 12, ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][
            :len(days) - 1])
        ax.legend(fontsize=8)
    written = [save_figure(fig, out / "curves.png")]
    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.linspace(0, max(np.quantile(tuned.max(1), 0.99), scenarios.max()), 60)
    for name, curves in (("data", X), ("base", base), ("tuned", tuned),
                         ("scenarios", scenarios)):
        ax.hist(curves.max(1), bins=bins, density=True, histtype="step", lw=2,
                color=colours[name], label=name)
    ax.axvline(threshold, color="k", ls="--", lw=1, label="threshold")
    ax.set_xlabel("weekly peak [kW]")
    ax.set_ylabel("density")
    ax.legend()
    written.append(save_figure(fig, out / "peaks.png"))
    fig, ax = plt.subplots(figsize=(5, 4))
    hist = tuner.history_
    ref = tuner.reference_curve(np.linspace(0, tuner.beta_ * 1.2, 40))
    plot_pareto_front([h["kl"] for h in hist], [h["criterion_mean"] for h in hist],
                      reference=ref, ax=ax)
    ax.axvline(tuner.kl_budget, color="k", ls=":", lw=1, label="KL budget")
    ax.set_ylabel("E_q log weekly peak [log kW]")
    ax.legend(fontsize=8)
    written.append(save_figure(fig, out / "pareto.png"))
    return written
