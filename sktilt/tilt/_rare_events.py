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

__all__ = ["TailEstimate", "importance_tail_probability", "sir_indices", "sir_tail_sample"]

import math
import warnings
from dataclasses import dataclass

import numpy as np


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
    """

    probability: float
    std_error: float
    n_samples: int
    n_hits: int
    ess: float

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
    return TailEstimate(prob, se, n, int(hit.sum()), ess)


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
                    rng: np.random.Generator) -> np.ndarray:
    """Resample the candidates ``x`` with ``f > threshold`` in proportion to ``w``.

    Raises ``ValueError`` when no candidate exceeds the threshold and warns when the
    effective number of candidates above it is below ``n_samples``.

    Returns
    -------
    X : ndarray of shape (n_samples, ...)
    """
    f_values = np.asarray(f_values)
    hit = f_values > threshold
    if not hit.any():
        raise ValueError(
            f"no candidate of the tuned model exceeded threshold={threshold!r} among "
            f"{f_values.size}; lower the threshold, raise oversample, or tune with a "
            "larger kl_budget."
        )
    estimate = importance_tail_probability(f_values, log_weights, threshold)
    if estimate.ess < n_samples:
        warnings.warn(
            f"sample_tail: only {estimate.ess:.0f} effective candidates above the "
            f"threshold for {n_samples} samples; raise oversample.", RuntimeWarning,
            stacklevel=3,
        )
    idx = sir_indices(np.asarray(log_weights)[hit], n_samples, rng)
    return x[hit][idx]
