"""``sktilt digits``: conditional generation of digits by tilting a VAE toward a class."""

from __future__ import annotations

__all__ = ["run_digits"]

import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

from .._training import EpochProgress
from ..models import VAE, TorchClassifier, class_log_probability
from ..tilt import BoltzmannTuner
from ._common import cached_fit, save_figure, write_json


def run_digits(*, label=4, budgets=(0.5, 1.0, 2.0, 3.0), out="sktilt-out/digits",
               epochs=150, seed=0, device="cpu", progress=True, log=print) -> dict:
    """Train a VAE and a classifier on sklearn's 8x8 digits, tilt toward ``label``.

    For each KL budget, reports beta, KL and the fraction of generated digits the
    classifier assigns to ``label``; draws an image grid (one row per beta) and the
    Pareto front (E_q log h vs KL).
    """
    t_start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    digits = load_digits()
    X, y = (digits.data / 16.0).astype(np.float32), digits.target
    if label not in set(y.tolist()):
        raise ValueError(f"label must be a digit 0-9, got {label!r}.")
    callbacks = [EpochProgress(epochs, desc="VAE of digits")] if progress else None
    vae = cached_fit(VAE(latent_dim=8, max_iter=epochs, random_state=seed, device=device,
                         callbacks=callbacks), X, out, "vae", log=log)
    clf = TorchClassifier(max_iter=60, random_state=seed, device=device).fit(X, y)
    criterion = class_log_probability(clf, label)

    base_samples = vae.sample(400, random_state=seed)
    rows, labels_, results = [base_samples[:10]], ["base VAE"], []
    base_fraction = float(np.mean(clf.predict(base_samples) == label))
    for budget in budgets:
        tuner = BoltzmannTuner(vae, criterion, kl_budget=float(budget), random_state=seed,
                               device=device, verbose=int(progress)).fit()
        samples = tuner.sample(400, random_state=seed + 1)
        frac = float(np.mean(clf.predict(samples) == label))
        results.append({"kl_budget": float(budget), "beta": tuner.beta_, "kl": tuner.kl_,
                        "criterion_mean": tuner.criterion_mean_, "fraction_label": frac})
        rows.append(samples[:10])
        labels_.append(f"KL {tuner.kl_:.1f} (β={tuner.beta_:.2f})")
        log(f"budget {budget:4.1f}: beta {tuner.beta_:.3f}  KL {tuner.kl_:.3f}  "
            f"fraction classified {label}: {frac:.0%} (base {base_fraction:.0%})")
    summary = {"label": label, "classifier_train_accuracy": float(clf.score(X, y)),
               "base_fraction_label": base_fraction, "budgets": results,
               "seconds": time.perf_counter() - t_start}
    _figures(rows, labels_, results, out, label, base_fraction)
    write_json(out / "summary.json", summary)
    log(f"wrote {out / 'summary.json'}, {out / 'grid.png'}, {out / 'pareto.png'}")
    return summary


def _figures(rows, row_labels, results, out: Path, label, base_fraction) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..plotting import plot_image_grid, plot_pareto_front

    save_figure(plot_image_grid(
        rows, row_labels=row_labels,
        title=f"VAE samples tilted toward the digit {label}, one row per KL budget"),
        out / "grid.png")
    fig, ax = plt.subplots(figsize=(6, 4.2))
    plot_pareto_front([r["kl"] for r in results], [r["criterion_mean"] for r in results],
                      labels=[f"KL budget {r['kl_budget']:g}: {r['fraction_label']:.0%} "
                              f"classified {label}" for r in results], ax=ax)
    ax.lines[0].set_label("tuned VAE, one per KL budget")
    ax.legend(loc="lower right", fontsize=8)
    ax.margins(x=0.1, y=0.15)
    ax.set_xlim(right=ax.get_xlim()[1] * 1.3)  # room for the last point's label
    ax.set_xlabel("distance from the base VAE (KL, nats)")
    ax.set_ylabel(f"mean log-probability of a {label} (classifier)")
    ax.set_title(f"tilting toward the digit {label} (base VAE: {base_fraction:.0%} "
                 f"classified {label})", fontsize=10)
    save_figure(fig, out / "pareto.png")
