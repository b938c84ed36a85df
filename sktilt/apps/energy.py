"""``sktilt energy-peaks``: tune a VAE of weekly load curves to the top-rho peak weeks."""

from __future__ import annotations

__all__ = ["WeeklyEnergy", "run_energy_peaks"]

import math
import time
from pathlib import Path

import numpy as np
from scipy import stats

from .._training import EpochProgress
from ..datasets import load_meter_curves, make_load_curves
from ..models import VAE
from ..tilt import BoltzmannTuner, CurveMaximum, quantile_budget
from ..tilt._criteria import _Criterion, _flat
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
_VAE = dict(latent_dim=16, max_iter=160, likelihood="lognormal", noise_model="level")
# Fresh weeks of the generator drawn as the truth of the scenario check (synthetic data
# only): 500 true top-1 % weeks, or 250 top-1 % of the weeks below the median energy,
# at half the job time that 100 000 weeks would add.
_N_TRUTH = 50_000
# Draws of the tuned model q (the tilt itself) summarised and drawn in peaks.png.
_N_DRAWS = 5000


class WeeklyEnergy(_Criterion):
    """The weekly energy of a curve of hourly kW (the sum over hours), or its log.

    A picklable constraint function for the tuner: it is called on the same decoded
    curves as the criterion (kW: the log-normal decoder has already taken the ``exp``),
    so the energy is their plain sum, not a sum of ``exp``.

    Parameters
    ----------
    log : bool, default=True
        Return ``log`` of the energy, as the peak criterion works in log kW.
    unit : float, default=1.0
        The energy's unit in kWh: ``log=True, unit=cap`` gives ``log(E / cap)``, 0 at
        the cap, so that a constraint ``<= 0`` reads as a relative change of the energy.
    """

    def __init__(self, log=True, unit=1.0):
        self.log = log
        self.unit = unit

    def __call__(self, X):
        e = _flat(X).sum(-1) / float(self.unit)
        return e.log() if self.log else e


def fit_peak_tuner(vae, *, quantile=0.01, max_energy_kwh=None, low_share=None,
                   device="cpu", seed=0, verbose=0) -> BoltzmannTuner:
    """The job's tuner: the log-peak tilt of the VAE's full model, sized to its event.

    Without ``max_energy_kwh`` the budget is ``-log rho`` (the top-rho peak weeks). With
    it, the constraint ``E_q log(weekly energy / max_energy_kwh) <= 0`` is added and the
    budget is ``-log(rho * low_share)``: the probability of the planner's event, the
    top-rho peak weeks among the ``low_share`` of weeks at most ``max_energy_kwh``.
    """
    budget = quantile_budget(quantile if max_energy_kwh is None else quantile * low_share)
    constraints = (None if max_energy_kwh is None else
                   [(WeeklyEnergy(log=True, unit=max_energy_kwh), "<=", 0.0)])
    return BoltzmannTuner(vae.get_base_sampler(observation_noise=True),
                          CurveMaximum(log=True),  # the peak tilt exists in log kW only
                          kl_budget=budget, constraints=constraints, device=device,
                          random_state=seed, verbose=verbose).fit()


def sample_event(tuner, n, log_peak_threshold, max_energy_kwh, *, random_state=None):
    """``n`` draws of the base model ``p`` given peak > threshold and energy <= cap.

    :meth:`~sktilt.BoltzmannTuner.sample_tail` and
    :meth:`~sktilt.BoltzmannTuner.tail_probability` with ``where`` = the energy cap.
    Returns the draws, the share of the proposal's candidates that fell in the event,
    the effective number of those candidates, and the importance-sampling estimate of
    ``P_p(event)`` with its standard error.
    """
    def at_most_cap(x):
        return x.reshape(len(x), -1).sum(1) <= max_energy_kwh

    sample = tuner.sample_tail(n, log_peak_threshold, where=at_most_cap,
                               random_state=random_state)
    estimate = tuner.tail_probability(log_peak_threshold, where=at_most_cap,
                                      random_state=random_state)
    return (sample, estimate.n_hits / estimate.n_samples, estimate.ess,
            (estimate.probability, estimate.std_error))


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _hour_columns(n_hours=168) -> list:
    """Column names of scenarios.csv: weekday and hour from Monday 00:00, and the unit."""
    return [f"{_DAYS[h // 24 % 7]}_{h % 24:02d}h_kW" for h in range(n_hours)]


