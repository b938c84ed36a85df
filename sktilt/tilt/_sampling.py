"""Draws of the base ``p`` and of a tuned flow ``q``, their statistics, and the flow's start.

Everything here runs without gradients and uses torch's global RNG: call it under
:func:`sktilt._random.torch_seeded`. Draws are made in chunks
(:func:`sktilt._utils.draw_in_chunks`), so memory stays bounded whatever ``n`` is.
"""

from __future__ import annotations

__all__ = [
    "FlowStatistics",
    "draw_base",
    "draw_defensive",
    "draw_flow",
    "init_mixture",
    "tilted_samples",
]

import math
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.cluster import KMeans

from .._utils import draw_in_chunks, to_numpy
from ._bases import Base
from ._criteria import evaluate_criterion
from ._flows import TiltFlow

# Rows per chunk: base draws are cheap; flow draws hold the flow's activations.
_BASE_CHUNK = 65536
_FLOW_CHUNK = 8192


def draw_base(base: Base, criterion, n: int, device) -> tuple[np.ndarray, np.ndarray]:
    """``n`` base samples (flow space) and ``f`` at them, as float64 numpy arrays.

    The criterion is checked (shape, finiteness) on every chunk: these are the samples
    of ``p`` it must be finite on.
    """
    def draw(m):
        z = base.sample(m, device=device)
        x = base.to_instance(z)
        bad = ~torch.isfinite(x.reshape(m, -1)).all(1) if x.is_floating_point() else None
        if bad is not None and bad.any():
            raise ValueError(
                f"base_sampler's decoder returned non-finite values (NaN or inf) for "
                f"{int(bad.sum())} of {m} latent samples of the base model, e.g. at z="
                f"{[round(float(v), 3) for v in z[bad][0]]}: the base model itself is broken "
                "there (not the criterion); fix or clamp the decoder.")
        f = evaluate_criterion(criterion, x, check=True)
        return to_numpy(z, np.float64), to_numpy(f, np.float64)

    with torch.no_grad():
        return draw_in_chunks(n, _BASE_CHUNK, draw)


def draw_flow(flow: TiltFlow, base: Base, criterion, n: int, *, keep_x: bool = False):
    """``n`` draws of ``q``: ``log q/p`` (flow space), ``f``, and ``x`` if ``keep_x``.

    ``flow`` is anything with ``draw(n)`` and ``log_prob(z)``: a :class:`TiltFlow`, or a
    conditional one at a fixed context (:class:`~sktilt.tilt._path.ConditionedFlow`).

    Returns
    -------
    log_ratio, f : ndarray of shape (n,)
    x : ndarray of shape (n, ...) or None
    """
    def draw(m):
        z = flow.draw(m)
        x = base.to_instance(z)
        f = evaluate_criterion(criterion, x)
        return (to_numpy(flow.log_prob(z) - base.log_prob(z), np.float64),
                to_numpy(f, np.float64), to_numpy(x) if keep_x else None)

    with torch.no_grad():
        return draw_in_chunks(n, _FLOW_CHUNK, draw)


def draw_defensive(flow: TiltFlow, start: TiltFlow, fractions, base: Base, criterion,
                   n: int, *, keep_x: bool = False):
    """``n`` draws of the defensive mixture ``r``: ``log p/r``, ``f`` and ``x`` if asked.

    ``r = a q + b q0 + c p`` with ``(a, b, c) = fractions``: ``q`` is ``flow`` (the tuned
    flow), ``q0`` is ``start`` (its start, fitted to the weighted base samples, which
    covers every mode they contain) and ``p`` the base itself (Hesterberg's defensive
    component). A stratified draw, ``round(a n)`` samples from ``q`` and so on, weighted
    by ``p / r`` with ``r`` the mixture at the realised fractions (the balance heuristic of
    multiple importance sampling): unbiased for any fractions. With ``c > 0`` the weights
    are bounded by ``1 / c``, so a region both flows miss costs variance -- honestly
    reported by the sample variance -- instead of bias and an over-confident standard
    error.
    """
    counts = [int(round(frac * n)) for frac in fractions]
    counts[0] = n - sum(counts[1:])
    log_fractions = [math.log(c / n) if c > 0 else -math.inf for c in counts]
    densities = (flow.log_prob, start.log_prob, base.log_prob)
    samplers = (flow.draw, start.draw, lambda m: base.sample(m, device=_device(flow)))

    def draw_from(sampler):
        def draw(m):
            z = sampler(m)
            log_r = torch.logsumexp(torch.stack([
                lf + density(z) for lf, density in zip(log_fractions, densities)
                if math.isfinite(lf)]), dim=0)
            x = base.to_instance(z)
            f = evaluate_criterion(criterion, x)
            return (to_numpy(base.log_prob(z) - log_r, np.float64), to_numpy(f, np.float64),
                    to_numpy(x) if keep_x else None)
        return draw

    with torch.no_grad():
        parts = [draw_in_chunks(m, _FLOW_CHUNK, draw_from(sampler))
                 for sampler, m in zip(samplers, counts) if m > 0]
    return tuple(None if parts[0][i] is None else np.concatenate([p[i] for p in parts])
                 for i in range(3))


def _device(module: torch.nn.Module) -> torch.device:
    return next(module.parameters()).device


