"""Rare-event estimation with a tuned model as importance-sampling proposal.

With ``x_i ~ q`` and log-weights ``log w_i = log p(x_i) - log q(x_i)``:

* ``P_p(f > t) = E_q[w 1{f > t}]`` (unbiased), standard error from the sample
  variance;
* sampling-importance-resampling (SIR) draws approximately from ``p(. | f > t)`` by
  resampling the candidates above ``t`` in proportion to ``w``.

A tuned ``q_beta`` with ``KL = -log rho`` puts roughly its whole mass where ``p`` has
its top-``rho`` tail, which is close to the zero-variance proposal ``p(. | f > t)``
when ``P(f > t) ≈ rho``.
"""

from __future__ import annotations

__all__ = ["TailEstimate", "crude_tail_probability", "importance_tail_probability",
           "sir_indices", "sir_tail_sample"]

import math
from dataclasses import dataclass

import numpy as np

from .._utils import warn_at_caller
from ._reference import pareto_k


@dataclass(frozen=True)
class TailEstimate:
    """``P_p(f > t)`` with its standard error and diagnostics.

    Unpacks as ``probability, std_error = estimate``.

    Attributes
    ----------
    probability : float
        The importance-sampling estimate of ``P_p(f > t)``.
    std_error : float
        Its standard error.
    n_samples : int
        Samples of the proposal used.
    n_hits : int
        How many of them exceeded the threshold.
    ess : float
        Effective sample size of the hits' weights, ``(sum w)^2 / sum w^2``.
    pareto_k : float
        Pareto ``k`` of the hits' weights (as in ``diagnostics_``): ``>= 0.7`` means
        the standard error is not reliable.
    reference_probability, reference_std_error : float
        The crude Monte-Carlo estimate from the tuner's reference base samples and its
        standard error (``nan`` when not available): an independent check.
    """

    probability: float
    std_error: float
    n_samples: int
    n_hits: int
    ess: float
    pareto_k: float = math.nan
    reference_probability: float = math.nan
    reference_std_error: float = math.nan

    @property
    def reference_z(self) -> float:
        """``(probability - reference_probability) / combined standard error``."""
        se = math.hypot(self.std_error, self.reference_std_error)
        return (self.probability - self.reference_probability) / se if se > 0 else math.nan

    @property
    def relative_error(self) -> float:
        """``std_error / probability`` (``inf`` when the estimate is 0)."""
        return self.std_error / self.probability if self.probability > 0 else math.inf

    def __iter__(self):  # ``p, se = tuner.tail_probability(t)``
        return iter((self.probability, self.std_error))


def importance_tail_probability(f_values, log_weights, threshold) -> TailEstimate:
    """Importance-sampling estimate of ``P_p(f > threshold)`` from samples of ``q``.

    Parameters
    ----------
    f_values : array-like of shape (n,)
        The criterion at samples ``x_i ~ q``.
    log_weights : array-like of shape (n,)
        ``log p(x_i) - log q(x_i)``.
    threshold : float

    Returns
    -------
    estimate : TailEstimate
        ``mean_i w_i 1{f_i > threshold}``, unbiased, with its standard error.
    """
    f = np.asarray(f_values, dtype=np.float64).ravel()
    log_w = np.asarray(log_weights, dtype=np.float64).ravel()
    hit = f > threshold
    terms = np.where(hit, np.exp(np.where(hit, log_w, 0.0)), 0.0)
    n = f.size
    prob = float(terms.mean())
    se = float(terms.std(ddof=1) / math.sqrt(n)) if n > 1 else math.inf
    w_hit = terms[hit]
    ess = float(w_hit.sum() ** 2 / (w_hit @ w_hit)) if w_hit.size else 0.0
    return TailEstimate(prob, se, n, int(hit.sum()), ess, pareto_k(log_w[hit]))


def crude_tail_probability(f_values, threshold) -> tuple[float, float]:
    """Crude Monte-Carlo ``P(f > threshold)`` from samples of ``p``, with its standard error.

    With no hit the standard error is that of one hit (the estimate's resolution).
    """
    f = np.asarray(f_values, dtype=np.float64).ravel()
    hits = int((f > threshold).sum())
    p = hits / f.size
    return p, math.sqrt(max(hits, 1)) / f.size


def sir_indices(log_weights, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Indices resampled with replacement in proportion to ``exp(log_weights)``.

    Parameters
    ----------
    log_weights : array-like of shape (n,)
        Unnormalised log-weights.
    n_samples : int
        Number of indices to draw.
    rng : numpy.random.Generator

    Returns
    -------
    indices : ndarray of shape (n_samples,)
    """
    log_w = np.asarray(log_weights, dtype=np.float64)
    w = np.exp(log_w - log_w.max())
    return rng.choice(log_w.size, size=n_samples, replace=True, p=w / w.sum())


def sir_tail_sample(x, f_values, log_weights, threshold: float, n_samples: int,
                    rng: np.random.Generator, *, n_candidates: int | None = None
                    ) -> np.ndarray:
    """Resample the candidates ``x`` with ``f > threshold`` in proportion to ``w``.

    Raises ``ValueError`` when no candidate exceeds the threshold and warns when the
    effective number of candidates above it is below ``n_samples``. ``n_candidates`` is
    how many were drawn in all (``len(f_values)`` by default), for the messages.

    Returns
    -------
    X : ndarray of shape (n_samples, ...)
    """
    f_values = np.asarray(f_values)
    n_candidates = f_values.size if n_candidates is None else n_candidates
    hit = f_values > threshold
    if not hit.any():
        raise ValueError(
            f"no candidate of the tuned model exceeded threshold={threshold!r} among "
            f"{n_candidates}; lower the threshold, raise oversample, or tune with a "
            "larger kl_budget."
        )
    w = np.exp(np.asarray(log_weights, np.float64)[hit])
    ess = float(w.sum() ** 2 / (w @ w))
    if ess < n_samples:
        warn_at_caller(
            f"sample_tail: only {ess:.0f} effective candidates above the threshold among "
            f"{n_candidates} for {n_samples} samples: the resample repeats them. Raise "
            "oversample, or tune with a kl_budget nearer -log P(f > threshold).",
            RuntimeWarning,
        )
    idx = sir_indices(np.asarray(log_weights)[hit], n_samples, rng)
    return x[hit][idx]