def _ks(a, b) -> float | None:
    return float(stats.ks_2samp(a, b).statistic) if len(a) and len(b) else None


def _meter_layout(frame) -> str:
    """``"long"`` for three columns (timestamp, meter, value) whose second column holds
    meter names or whose timestamps repeat (one row per meter); else ``"wide"``."""
    import pandas as pd

    if frame.shape[1] != 3:
        return "wide"
    named = pd.to_numeric(frame.iloc[:, 1], errors="coerce").isna().any()
    return "long" if named or frame.iloc[:, 0].duplicated().any() else "wide"


def load_data(data, *, layout="auto", unit="kW", households=10, seed=0):
    """``--data`` read as weekly curves: the CSV's first column holds the timestamps,
    then one column per meter (wide) or a meter and a value column (long)."""
    from ..datasets._meter import _read

    frame = _read(data)
    if layout not in ("auto", "wide", "long"):
        raise ValueError(f"layout (--layout) must be 'auto', 'wide' or 'long', got {layout!r}")
    if layout == "auto":
        layout = _meter_layout(frame)
    columns = list(frame.columns)
    if layout == "long" and len(columns) != 3:
        raise ValueError(f"--data {data}: the long layout has three columns (timestamp, "
                         f"meter, value); found {columns}")
    names = (dict(meter_col=columns[1], value_col=columns[2]) if layout == "long" else {})
    try:
        X = load_meter_curves(frame, timestamp_col=columns[0], unit=unit,
                              group_size=households, random_state=seed, **names)
    except ValueError as exc:  # name the command's options, not the function's
        message = str(exc)
        for param, option in (("group_size", "--households"), ("path_or_frame", "--data"),
                              (", or set timestamp_col", ""),
                              ("set timestamp_col/meter_col/value_col",
                               "pass --layout long for a (timestamp, meter, value) file")):
            message = message.replace(param, option)
        raise ValueError(f"--data {data} ({layout} layout): {message}") from None
    return X, layout


