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
    "moment_match_init",
    "tilted_samples",
]

import math
from dataclasses import dataclass

import numpy as np
import torch

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
        f = evaluate_criterion(criterion, base.to_instance(z), check=True)
        return to_numpy(z, np.float64), to_numpy(f, np.float64)

    with torch.no_grad():
        return draw_in_chunks(n, _BASE_CHUNK, draw)


def draw_flow(flow: TiltFlow, base: Base, criterion, n: int, *, keep_x: bool = False):
    """``n`` draws of ``q``: ``log q/p`` (flow space), ``f``, and ``x`` if ``keep_x``.

    Returns
    -------
    log_ratio, f : ndarray of shape (n,)
    x : ndarray of shape (n, ...) or None
    """
    def draw(m):
        z, log_q = flow().rsample_and_log_prob((m,))
        x = base.to_instance(z)
        f = evaluate_criterion(criterion, x)
        return (to_numpy(log_q - base.log_prob(z), np.float64), to_numpy(f, np.float64),
                to_numpy(x) if keep_x else None)

    with torch.no_grad():
        return draw_in_chunks(n, _FLOW_CHUNK, draw)


def draw_defensive(flow: TiltFlow, start: TiltFlow, alpha: float, base: Base, criterion,
                   n: int, *, keep_x: bool = False):
    """``n`` draws of the mixture ``r = (1 - alpha) q + alpha q0``: ``log p/r``, ``f``, ``x``.

    ``q`` is ``flow`` (the tuned flow) and ``q0`` is ``start`` (its start, fitted to
    the weighted base samples, which covers every mode they contain). A stratified
    draw, ``round(alpha n)`` samples from ``q0`` and the rest from ``q``, weighted by
    ``p / r`` with ``r`` the mixture at the realised fractions (the balance heuristic
    of multiple importance sampling): unbiased for any ``alpha``. The weights stay
    below ``1 / alpha`` times ``p / q0``, so a mode that ``q`` misses no longer gives
    rare, huge weights -- the bias and the over-confident standard error of ``q``
    alone.
    """
    n0 = int(round(alpha * n))
    log_fractions = [math.log(c) if c > 0 else -math.inf for c in (n0 / n, (n - n0) / n)]

    def draw_from(component):
        def draw(m):
            z = component().sample((m,))
            log_r = torch.logaddexp(log_fractions[0] + start().log_prob(z),
                                    log_fractions[1] + flow().log_prob(z))
            x = base.to_instance(z)
            f = evaluate_criterion(criterion, x)
            return (to_numpy(base.log_prob(z) - log_r, np.float64), to_numpy(f, np.float64),
                    to_numpy(x) if keep_x else None)
        return draw

    with torch.no_grad():
        parts = [draw_in_chunks(m, _FLOW_CHUNK, draw_from(component))
                 for component, m in ((start, n0), (flow, n - n0)) if m > 0]
    return tuple(None if parts[0][i] is None else np.concatenate([p[i] for p in parts])
                 for i in range(3))


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


def moment_match_init(flow: TiltFlow, eps: np.ndarray, f: np.ndarray, beta: float,
                      min_ess: float = 50.0) -> None:
    """Start the flow's global affine map at the tilt's importance-weighted moments.

    The flow then only has to learn the shape of ``q_beta``, not to travel to it: a far
    tail is reached in the first steps instead of after ``shift / lr`` steps. Nothing is
    changed when the weights' effective sample size is below ``min_ess``.
    """
    w = _tilt_weights(f, beta)
    if 1.0 / (w @ w) < min_ess:
        return
    mean_p, sd_p = eps.mean(0), eps.std(0) + 1e-12
    mean_q = w @ eps
    sd_q = np.sqrt(w @ (eps - mean_q) ** 2) + 1e-12
    scale = np.clip(sd_q / sd_p, 1e-2, 1e2)
    flow.global_affine().set_(mean_q - scale * mean_p, scale)
