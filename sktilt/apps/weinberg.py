"""``sktilt weinberg``: the AVO physics example, fitted with parallel simulations."""

from __future__ import annotations

__all__ = ["run_weinberg"]

import time
from pathlib import Path

import numpy as np

from ..avo import AVOSimulatorFitter, Critic, GaussianProposal
from ..datasets import weinberg_c, weinberg_c_mle, weinberg_simulator
from ._common import save_figure, write_json

TRUTH = (42.0, 0.9)


def _c_of(theta):
    return weinberg_c(theta[0], theta[1])


def run_weinberg(*, n_obs=5000, n_jobs=2, max_iter=None, out="sktilt-out/weinberg", seed=0,
                 device="cpu", progress=True, log=print) -> dict:
    """Simulate observations at the truth, fit (E, G_f) with AVO, compare c with its MLE.

    With one beam energy only ``c(E, G_f)`` is identifiable: the fitted proposal
    concentrates on the ridge ``c(E, G_f) = c*``, so ``c`` is what is judged.
    """
    t_start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    X = np.stack([weinberg_simulator(np.array(TRUTH), rng) for _ in range(n_obs)])
    c_mle, c_se = weinberg_c_mle(X)
    params = {"max_iter": max_iter} if max_iter is not None else {}
    fitter = AVOSimulatorFitter(
        weinberg_simulator, GaussianProposal(loc=[45.0, 1.0], scale=[1.0, 0.1]),
        critic=Critic(device=device), n_jobs=n_jobs, random_state=seed,
        verbose=int(progress), **params)
    fitter.fit(X)
    c_fit = float(_c_of(fitter.theta_))
    summary = {
        "n_obs": n_obs,
        "truth": {"E": TRUTH[0], "G_f": TRUTH[1], "c": float(_c_of(TRUTH))},
        "c_mle": c_mle, "c_mle_se": c_se, "c_fit": c_fit,
        "c_fit_minus_mle_in_se": (c_fit - c_mle) / c_se,
        "theta": fitter.theta_.tolist(),
        "n_simulations": int(fitter.n_simulations_),
        "n_failed_simulations": int(fitter.n_failed_simulations_),
        "n_jobs": n_jobs,
        "converged": bool(fitter.converged_),
        "two_sample_p_value": (None if fitter.two_sample_ is None
                               else fitter.two_sample_.p_value),
        "seconds": None,
    }
    _figures(X, fitter, out, c_mle, seed, c_se)
    summary["seconds"] = time.perf_counter() - t_start
    write_json(out / "summary.json", summary)
    log(f"c(E, G_f): fitted {c_fit:.4f}, MLE {c_mle:.4f} ± {c_se:.4f} "
        f"({summary['c_fit_minus_mle_in_se']:+.2f} SE), truth {summary['truth']['c']:.4f}")
    log(f"theta = (E, G_f) = {np.round(fitter.theta_, 3).tolist()} on the ridge; "
        f"{fitter.n_simulations_} simulations on {n_jobs} workers in "
        f"{summary['seconds']:.1f} s")
    log(f"wrote {out / 'summary.json'}, {out / 'trajectory.png'}, {out / 'fit.png'}")
    return summary


def _figures(X, fitter, out: Path, c_mle: float, seed: int, c_se: float = 0.0) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..plotting import plot_avo_fit, plot_avo_trajectory

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for k, name in enumerate(["E", "G_f"]):  # separate axes: their scales differ 50-fold
        plot_avo_trajectory(fitter.history_, names=[name], truth=[TRUTH[k]],
                            transform=lambda t, k=k: t[k], ax=axes[k])
        axes[k].set_title(f"{name} (dashed: truth; only c is identified)")
    plot_avo_trajectory(fitter.history_, names=["c(E, G_f)"], truth=[c_mle],
                        transform=_c_of, ax=axes[2])
    if c_se > 0:
        axes[2].axhspan(c_mle - c_se, c_mle + c_se, color="k", alpha=0.15,
                        label="MLE ± SE")
        axes[2].legend()
    axes[2].set_title("c on the ridge (dashed: MLE)")
    save_figure(fig, out / "trajectory.png")
    fig, ax = plt.subplots(figsize=(5, 4))
    plot_avo_fit(X, fitter.sample(len(X), random_state=seed + 1), ax=ax)
    ax.set_xlabel("cos A")
    save_figure(fig, out / "fit.png")
