"""Figures (matplotlib, the ``plot`` extra): each function draws on an Axes and returns it.

* :func:`plot_pareto_front` -- E_q f vs KL, fitted points and the reference curve;
* :func:`plot_path` -- the front of a fitted :class:`~sktilt.BoltzmannPath`, with its
  reference curve and beta labels;
* :func:`plot_curves` -- base vs tuned curves: mean ± std bands and a few samples
  (BTGM Fig. 2);
* :func:`plot_image_grid` -- one row of images per beta (BTGM Fig. 5);
* :func:`plot_criteria_histograms` -- gradient-norm histograms of candidate criteria
  (BTGM Fig. 1);
* :func:`plot_avo_trajectory`, :func:`plot_avo_fit` -- AVO proposal trajectory and
  observed vs fitted data; :func:`plot_parameters` -- a corner plot of parameters drawn
  from a fitted proposal, with optional truth and reference (MLE) lines.
"""

from __future__ import annotations

__all__ = [
    "plot_avo_fit",
    "plot_avo_trajectory",
    "plot_criteria_histograms",
    "plot_curves",
    "plot_image_grid",
    "plot_parameters",
    "plot_pareto_front",
    "plot_path",
]

import numpy as np


def _plt():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "sktilt.plotting needs matplotlib: pip install 'sktilt[plot]'."
        ) from exc
    return plt


def _axes(ax):
    return _plt().subplots()[1] if ax is None else ax


def plot_pareto_front(kl, criterion_mean, *, reference=None, labels=None, ax=None):
    """Pareto front ``E_q f`` vs ``KL(q || p)``.

    Parameters
    ----------
    kl, criterion_mean : array-like
        Fitted points (e.g. ``mean_test_kl`` and ``mean_test_criterion_mean`` of a grid
        search with :data:`sktilt.metrics.PARETO_SCORING`, or a tuner's ``history_``).
    reference : dict or None
        Output of :meth:`~sktilt.BoltzmannTuner.reference_curve`, drawn as a line.
    labels : list of str or None
        Point annotations (e.g. the budgets).
    """
    ax = _axes(ax)
    if reference is not None:
        ok = reference["ess"] > 100
        ax.plot(reference["kl"][ok], reference["criterion_mean"][ok], "-", color="C0",
                label="reference (importance sampling)")
    ax.plot(kl, criterion_mean, "o", color="C3", label="fitted flow")
    for i, text in enumerate(labels or []):
        ax.annotate(text, (kl[i], criterion_mean[i]), textcoords="offset points",
                    xytext=(4, 4), fontsize=8)
    ax.set_xlabel("KL(q || p) [nats]")
    ax.set_ylabel("E_q f")
    ax.legend(loc="lower right")
    return ax


