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
    "ImportanceDiagnostics",
    "TiltQualityWarning",
    "TiltReference",
    "importance_diagnostics",
    "pareto_front",
    "pareto_k",
    "reference_beta",
    "resolvable_beta",
    "tilted_moments",
]

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import genpareto


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


class TiltQualityWarning(UserWarning):
    """The tuned flow represents the exact tilt ``q_beta`` poorly (see ``diagnostics_``)."""


# Pareto k above this: importance weights too heavy-tailed for reliable estimates
# (Vehtari et al., "Pareto smoothed importance sampling", 2024).
PARETO_K_THRESHOLD = 0.7


def pareto_k(log_weights: np.ndarray) -> float:
    """Shape ``k`` of a generalised Pareto fit to the largest importance weights.

    The diagnostic of Pareto-smoothed importance sampling (Vehtari et al., 2024): the
    ``M = min(n / 5, 3 sqrt(n))`` largest weights, less the next one, are fitted by
    maximum likelihood (:func:`scipy.stats.genpareto.fit`). ``k < 0.5``: estimates from
    these weights are reliable; ``0.5 <= k < 0.7``: usable; ``k >= 0.7``: the variance of
    the weights is too large (infinite for ``k >= 0.5`` in the limit), estimates and their
    standard errors cannot be trusted. ``nan`` for fewer than 20 weights.

    Parameters
    ----------
    log_weights : array-like of shape (n,)
        Log importance weights (any additive constant).

    Returns
    -------
    k : float
    """
    log_w = np.asarray(log_weights, dtype=np.float64).ravel()
    log_w = log_w[np.isfinite(log_w)]
    n = log_w.size
    m = int(min(n / 5, 3 * math.sqrt(n)))
    if m < 20:
        return math.nan
    log_w = np.sort(log_w)[-(m + 1):]
    w = np.exp(log_w - log_w[-1])
    exceedances = w[1:] - w[0]
    if exceedances.max() < 1e-8:
        return -math.inf  # equal weights (up to rounding): no tail at all
    k, _, _ = genpareto.fit(exceedances, floc=0.0)
    return float(k)


@dataclass(frozen=True)
class ImportanceDiagnostics:
    """How far a fitted flow ``q`` is from the exact tilt, and whether that matters.

    Attributes
    ----------
    pareto_k : float
        Pareto ``k`` (PSIS) of the weights ``p exp(beta f) / q`` at draws of ``q``. ``>= 0.7``:
        ``q`` is lighter-tailed than ``q_beta`` or misses part of it, so expectations under
        ``q_beta`` cannot be estimated by reweighting ``q`` (usual for mode-seeking fits;
        the rare-event methods use a defensive mixture instead).
    ess_fraction : float
        Effective sample size of those weights over the number of draws.
    criterion_mean : float
        ``E_{q_beta} f`` by self-normalised importance weights from ``q``.
    tail_mean, tail_mean_se : float
        Mean of ``f`` over the top ``exp(-KL)`` fraction of the reference base samples
        (``nan`` when fewer than 10 samples are in it), and its standard error. ``q_beta``
        maximises ``E f`` among distributions within ``KL`` of ``p``, so a good fit has
        ``E_q f >= tail_mean``.
    optimality_margin : float
        ``E_q f - tail_mean``: negative beyond noise means the flow under-fits the tilt.
    """

    pareto_k: float
    ess_fraction: float
    criterion_mean: float
    tail_mean: float = math.nan
    tail_mean_se: float = math.nan
    optimality_margin: float = math.nan

    def under_fits(self, criterion_mean_se: float) -> bool:
        """Whether ``E_q f`` falls short of ``tail_mean`` by more than 2 standard errors."""
        se = math.hypot(criterion_mean_se, self.tail_mean_se)
        return bool(self.optimality_margin < -2 * se)


def importance_diagnostics(log_ratio: np.ndarray, f: np.ndarray, beta: float,
                           f_ref: np.ndarray | None = None) -> ImportanceDiagnostics:
    """Diagnostics of ``q`` against the exact tilt from draws of ``q``.

    Parameters
    ----------
    log_ratio : array of shape (n,)
        ``log q(x) - log p(x)`` at draws ``x ~ q``.
    f : array of shape (n,)
        The criterion at the same draws.
    beta : float
    f_ref : array of shape (m,) or None
        The criterion at base samples: gives the top-``exp(-KL)`` tail mean.

    Returns
    -------
    ImportanceDiagnostics
    """
    f = np.asarray(f, np.float64)
    log_ratio = np.asarray(log_ratio, np.float64)
    log_w = beta * f - log_ratio
    w = np.exp(log_w - log_w.max())
    w /= w.sum()
    tail = (math.nan, math.nan)
    if f_ref is not None:
        n_top = int(np.exp(-max(log_ratio.mean(), 0.0)) * len(f_ref))
        if n_top >= 10:
            top = np.partition(f_ref, len(f_ref) - n_top)[-n_top:]
            tail = (float(top.mean()), float(top.std(ddof=1) / math.sqrt(n_top)))
    return ImportanceDiagnostics(pareto_k(log_w), float(1.0 / (w @ w) / w.size),
                                 float(w @ f), tail[0], tail[1], float(f.mean() - tail[0]))