@dataclass(frozen=True)
class FlowStatistics:
    """Monte-Carlo ``KL(q || p)`` and moments of ``f`` under a fitted flow ``q``.

    Attributes
    ----------
    beta : float
    kl, kl_se : float
        ``E_q log(q / p)`` and its standard error.
    criterion_mean, criterion_mean_se : float
        ``E_q f`` and its standard error.
    criterion_var, criterion_third : float
        Variance and third central moment of ``f`` under ``q`` (the beta search's
        derivatives, BTGM Eq. 5-6).
    """

    beta: float
    kl: float
    kl_se: float
    criterion_mean: float
    criterion_mean_se: float
    criterion_var: float
    criterion_third: float

    @classmethod
    def from_draws(cls, log_ratio: np.ndarray, f: np.ndarray, beta: float) -> FlowStatistics:
        """Statistics of ``n`` draws: ``log q/p`` and ``f``, both of shape (n,)."""
        n = log_ratio.size
        centred = f - f.mean()
        return cls(float(beta), float(log_ratio.mean()),
                   float(log_ratio.std(ddof=1) / math.sqrt(n)), float(f.mean()),
                   float(f.std(ddof=1) / math.sqrt(n)), float(centred.var()),
                   float((centred**3).mean()))


def _tilt_weights(f: np.ndarray, beta: float) -> np.ndarray:
    a = beta * np.asarray(f, dtype=np.float64)
    w = np.exp(a - a.max())
    return w / w.sum()


def tilted_samples(eps: np.ndarray, f: np.ndarray, beta: float, device):
    """Base samples and their self-normalised weights ``∝ exp(beta f)``, as tensors.

    An importance sample of ``q_beta``. Fitting the flow to it by maximum likelihood
    (forward KL, mode-covering) before the reverse-KL steps (mode-seeking) keeps every
    mode of a multi-modal ``q_beta`` that the samples see, instead of the one nearest
    the initialisation.

    Returns
    -------
    samples : float32 tensor of shape (n, d)
    probs : float64 tensor of shape (n,)
    """
    return (torch.as_tensor(eps, dtype=torch.float32, device=device),
            torch.as_tensor(_tilt_weights(f, beta), dtype=torch.float64, device=device))


# Points the mixture start is clustered on, per component, and their jitter in units of
# the base samples' spread: resampled points repeat, and repeats alone would give
# components of zero variance.
_POINTS_PER_COMPONENT = 64
_JITTER = 0.1


def init_mixture(flow: TiltFlow, eps: np.ndarray, f: np.ndarray, beta: float,
                 rng: np.random.Generator) -> None:
    """Start the flow's mixture on the importance-weighted base samples at ``beta``.

    Resamples the base samples ``eps`` in proportion to ``exp(beta f)`` (an approximate
    sample of ``q_beta``), jitters them, and clusters them (k-means) into the mixture's
    components, each starting at its cluster's weight, mean and standard deviation (or
    covariance, for a full-covariance mixture): every mode the samples see starts with a
    component of its own.
    """
    k = flow.components
    n_points = _POINTS_PER_COMPONENT * k
    idx = rng.choice(len(f), size=n_points, p=_tilt_weights(f, beta))
    x = eps[idx] + _JITTER * eps.std(0) * rng.standard_normal((n_points, eps.shape[1]))
    kmeans = KMeans(k, n_init=1, random_state=int(rng.integers(2**31)))
    labels = kmeans.fit_predict(x)
    if flow.full_covariance:
        _init_full(flow, kmeans, eps, _tilt_weights(f, beta))
        return
    counts = np.bincount(labels, minlength=k).astype(float)
    means = np.stack([x[labels == j].mean(0) for j in range(k)])
    stds = np.stack([x[labels == j].std(0) for j in range(k)])
    flow.init_mixture_(counts / counts.sum(), means, np.maximum(stds, _JITTER * eps.std(0)))


def _init_full(flow: TiltFlow, kmeans: KMeans, eps: np.ndarray, w: np.ndarray) -> None:
    # Full covariances from the weighted samples themselves, not the jittered resample:
    # the jitter (0.1 of the base's spread in every direction) is far wider than the thin
    # directions of a correlated base (std 0.006 on standardised diabetes). Each
    # cluster's weighted covariance is shrunk toward the pooled one by d + 2
    # pseudo-samples, so that a cluster of a few effective samples is not singular.
    keep = w > 1e-12 * w.max()
    x, w = eps[keep], w[keep] / w[keep].sum()
    d, k = x.shape[1], flow.components
    labels = kmeans.predict(x)
    pooled = _weighted_cov(x, w) + 1e-6 * np.diag(eps.var(0))
    weights, means, covs = np.zeros(k), np.zeros((k, d)), np.zeros((k, d, d))
    for j in range(k):
        wj = w[labels == j]
        if wj.sum() <= 0:  # an empty cluster: a pooled component of negligible weight
            weights[j], means[j], covs[j] = 1e-6, kmeans.cluster_centers_[j], pooled
            continue
        ess = wj.sum() ** 2 / (wj**2).sum()
        weights[j] = wj.sum()
        means[j] = wj @ x[labels == j] / wj.sum()
        covs[j] = (ess * _weighted_cov(x[labels == j], wj) + (d + 2) * pooled) / (ess + d + 2)
    flow.init_mixture_(weights / weights.sum(), means, covs)


def _weighted_cov(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    w = w / w.sum()
    centred = x - w @ x
    return (centred * w[:, None]).T @ centred