def run_energy_peaks(*, quantile=0.01, data=None, out="sktilt-out/energy-peaks",
                     n_weeks=3000, households=10, epochs=_VAE["max_iter"], seed=0,
                     device="cpu", n_scenarios=1000, max_energy=None, layout="auto",
                     unit="kW", n_truth_weeks=None, progress=True, log=print) -> dict:
    """Load or generate curves, train (or load) the VAE, tune, write scenarios, draw.

    ``max_energy`` (``None``, ``"median"`` or kWh) asks for the planner's case: the
    top-rho peak weeks among the weeks whose energy is at most that cap (the data's
    median weekly energy for ``"median"``), tuned with the constraint
    ``E_q log(weekly energy) <= log(cap)``. With generated data the scenarios are checked
    against ``n_truth_weeks`` fresh weeks of the generator (default 50 000; 0: none).
    ``data`` is a CSV of meter readings in ``unit`` (kW, kWh, W or Wh per interval), its
    timestamps in the first column, ``layout`` ``"wide"`` (one column per meter),
    ``"long"`` (timestamp, meter, value) or ``"auto"`` (detected).

    Returns the summary dict also written to ``out/summary.json``; the peak-week
    scenarios (one row per week, 168 hourly kW) go to ``out/scenarios.csv``, both before
    any figure.
    """
    t_start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if data is not None:
        X, layout = load_data(data, layout=layout, unit=unit, households=households,
                              seed=seed)
        source = f"{data} ({layout} layout, {unit}; {households} meters per curve)"
    else:
        X = make_load_curves(n_weeks, n_households=households, random_state=seed)
        source = f"synthetic: {n_weeks} weeks x {households} households"
    log(f"data: {X.shape[0]} weekly curves of {X.shape[1]} hours from {source}")
    if X.min() <= 0:
        X = np.maximum(X, 1e-3)  # a log-normal model needs positive loads (empty meters)
    data_peaks, data_energy = X.max(1), X.sum(1)
    cap = low = None
    if max_energy is not None:
        try:
            cap = (float(np.median(data_energy)) if max_energy == "median"
                   else float(max_energy))
        except (TypeError, ValueError):
            cap = math.nan
        if not (math.isfinite(cap) and cap > 0):
            raise ValueError(f"max_energy (--max-energy) must be 'median' or a positive "
                             f"number of kWh, got {max_energy!r}")
        low = data_energy <= cap
        if low.sum() < 2:
            raise ValueError(f"max_energy (--max-energy) = {cap:.6g} kWh leaves "
                             f"{int(low.sum())} of "
                             f"{len(X)} weeks (the data's weekly energy runs "
                             f"{data_energy.min():.0f}-{data_energy.max():.0f} kWh)")
    low_share = None if low is None else float(low.mean())

    callbacks = [EpochProgress(epochs, desc="VAE of load curves")] if progress else None
    vae = cached_fit(VAE(**{**_VAE, "max_iter": epochs}, random_state=seed, device=device,
                         callbacks=callbacks), X, out, "vae", log=log)
    t_tune = time.perf_counter()
    tuner = fit_peak_tuner(vae, quantile=quantile, max_energy_kwh=cap, low_share=low_share,
                           device=device, seed=seed, verbose=int(progress))
    tune_seconds = time.perf_counter() - t_tune

    base = vae.sample(_N_DRAWS, observation_noise=True, random_state=seed + 1)
    tuned = tuner.sample(_N_DRAWS, random_state=seed + 2)
    # the event: the top-rho peak weeks (among the weeks at most the cap, if any)
    threshold = float(np.quantile(data_peaks if low is None else data_peaks[low],
                                  1 - quantile))
    tail = tuner.tail_probability(np.log(threshold), n_samples=50_000, random_state=seed + 3)
    if cap is None:
        scenarios = tuner.sample_tail(n_scenarios, np.log(threshold), random_state=seed + 4)
        top = X[data_peaks > threshold]
    else:
        scenarios, hit_share, event_ess, p_event = sample_event(
            tuner, n_scenarios, np.log(threshold), cap, random_state=seed + 4)
        top = X[low & (data_peaks > threshold)]
    # one row per week from Monday 00:00, one column per hour: Mon_00h_kW ... Sun_23h_kW
    np.savetxt(out / "scenarios.csv", scenarios, delimiter=",", fmt="%.4f",
               header=",".join(_hour_columns(X.shape[1])), comments="")
    tuned_peaks = tuned.max(1)
    summary = {
        "source": source,
        "n_curves": int(X.shape[0]),
        "quantile": quantile,
        "kl_budget": tuner.kl_budget,
        "beta": tuner.beta_,
        "kl": tuner.kl_,
        "kl_se": tuner.kl_se_,
        "converged": bool(tuner.converged_),
        "tune_seconds": tune_seconds,
        # "tuned" is the tilt q itself (the scenarios' proposal, not written): a tilt of
        # the log peak is heavier-tailed than the top weeks, hence its median and q99
        "peak_kw": {"data": float(data_peaks.mean()), "base": float(base.max(1).mean()),
                    "tuned": float(tuned_peaks.mean()),
                    "tuned_median": float(np.median(tuned_peaks)),
                    "tuned_q99": float(np.quantile(tuned_peaks, 0.99)),
                    "scenarios": float(scenarios.max(1).mean()),
                    "data_top_quantile_mean": float(top.max(1).mean())},
        "weekly_kwh": {"data": float(data_energy.mean()), "base": float(base.sum(1).mean()),
                       "tuned": float(tuned.sum(1).mean()),
                       "scenarios": float(scenarios.sum(1).mean()),
                       "data_top_quantile_mean": float(top.sum(1).mean())},
        "peak_threshold_kw": threshold,
        # the base model's calibration: about `quantile` when p reproduces the data's tail
        # (with max_energy: P(peak > threshold) over all weeks, not only the low ones)
        "p_peak_above_threshold": tail.probability,
        "p_peak_above_threshold_se": tail.std_error,
        # the base model's weekly peaks against the data's (0 when identical)
        "base_peak_ks_vs_data": float(stats.ks_2samp(base.max(1), data_peaks).statistic),
        "scenario_check": {
            "n_scenarios": int(len(scenarios)),
            "n_data_top_weeks": int(len(top)),
            "peak_ks_vs_data_top": _ks(scenarios.max(1), top.max(1)),
            "energy_ratio_vs_data_top": float(scenarios.sum(1).mean() / top.sum(1).mean()),
        },
        "seconds": None,
    }
    if cap is not None:
        energy_q = tuned.sum(1)
        value, se = float(tuner.constraint_values_[0]), float(tuner.constraint_values_se_[0])
        # the tuner's own acceptance: within tol * sd_p g or 2 standard errors
        tolerance = max(tuner.tol * float(np.log(base.sum(1) / cap).std()), 2 * se)
        summary["max_energy"] = {
            "requested": max_energy,
            "cap_kwh": cap,
            "data_share_below_cap": low_share,
            # a constraint on a mean: the geometric-mean weekly energy of q is at most
            # the cap, not every week of q
            "constraint": "E_q log(weekly energy / cap_kwh) <= 0",
            "target": 0.0,
            "value": value,
            "value_se": se,
            "tolerance": tolerance,
            "met": bool(value <= tolerance),
            "multiplier": float(tuner.constraint_multipliers_[0]),
            "tuned_geometric_mean_kwh": float(cap * np.exp(value)),
            "tuned_share_below_cap": float((energy_q <= cap).mean()),
            # the scenarios are p given the whole event: all of them meet the cap
            "scenarios_share_below_cap": float((scenarios.sum(1) <= cap).mean()),
            "proposal_share_in_event": hit_share,
            "scenarios_effective_candidates": event_ess,
            # the base model's calibration: rho * data_share_below_cap if calibrated
            "p_event": p_event[0],
            "p_event_se": p_event[1],
        }
    n_truth_weeks = _N_TRUTH if n_truth_weeks is None else n_truth_weeks
    if data is None and n_truth_weeks:
        summary["truth_check"] = _truth_check(scenarios, quantile, cap, threshold,
                                              n_truth_weeks, households, seed)
    summary["seconds"] = time.perf_counter() - t_start
    write_json(out / "summary.json", summary)
    log(_table(summary))
    written = [out / "summary.json", out / "scenarios.csv"]
    try:
        written += _figures(X, base, tuned, scenarios, top, threshold, tuner, out, quantile,
                            cap)
    except ImportError as exc:
        log(f"figures skipped: {exc}")
    log("wrote " + ", ".join(str(p) for p in written))
    return summary


