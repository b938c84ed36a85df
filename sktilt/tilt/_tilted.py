"""The surface of a fitted tilted model ``q_beta``: sampling, scoring and rare events.

:class:`TiltedModelMixin` holds what a fitted :class:`~sktilt.BoltzmannTuner` offers once
its flow is trained, written against three attributes: ``base_`` (the base ``p``),
``flow_`` (the tuned model, with ``draw(n)`` and ``log_prob(z)``) and ``start_flow_``
(the defensive component of the rare-event estimators), plus ``beta_``,
``log_partition_``, ``_reference_f`` (the criterion at the fit's reference base
samples), ``criterion``, ``random_state`` and ``device``. Any object carrying those (a
tuner, a point of a fitted path) gets the same methods.
"""

from __future__ import annotations

__all__ = ["TiltedModelMixin"]

import math
from dataclasses import replace
from numbers import Real

import numpy as np
import torch
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from .._config import torch_threads
from .._random import resolve_seed, torch_seeded
from .._utils import check_n_samples, draw_in_chunks, to_numpy, warn_at_caller
from ._criteria import evaluate_criterion
from ._rare_events import (
    TailEstimate,
    crude_tail_probability,
    importance_tail_probability,
    sir_tail_sample,
)
from ._reference import TiltQualityWarning
from ._reference import tilted_moments
from ._sampling import draw_base, draw_defensive, draw_flow

# Rows per chunk of sample(): bounds memory beyond the output.
_SAMPLE_CHUNK = 65536
# A tail probability further than this many standard errors from the reference's crude
# estimate is reported and its error bar widened (a 5 % false-alarm rate, at the cost
# of a widening by at most about this many standard errors).
_CONSISTENCY_Z = 2.0
# sample_tail(oversample="auto"): candidates per returned sample in each round, and at most.
_AUTO_ROUND, _AUTO_MAX = 4, 1000


def _check_threshold(threshold) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, Real) or not math.isfinite(
            threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}.")
    return float(threshold)


def _restricted(f: np.ndarray, x: np.ndarray | None, where) -> np.ndarray:
    """``f``, with ``-inf`` where ``where(x)`` is false (out of the event at any threshold)."""
    if where is None:
        return f
    if not callable(where):
        raise TypeError(f"where must be a callable mapping samples (n, ...) to a boolean "
                        f"mask (n,), got {type(where).__name__}.")
    mask = np.asarray(where(x))
    if mask.shape != (len(f),) or mask.dtype != bool:
        raise ValueError(f"where must return a boolean mask of shape ({len(f)},) for "
                         f"{len(f)} samples; got dtype {mask.dtype}, shape {mask.shape}.")
    return np.where(mask, f, -np.inf)


def _latent_or_unfitted(model) -> bool:
    # sample_latent exists unless the fitted base turned out to be in instance space.
    base = getattr(model, "base_", None)
    return base is None or base.latent