def plot_path(path, *, budgets=None, ax=None):
    """The Pareto front of a fitted :class:`~sktilt.BoltzmannPath`, with its reference.

    Parameters
    ----------
    path : BoltzmannPath
        Fitted.
    budgets : sequence of float or None
        KL budgets to mark as vertical lines (e.g. ``path.max_kl_budget``).
    """
    ax = _axes(ax)
    p = path.path_
    ok = p["reference_ess"] > 100
    ax.plot(p["reference_kl"][ok], p["reference_criterion_mean"][ok], "-", color="C0",
            label="reference (importance sampling)")
    ax.errorbar(p["kl"], p["criterion_mean"], xerr=2 * p["kl_se"],
                yerr=2 * p["criterion_mean_se"], fmt="o-", color="C3", ms=3,
                label="fitted path")
    for i in range(0, len(p["beta"]), max(1, len(p["beta"]) // 4)):
        ax.annotate(f"β={p['beta'][i]:.2g}", (p["kl"][i], p["criterion_mean"][i]),
                    textcoords="offset points", xytext=(4, -10), fontsize=8)
    for b in budgets or []:
        ax.axvline(b, color="0.5", ls="--", lw=1)
    ax.set_xlabel("KL(q || p) [nats]")
    ax.set_ylabel("E_q f")
    ax.legend(loc="lower right")
    return ax


def plot_curves(base_curves, tuned_curves, *, n_examples=5, x=None, xlabel="hour of week",
                ylabel="load [kW]", labels=("base p", "tuned q"), ax=None):
    """Base vs tuned curves: median and 10-90 % bands plus ``n_examples`` samples each.

    Quantile bands stay within the curves' range (a mean ± std band of skewed,
    non-negative loads dips below 0 kW).
    """
    ax = _axes(ax)
    base_curves, tuned_curves = np.asarray(base_curves), np.asarray(tuned_curves)
    x = np.arange(base_curves.shape[1]) if x is None else x
    for curves, color, name in ((base_curves, "C0", labels[0]), (tuned_curves, "C3", labels[1])):
        low, median, high = np.quantile(curves, [0.1, 0.5, 0.9], axis=0)
        ax.fill_between(x, low, high, color=color, alpha=0.2)
        ax.plot(x, median, color=color, lw=2, label=f"{name}: median, 10-90 %")
        for curve in curves[:n_examples]:
            ax.plot(x, curve, color=color, lw=0.6, alpha=0.6)
    if base_curves.shape[1] == 168:
        ax.set_xticks(np.arange(0, 169, 24))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(loc="upper left")
    return ax


def plot_image_grid(images_per_row, *, row_labels=None, image_shape=(8, 8), fig=None,
                    title=None):
    """One row of images per entry of ``images_per_row``, e.g. one per beta (BTGM Fig. 5).

    Parameters
    ----------
    images_per_row : list of array-like
        Each entry holds the images of one row, flattened or not.
    row_labels : list of str or None, default=None
        Written left of each row.
    image_shape : tuple of int, default=(8, 8)
        Shape each image is reshaped to.
    fig : matplotlib Figure or None, default=None
        Figure to draw on; a new one by default.
    title : str or None, default=None
        Written above the grid.

    Returns
    -------
    fig : matplotlib Figure
    """
    plt = _plt()
    rows = [np.asarray(r).reshape(len(r), *image_shape) for r in images_per_row]
    n_cols = max(len(r) for r in rows)
    width = max((len(t) for t in row_labels or []), default=0) * 0.07  # the labels' room
    fig = fig or plt.figure(figsize=(n_cols * 0.8 + width,
                                     len(rows) * 0.8 + 0.3 + 0.4 * (title is not None)))
    axes = fig.subplots(len(rows), n_cols, squeeze=False)
    for i, row in enumerate(rows):
        for j in range(n_cols):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j < len(row):
                ax.imshow(row[j], cmap="gray_r")
            if j == 0 and row_labels is not None:
                ax.set_ylabel(row_labels[i], rotation=0, ha="right", va="center", fontsize=8)
    if title is not None:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_criteria_histograms(assessment, *, bins=50, clip_quantile=0.99, ax=None):
    """Histograms of the normalised gradient norms of each criterion, as BTGM Fig. 1.

    Parameters
    ----------
    assessment : CriteriaAssessment
        Output of :func:`sktilt.assessment.assess_criteria`; criteria that are not
        differentiable are left out.
    bins : int, default=50
    clip_quantile : float, default=0.99
        Norms above this quantile (the largest over the criteria) are clipped into the
        last bin.
    ax : matplotlib Axes or None, default=None

    Returns
    -------
    ax : matplotlib Axes
    """
    ax = _axes(ax)
    norms = {k: v for k, v in assessment.gradient_norms.items() if v is not None}
    hi = max(np.quantile(v, clip_quantile) for v in norms.values())
    for name, v in norms.items():
        mark = " (recommended)" if name == assessment.recommended else ""
        ax.hist(np.clip(v, 0, hi), bins=bins, range=(0, hi), alpha=0.5, density=True,
                label=f"{name}{mark}")
    ax.set_xlabel(f"|grad f| of the normalised criterion (clipped at q{clip_quantile:.2f})")
    ax.set_ylabel("density")
    ax.legend()
    return ax


def plot_avo_trajectory(history, *, names=None, truth=None, transform=None, ax=None):
    """Point estimate ``theta`` across AVO iterations, one line per parameter.

    Parameters
    ----------
    history : list of dict
        A fitted :class:`~sktilt.AVOSimulatorFitter`'s ``history_`` (its ``"theta"``).
    names : list of str or None
    truth : array-like or None
        Drawn as dashed lines.
    transform : callable or None
        Applied to each theta (array of shape (n_params,)) before plotting, e.g. to
        show a derived quantity such as Weinberg's ``c(E, G_f)``.
    """
    ax = _axes(ax)
    theta = np.array([h["theta"] for h in history], dtype=float)
    if transform is not None:
        theta = np.array([np.atleast_1d(transform(t)) for t in theta], dtype=float)
    theta = theta.reshape(len(theta), -1)
    for k in range(theta.shape[1]):
        ax.plot(theta[:, k], color=f"C{k}", label=names[k] if names else f"theta[{k}]")
        if truth is not None:
            ax.axhline(np.atleast_1d(truth)[k], color=f"C{k}", ls="--", lw=1)
    ax.set_xlabel("iteration")
    ax.set_ylabel("proposal point estimate")
    ax.legend()
    return ax


def plot_avo_fit(X_obs, X_fit, *, feature=0, bins=40, ax=None):
    """Histogram of one feature: observed vs simulated from the fitted proposal."""
    ax = _axes(ax)
    a, b = np.asarray(X_obs)[:, feature], np.asarray(X_fit)[:, feature]
    lo, hi = min(a.min(), b.min()), max(a.max(), b.max())
    ax.hist(a, bins=bins, range=(lo, hi), density=True, alpha=0.5, label="observed")
    ax.hist(b, bins=bins, range=(lo, hi), density=True, histtype="step", lw=2,
            label="fitted model")
    ax.set_xlabel(f"x[{feature}]")
    ax.set_ylabel("density")
    ax.legend()
    return ax


def plot_parameters(samples, *, names=None, truth=None, reference=None, bins=40, fig=None):
    """Corner (pair) plot of parameter draws, e.g. ``fitter.sample_parameters(5000)``.

    Histograms on the diagonal, scatter plots below it; ``truth`` is drawn as dashed
    lines, ``reference`` (e.g. the MLE) as dotted ones.

    Parameters
    ----------
    samples : array-like of shape (n, k)
    names : list of str or None
    truth, reference : array-like of shape (k,) or None
    bins : int, default=40
    fig : matplotlib Figure or None

    Returns
    -------
    axes : ndarray of shape (k, k) of Axes (empty above the diagonal)
    """
    plt = _plt()
    samples = np.asarray(samples, dtype=float)
    samples = samples.reshape(len(samples), -1)
    k = samples.shape[1]
    names = names or [f"theta[{j}]" for j in range(k)]
    fig = plt.figure(figsize=(2.2 * k + 1, 2.2 * k + 1)) if fig is None else fig
    axes = np.array(fig.subplots(k, k, squeeze=False))
    lines = [(v, ls) for v, ls in ((truth, "--"), (reference, ":")) if v is not None]
    for i in range(k):
        for j in range(k):
            ax = axes[i, j]
            if j > i:
                ax.set_axis_off()
                continue
            if i == j:
                ax.hist(samples[:, j], bins=bins, density=True, color="C0", alpha=0.7)
            else:
                ax.scatter(samples[:, j], samples[:, i], s=2, alpha=0.3, color="C0")
            for values, ls in lines:
                values = np.atleast_1d(values)
                ax.axvline(values[j], color="k", ls=ls, lw=1)
                if i != j:
                    ax.axhline(values[i], color="k", ls=ls, lw=1)
            if i == k - 1:
                ax.set_xlabel(names[j])
            if j == 0 and i > 0:
                ax.set_ylabel(names[i])
    return axes