def _truth_check(scenarios, quantile, cap, threshold, n, households, seed) -> dict:
    """The scenarios against fresh weeks of the generator (the data's truth).

    ``truth``: the generator's own event, its top-rho peak weeks (among the weeks whose
    energy is at most the job's cap, if any); ``at_job_thresholds``: the fresh weeks above
    the job's peak threshold (the data's top-rho peak, a sample quantile), what a perfect
    model would give, so the distance to them is the model's own error.
    """
    truth = make_load_curves(n, n_households=households, random_state=seed + 10_007)
    peaks, energy = truth.max(1), truth.sum(1)
    low = np.ones(len(truth), bool) if cap is None else energy <= cap
    t_true = np.quantile(peaks[low], 1 - quantile)
    true_top = truth[low & (peaks > t_true)]
    at_job = truth[low & (peaks > threshold)]
    sp = scenarios.max(1)
    return {
        "n_truth_weeks": int(n),
        "n_true_event_weeks": int(len(true_top)),
        "true_peak_threshold_kw": float(t_true),
        "peak_ks_vs_truth": _ks(sp, true_top.max(1)),
        "energy_ratio_vs_truth": float(scenarios.sum(1).mean() / true_top.sum(1).mean()),
        "n_truth_weeks_at_job_thresholds": int(len(at_job)),
        "peak_ks_vs_truth_at_job_thresholds": _ks(sp, at_job.max(1)),
        # the base model's peak tail beyond anything the generator made in n weeks
        "true_max_peak_kw": float(peaks.max()),
        "scenarios_share_above_true_max_peak": float((sp > peaks.max()).mean()),
        "share_of_true_top_weeks_below_cap": (
            None if cap is None else
            float((energy[peaks > np.quantile(peaks, 1 - quantile)] <= cap).mean())),
    }