class TiltedModelMixin:
    """Sampling, scoring and rare-event methods of a fitted tilted model."""

    # ------------------------------------------------------------ diagnostics
    def reference_curve(self, betas, *, n_samples=None, random_state=None) -> dict:
        """Closed-form reference of ``E_{q_beta} f`` and ``KL(q_beta || p)`` vs beta.

        Self-normalised importance weights on fresh base samples (BTGM App. C, Eq.
        29-31): compare with the fitted ``(beta_, criterion_mean_, kl_)`` and
        ``history_`` to see how well the flow represents the tilt (a large gap means a
        hard criterion or too small a flow).

        Parameters
        ----------
        betas : array-like of float
            Inverse temperatures at which to evaluate the reference.
        n_samples : int, default=None
            Base samples to draw; ``None`` means as many as the fit used. More samples
            extend the range of betas where the reference is reliable.
        random_state : int, RandomState instance or None, default=None
            Seed of the base samples; ``None`` means the estimator's ``random_state``.

        Returns
        -------
        curve : dict of ndarray
            ``beta``, ``criterion_mean``, ``kl``, ``ess`` (effective sample size: the
            reference is trustworthy where it is large, say > 100).
        """
        check_is_fitted(self)
        try:
            betas = np.atleast_1d(np.asarray(betas, dtype=float))
        except (TypeError, ValueError):
            betas = None
        if betas is None or betas.ndim != 1 or not np.all(np.isfinite(betas)):
            raise ValueError("betas must be a 1-D array of finite floats (inverse "
                             "temperatures), e.g. np.linspace(0, 2 * tuner.beta_, 20).")
        n = len(self._reference_f) if n_samples is None else check_n_samples(n_samples)
        with torch_seeded(resolve_seed(self.random_state, random_state)):
            _, f = draw_base(self.base_, self.criterion, n, torch.device(self.device))
        refs = [tilted_moments(f, float(b)) for b in betas]
        return {key: np.array([getattr(r, key) for r in refs])
                for key in ("beta", "criterion_mean", "kl", "ess")}

    # --------------------------------------------------------------- sample
    def _draw(self, n_samples, random_state, latent: bool) -> np.ndarray:
        with torch_threads():
            check_is_fitted(self)
            n = check_n_samples(n_samples)
            flow, base = self.flow_, self.base_

            def draw(m):
                z = flow.draw(m)
                return (to_numpy(z if latent else base.to_instance(z)),)

            with torch_seeded(resolve_seed(self.random_state, random_state)), torch.no_grad():
                return draw_in_chunks(n, _SAMPLE_CHUNK, draw)[0]

    def sample(self, n_samples=1, *, random_state=None) -> np.ndarray:
        """Draw samples of the tuned model ``q_beta`` in instance space (decoded).

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples.
        random_state : int, RandomState instance or None, default=None
            ``None`` uses the estimator's ``random_state`` (so an int gives the same
            samples at every call, as in :meth:`sklearn.mixture.GaussianMixture.sample`).

        Returns
        -------
        X : ndarray of shape (n_samples, ...)
            Generated in chunks, so memory beyond the output stays bounded.
        """
        return self._draw(n_samples, random_state, latent=False)

    @available_if(_latent_or_unfitted)
    def sample_latent(self, n_samples=1, *, random_state=None) -> np.ndarray:
        """Draw latent samples ``z ~ q_beta(z)`` (only for latent bases).

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples.
        random_state : int, RandomState instance or None, default=None
            ``None`` uses the estimator's ``random_state``.

        Returns
        -------
        Z : ndarray of shape (n_samples, latent_dim)
        """
        return self._draw(n_samples, random_state, latent=True)

    # ----------------------------------------------------------- rare events
    def tail_probability(self, threshold, *, where=None, n_samples=100_000, defensive=0.3,
                         random_state=None) -> TailEstimate:
        """Estimate ``P_p(f(x) > threshold)`` by importance sampling from ``q_beta``.

        Unbiased: ``mean_i w_i 1{f(x_i) > t}`` with ``w = p / r`` (latent densities for
        latent bases, where the event is the same) and ``r`` the defensive mixture
        ``(1 - defensive) q_beta + (2/3) defensive q_start + (1/3) defensive p``. Most
        efficient when the budget was ``quantile_budget(rho)`` with ``rho`` near the
        probability sought.

        ``q_beta`` seeks modes and can miss small ones; alone, it then underestimates
        the probability *and* its standard error. ``q_start`` (``start_flow_``, fitted to
        the weighted reference base samples) covers the modes those samples contain, and
        ``p`` itself bounds every weight by ``3 / defensive``: a region both flows miss is
        still sampled, so the standard error reports the variance it costs. The result
        also carries the Pareto ``k`` of the hits' weights and the crude estimate from
        the reference base samples; when the two estimates disagree beyond 2 standard
        errors a :class:`~sktilt.tilt.TiltQualityWarning` says so and the standard error
        is widened to cover the disagreement (the sample variance cannot see a missed
        region).

        Parameters
        ----------
        threshold : float
            The threshold ``t`` on the criterion.
        where : callable or None, default=None
            A further condition on the event, ``P_p(f(x) > t and where(x))``: maps an
            array of samples ``(n, ...)`` in instance space to a boolean mask ``(n,)``
            (e.g. the weeks whose energy is at most a cap). The crude reference check
            is then not available (the reference keeps ``f`` only).
        n_samples : int, default=100_000
            Samples of the proposal to draw.
        defensive : float in [0, 1), default=0.3
            Fraction of the samples drawn from ``q_start`` and ``p``; 0 uses ``q_beta``
            alone (biased where it misses a mode, with an over-confident error).
        random_state : int, RandomState instance or None, default=None
            ``None`` uses the estimator's ``random_state``.

        Returns
        -------
        estimate : TailEstimate
            ``probability``, ``std_error`` (unpacks as ``p, se = ...``),
            ``relative_error``, ``n_hits``, ``ess``, ``pareto_k`` and the reference check.
        """
        with torch_threads():
            check_is_fitted(self)
            n = check_n_samples(n_samples)
            threshold = _check_threshold(threshold)
            with torch_seeded(resolve_seed(self.random_state, random_state)):
                log_w, f, x = self._draw_proposal(n, defensive, keep_x=where is not None)
            estimate = importance_tail_probability(_restricted(f, x, where), log_w, threshold)
            if where is not None:
                return estimate
            crude, crude_se = crude_tail_probability(self._reference_f, threshold)
            estimate = replace(estimate, reference_probability=crude, reference_std_error=crude_se)
            if abs(estimate.reference_z) > _CONSISTENCY_Z:
                # The proposal misses part of the event: the sample variance cannot see it,
                # so the error bar widens to the disagreement.
                widened = math.hypot(estimate.std_error, estimate.probability - crude)
                warn_at_caller(
                    f"tail_probability({threshold:.4g}) = {estimate.probability:.3g} ± "
                    f"{estimate.std_error:.2g} disagrees with the crude estimate of the "
                    f"reference base samples, {crude:.3g} ± {crude_se:.2g} (z = "
                    f"{estimate.reference_z:.1f}): the proposal misses part of the event; the "
                    f"standard error is widened to {widened:.2g}. Refit with more "
                    "n_components, or a kl_budget nearer -log P.", TiltQualityWarning)
                estimate = replace(estimate, std_error=widened)
            return estimate

    def _draw_proposal(self, n, defensive, keep_x=False):
        """``log p/r``, ``f`` (and ``x``) at ``n`` draws of the defensive mixture ``r``."""
        defensive = float(defensive)
        if not 0.0 <= defensive < 1.0:
            raise ValueError(f"defensive must be in [0, 1), got {defensive!r}.")
        if defensive == 0.0:
            log_ratio, f, x = draw_flow(self.flow_, self.base_, self.criterion, n,
                                        keep_x=keep_x)
            return -log_ratio, f, x
        fractions = (1.0 - defensive, 2.0 * defensive / 3.0, defensive / 3.0)
        return draw_defensive(self.flow_, self.start_flow_, fractions, self.base_,
                              self.criterion, n, keep_x=keep_x)

    def sample_tail(self, n_samples, threshold, *, where=None, oversample="auto",
                    defensive=0.3, random_state=None) -> np.ndarray:
        """Draw from ``p`` restricted to ``f(x) > threshold`` (sampling-importance-resampling).

        Candidates are drawn from the proposal of :meth:`tail_probability`; those above
        the threshold are resampled with replacement in proportion to ``p / r``. With
        ``oversample="auto"`` candidates are drawn in rounds until the effective number
        of candidates above the threshold reaches ``n_samples`` (so that the resample is
        about as informative as ``n_samples`` exact draws), up to ``1000 n_samples``
        candidates; a warning says when that was not enough.

        Parameters
        ----------
        n_samples : int
            Number of samples to return.
        threshold : float
            The threshold ``t`` on the criterion.
        where : callable or None, default=None
            A further condition, as in :meth:`tail_probability`: draws ``p`` restricted
            to ``f(x) > t and where(x)``.
        oversample : int or "auto", default="auto"
            Candidates drawn per returned sample; ``"auto"`` adapts it (see above).
        defensive : float in [0, 1), default=0.3
            See :meth:`tail_probability`; it keeps the modes that ``q_beta`` misses.
        random_state : int, RandomState instance or None, default=None
            ``None`` uses the estimator's ``random_state``.

        Returns
        -------
        X : ndarray of shape (n_samples, ...)
        """
        with torch_threads():
            check_is_fitted(self)
            n = check_n_samples(n_samples)
            threshold = _check_threshold(threshold)
            if oversample != "auto":
                oversample = check_n_samples(oversample, "oversample")
            seed = resolve_seed(self.random_state, random_state)
            round_size = n * (oversample if oversample != "auto" else _AUTO_ROUND)
            max_candidates = round_size if oversample != "auto" else _AUTO_MAX * n
            parts, drawn, ess = [], 0, 0.0
            with torch_seeded(seed):
                while drawn < max_candidates and ess < n:
                    log_w, f, x = self._draw_proposal(round_size, defensive, keep_x=True)
                    f = _restricted(f, x, where)
                    hit = f > threshold
                    parts.append((log_w[hit], f[hit], x[hit]))
                    drawn += round_size
                    w = np.exp(np.concatenate([p[0] for p in parts]))
                    ess = float(w.sum() ** 2 / (w @ w)) if w.size else 0.0
            log_w, f, x = (np.concatenate([p[i] for p in parts]) for i in range(3))
            return sir_tail_sample(x, f, log_w, threshold, n, np.random.default_rng(seed),
                                   n_candidates=drawn)

    # ---------------------------------------------------------------- score
    def score_samples(self, X) -> np.ndarray:
        """Log density ratio ``log q_beta(x) / p(x) = beta f(x) - log Z(beta)``.

        With constraints the exponent is ``beta f(x) + lambda . g(x)``.

        It is exact for the target tilt, in instance space, for every kind of base
        (with a deterministic decoder the latent tilt induces exactly this ratio),
        using the importance-sampling estimate of ``log Z`` (BTGM Eq. 29). Positive
        values mark points that the tuned model favours over the base model.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Points in instance space.

        Returns
        -------
        log_ratio : ndarray of shape (n_samples,)
        """
        with torch_threads():
            check_is_fitted(self)
            if hasattr(self, "n_features_in_"):
                X = validate_data(self, X, reset=False, allow_nd=True, dtype=np.float32)
            else:  # a latent base fitted without X: the instance shape the decoder makes
                X = check_array(X, allow_nd=True, dtype=np.float32)
                with torch.no_grad():
                    z = torch.zeros(1, self.base_.dim, device=torch.device(self.device))
                    expected = tuple(self.base_.to_instance(z).shape[1:])
                if tuple(X.shape[1:]) != expected:
                    raise ValueError(
                        f"score_samples: X has shape {X.shape}, but the model's samples have "
                        f"shape (n_samples, *{expected}); X must hold points of instance "
                        "space shaped like them.")
            with torch.no_grad():
                x = torch.as_tensor(X, device=torch.device(self.device))
                try:
                    # A constrained tilt's exponent is beta (f + nu . g), not beta f.
                    exponent = getattr(self, "_exponent", None) or self.criterion
                    f = evaluate_criterion(exponent, x, check=True).double().cpu().numpy()
                except (RuntimeError, IndexError, ValueError) as exc:
                    expected = tuple(self.sample(1, random_state=0).shape[1:])
                    raise ValueError(
                        f"score_samples: the criterion failed on X of shape {X.shape}: {exc}. "
                        f"X must hold points of instance space shaped like the model's samples, "
                        f"(n_samples, *{expected}).") from exc
            return self.beta_ * f - self.log_partition_

    def score(self, X, y=None) -> float:
        """Mean of :meth:`score_samples`: average log ``q_beta / p`` over ``X``.

        It measures how much the tuned model favours the points of ``X`` over the base
        model; it is *not* a model-selection score over ``kl_budget``: on data from the
        base model its expectation is ``-KL(p || q_beta) <= 0``, largest at ``beta = 0``,
        and on tail data it grows with beta, so a grid search on it reflects which data
        you passed, not a better tuner. To compare budgets use the Pareto scorers of
        :mod:`sktilt.metrics` (``PARETO_SCORING``: ``criterion_mean_scorer``,
        ``kl_scorer``; :ref:`grid_search`).

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Points in instance space.
        y : None
            Ignored.

        Returns
        -------
        score : float
        """
        return float(np.mean(self.score_samples(X)))
