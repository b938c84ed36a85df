"""The importance-sampling reference of the exact tilt, from base samples (BTGM App. C).

With ``f_i = f(x_i)``, ``x_i ~ p``, self-normalised importance weights
``w_i ∝ exp(beta f_i)`` give (Eq. 29-31)

* ``log Z(beta) = log mean_i exp(beta f_i)``,
* ``E_{q_beta} f = sum_i w_i f_i``,
* ``KL(q_beta || p) = beta E_{q_beta} f - log Z(beta)``,

valid while the effective sample size ``ESS = 1 / sum_i w_i^2`` stays large. The gap
between these references and a fitted flow's Monte-Carlo values tells how well the
flow represents ``q_beta`` for the criterion at hand.
"""

from __future__ import annotations

__all__ = [
    "TiltReference",
    "pareto_front",
    "reference_beta",
    "resolvable_beta",
    "tilted_moments",
]

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TiltReference:
    """Importance-sampling reference for ``q_beta`` at one beta.

    Attributes
    ----------
    beta : float
    log_partition : float
        ``log Z(beta) = log E_p exp(beta f)`` (Eq. 29).
    criterion_mean, criterion_var : float
        Mean and variance of ``f`` under ``q_beta`` (Eq. 30).
    kl : float
        ``KL(q_beta || p) = beta E_q f - log Z(beta)`` (Eq. 31).
    ess : float
        Effective sample size ``1 / sum_i w_i^2`` of the normalised weights; the
        reference is reliable only where it is large.
    """

    beta: float
    log_partition: float
    criterion_mean: float
    criterion_var: float
    kl: float
    ess: float


def tilted_moments(f_values: np.ndarray, beta: float,
                   log_ratio: np.ndarray | None = None) -> TiltReference:
    """Reference moments of ``q_beta ∝ p exp(beta f)`` by self-normalised weights.

    Parameters
    ----------
    f_values : array of shape (n,)
        ``f`` at samples of a proposal ``r``.
    beta : float
    log_ratio : array of shape (n,) or None
        ``log p(x) - log r(x)`` at the samples; ``None`` means ``r = p`` (BTGM Eq.
        29-31). A fitted flow ``q_beta0`` as ``r`` resolves far tails that base samples
        cannot reach, for betas near ``beta0``.

    Returns
    -------
    reference : TiltReference
    """
    f = np.asarray(f_values, dtype=np.float64).ravel()
    a = beta * f if log_ratio is None else beta * f + np.asarray(log_ratio, np.float64).ravel()
    amax = a.max()
    w = np.exp(a - amax)
    s = w.sum()
    w /= s
    log_z = amax + math.log(s) - math.log(f.size)
    mean = float(w @ f)
    var = float(w @ (f - mean) ** 2)
    kl = max(beta * mean - log_z, 0.0)
    return TiltReference(float(beta), float(log_z), mean, var, float(kl), float(1.0 / (w @ w)))


def _bisect(increasing, target: float, step: float, tol: float) -> float | None:
    """Root of ``increasing(beta) = target`` on ``beta > 0``; ``None`` past ``1e3 step``."""
    lo, hi = 0.0, step
    while increasing(hi) < target:
        lo, hi = hi, 2 * hi
        if hi > 1e3 * step:
            return None
    while hi - lo > tol * hi:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if increasing(mid) < target else (lo, mid)
    return 0.5 * (lo + hi)


def reference_beta(f_values: np.ndarray, budget: float, *,
                   log_ratio: np.ndarray | None = None, min_ess: float = 100.0,
                   tol: float = 1e-6) -> float | None:
    """Beta at which the reference KL meets ``budget``, by bisection (BTGM Eq. 31).

    ``log_ratio`` is as in :func:`tilted_moments`. Returns ``None`` when the samples
    cannot resolve the budget: the reference KL saturates and becomes unreliable once
    the effective sample size drops below ``min_ess``.
    """
    f = np.asarray(f_values, dtype=np.float64).ravel()
    sd = f.std()
    if not np.isfinite(sd) or sd == 0:
        return None
    beta = _bisect(lambda b: tilted_moments(f, b, log_ratio).kl, budget, 1.0 / sd, tol)
    if beta is None or tilted_moments(f, beta, log_ratio).ess < min_ess:
        return None
    return beta


def resolvable_beta(f_values: np.ndarray, *, min_ess: float = 100.0,
                    tol: float = 1e-3) -> float | None:
    """Largest beta whose reference keeps an effective sample size of ``min_ess``.

    Beyond it the base samples cannot describe ``q_beta``; a search for a budget they
    cannot resolve starts here, below the budget. ``None`` for a constant ``f``.
    """
    f = np.asarray(f_values, dtype=np.float64).ravel()
    sd = f.std()
    if not np.isfinite(sd) or sd == 0 or f.size <= min_ess:
        return None
    # The ESS falls as beta grows: bisect on -ESS, which increases.
    return _bisect(lambda b: -tilted_moments(f, b).ess, -min_ess, 1.0 / sd, tol)


def pareto_front(kl, criterion_mean):
    """Sort points by KL and keep the non-dominated ones (higher E_q f, lower KL).

    Parameters
    ----------
    kl, criterion_mean : array-like of shape (n,)
        ``KL(q || p)`` and ``E_q f`` of each point.

    Returns
    -------
    kl, criterion_mean : ndarray
        The Pareto-optimal points, by increasing KL.
    """
    kl = np.asarray(kl, dtype=float)
    crit = np.asarray(criterion_mean, dtype=float)
    order = np.argsort(kl, kind="stable")
    keep, best = [], -np.inf
    for i in order:
        if crit[i] > best:
            keep.append(i)
            best = crit[i]
    keep = np.asarray(keep, dtype=int)
    return kl[keep], crit[keep]