def _table(s: dict) -> str:
    rho = f"top-{s['quantile']:.0%}"
    pk, kwh = s["peak_kw"], s["weekly_kwh"]
    event = rho if "max_energy" not in s else (
        f"{rho} of the weeks <= {s['max_energy']['cap_kwh']:.0f} kWh")
    rows = [
        ("beta", f"{s['beta']:.3f}"),
        ("KL(q || p)", f"{s['kl']:.3f} ± {s['kl_se']:.3f} (budget {s['kl_budget']:.3f})"),
        ("mean weekly peak [kW]", f"base {pk['base']:.2f}  scenarios {pk['scenarios']:.2f}  "
         f"(data {event} {pk['data_top_quantile_mean']:.2f})"),
        # the tilt q is the scenarios' proposal; a tilt of the log peak has a heavier
        # tail than the top weeks (its mean alone reads as absurd weeks)
        ("tuned q (proposal) weekly peak [kW]",
         f"median {pk['tuned_median']:.2f}, 99 % {pk['tuned_q99']:.1f}, mean "
         f"{pk['tuned']:.2f} (not written: the scenarios are p given the event)"),
        ("mean weekly consumption [kWh]", f"base {kwh['base']:.0f}  scenarios "
         f"{kwh['scenarios']:.0f}  (data {event} {kwh['data_top_quantile_mean']:.0f})"),
        (f"P_model(peak > {s['peak_threshold_kw']:.2f} kW)",
         f"{s['p_peak_above_threshold']:.2e} ± {s['p_peak_above_threshold_se']:.1e}"
         + ("" if "max_energy" in s else
            f" (the data's {rho} peak: {s['quantile']:.0e} if calibrated)")),
    ]
    if "max_energy" in s:
        m = s["max_energy"]
        rows += [
            ("constraint E_q log(weekly kWh / cap)",
             f"{m['value']:.4f} ± {m['value_se']:.4f} <= 0 ({'met' if m['met'] else 'NOT met'}"
             f", tolerance {m['tolerance']:.4f}; geometric mean {m['tuned_geometric_mean_kwh']:.0f}"
             f" kWh, cap {m['cap_kwh']:.0f}; multiplier {m['multiplier']:.3f})"),
            ("weeks with energy <= cap",
             f"tuned q {m['tuned_share_below_cap']:.0%} (a mean constraint), scenarios "
             f"{m['scenarios_share_below_cap']:.0%} (data {m['data_share_below_cap']:.0%})"),
            ("P_model(event)", f"{m['p_event']:.2e} ± {m['p_event_se']:.1e} "
             f"({s['quantile'] * m['data_share_below_cap']:.1e} if calibrated)"),
        ]
    c = s["scenario_check"]
    ks = "n/a" if c["peak_ks_vs_data_top"] is None else f"{c['peak_ks_vs_data_top']:.2f}"
    rows.append((f"scenarios vs data's {event} weeks",
                 f"peak KS {ks}, energy ratio {c['energy_ratio_vs_data_top']:.2f} "
                 f"({c['n_data_top_weeks']} data weeks)"))
    if "truth_check" in s:
        t = s["truth_check"]
        rows.append((f"scenarios vs the generator's {event}",
                     f"peak KS {t['peak_ks_vs_truth']:.2f} (at the job's threshold "
                     f"{t['peak_ks_vs_truth_at_job_thresholds']:.2f}), energy ratio "
                     f"{t['energy_ratio_vs_truth']:.2f} ({t['n_true_event_weeks']} of "
                     f"{t['n_truth_weeks']} fresh weeks; "
                     f"{t['scenarios_share_above_true_max_peak']:.1%} of the scenarios peak "
                     f"above their highest, {t['true_max_peak_kw']:.1f} kW)"))
    rows.append(("tuner fit [s]", f"{s['tune_seconds']:.1f}"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _figures(X, base, tuned, scenarios, top, threshold, tuner, out: Path, rho, cap=None
             ) -> list:
    """curves.png (weekday ticks, threshold, the data's top weeks), peaks.png, pareto.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..plotting import plot_curves

    colours = {"data": "C0", "base": "C1", "tuned": "C2", "scenarios": "C3"}
    event = f"top-{rho:.0%}" + ("" if cap is None else f" of the <= {cap:.0f} kWh")
    days = np.arange(0, X.shape[1] + 1, 24)
    fig, axes = plt.subplots(1, 2, figsize=(13, 4), sharey=True)
    plot_curves(X[:1000], base[:1000], labels=("data", "base model p"), ax=axes[0])
    axes[0].set_title("data vs the base model")
    plot_curves(scenarios, top, labels=("peak scenarios", f"data's {event} weeks"),
                ax=axes[1])
    axes[1].set_title(f"scenarios vs the data's {event} weeks")
    for ax in axes:
        ax.axhline(threshold, color="k", ls="--", lw=1, label="peak threshold")
        ax.set_xticks(days[:-1] + 12, ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][
            :len(days) - 1])
        ax.legend(fontsize=8)
    written = [save_figure(fig, out / "curves.png")]
    written.append(_peaks_figure(X, base, tuned, scenarios, threshold, colours, out, plt))
    written.append(_pareto_figure(tuner, out, plt))
    return written


def _pareto_figure(tuner, out, plt) -> Path:
    """How far the tuned model moved from the base model (KL) against the peak it buys.

    The criterion is the log weekly peak, so ``exp(E_q log peak)`` is the tuned model's
    typical (geometric-mean) weekly peak in kW. The exact tilt's importance-sampling
    reference is drawn up to the budget, dashed where it rests on few effective samples
    (ESS <= 100: less reliable).
    """
    from ..plotting import plot_pareto_front

    ref = tuner.reference_curve(np.linspace(0, 2 * tuner.beta_, 60))
    # up to the first beta whose KL passes the budget
    past = np.flatnonzero(ref["kl"] >= tuner.kl_budget)
    keep = slice(0, past[0] + 1 if past.size else None)
    kl, peak, ok = ref["kl"][keep], np.exp(ref["criterion_mean"][keep]), ref["ess"][keep] > 100
    fig, ax = plt.subplots(figsize=(6, 4.2))
    ax.plot(kl[ok], peak[ok], "-", color="C0", label="exact tilt (importance sampling)")
    if not ok.all():
        first = max(int(np.argmin(ok)) - 1, 0)
        ax.plot(kl[first:], peak[first:], "--", color="C0",
                label="exact tilt, few effective samples (less reliable)")
    hist = tuner.history_
    plot_pareto_front([h["kl"] for h in hist], np.exp([h["criterion_mean"] for h in hist]),
                      ax=ax)
    ax.lines[-1].set_label("tuned model (steps of the beta search)")
    ax.axvline(tuner.kl_budget, color="k", ls=":", lw=1,
               label=f"budget -log(rho) = {tuner.kl_budget:.2f} nats")
    ax.set_xlabel("distance from the base model (KL, nats)")
    ax.set_ylabel("typical weekly peak of the tuned model [kW]")
    ax.set_title("weekly peak against departure from the base model", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    return save_figure(fig, out / "pareto.png")


def _peaks_figure(X, base, tuned, scenarios, threshold, colours, out, plt) -> Path:
    """Weekly-peak histograms on an axis bounded by the data and the written scenarios.

    The tilt q (``tuner.sample``) is the scenarios' proposal, not what is written: a tilt
    of the log peak has a heavier tail than the top weeks, and the log-normal noise lets
    a few of its weeks reach hundreds of kW. Its draws beyond the axis are counted in
    the legend, not drawn (they would stretch the axis to them).
    """
    peaks = {"data": X.max(1), "base": base.max(1), "tuned": tuned.max(1),
             "scenarios": scenarios.max(1)}
    xmax = 1.1 * max(peaks["data"].max(), np.quantile(peaks["scenarios"], 0.995))
    bins = np.linspace(0, xmax, 60)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    labels = {"data": "data", "base": "base model p", "scenarios": "scenarios (written)"}
    for name, values in peaks.items():
        beyond = int((values > xmax).sum())
        label = labels.get(name, "tuned q (their proposal, not written)")
        if beyond:
            label += f": {beyond} of {len(values)} > {xmax:.0f} kW (max {values.max():.0f})"
        ax.hist(values, bins=bins, density=True, histtype="step", lw=2,
                color=colours[name], ls=":" if name == "tuned" else "-", label=label)
    ax.axvline(threshold, color="k", ls="--", lw=1, label="threshold")
    ax.axvline(peaks["data"].max(), color=colours["data"], ls=":", lw=1,
               label=f"the data's highest week ({peaks['data'].max():.1f} kW)")
    ax.set_xlim(0, xmax)
    ax.set_xlabel("weekly peak [kW]")
    ax.set_ylabel("density")
    ax.legend(fontsize=7)
    return save_figure(fig, out / "peaks.png")
