"""The surface of a fitted tilted model ``q_beta``: sampling, scoring and rare events.

:class:`TiltedModelMixin` holds what a fitted :class:`~sktilt.BoltzmannTuner` offers once
its flow is trained, written against three attributes: ``base_`` (the base ``p``),
``flow_`` (a zuko lazy distribution, ``flow_()`` being ``q_beta``) and ``start_flow_``
(the defensive component of the rare-event estimators), plus ``beta_``,
``log_partition_``, ``criterion``, ``n_reference_samples``, ``random_state`` and
``device``. Any object carrying those (a tuner, a point of a fitted path) gets the
same methods.
"""

from __future__ import annotations

__all__ = ["TiltedModelMixin"]

import numpy as np
import torch
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from .._random import resolve_seed, torch_seeded
from .._utils import check_n_samples, draw_in_chunks, to_numpy
from ._criteria import evaluate_criterion
from ._rare_events import importance_tail_probability, sir_tail_sample
from ._reference import tilted_moments
from ._sampling import draw_base, draw_defensive, draw_flow

# Rows per chunk of sample(): bounds memory beyond the output.
_SAMPLE_CHUNK = 65536


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
            Base samples to draw; ``None`` means ``n_reference_samples``. More samples
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
        n = self.n_reference_samples if n_samples is None else check_n_samples(n_samples)
        with torch_seeded(resolve_seed(self.random_state, random_state)):
            _, f = draw_base(self.base_, self.criterion, n, torch.device(self.device))
        refs = [tilted_moments(f, float(b)) for b in np.atleast_1d(betas)]
        return {key: np.array([getattr(r, key) for r in refs])
                for key in ("beta", "criterion_mean", "kl", "ess")}

    # --------------------------------------------------------------- sample
    def _draw(self, n_samples, random_state, latent: bool) -> np.ndarray:
        check_is_fitted(self)
        n = check_n_samples(n_samples)
        flow, base = self.flow_, self.base_

        def draw(m):
            z = flow().sample((m,))
            return (to_numpy(z if latent else base.to_instance(z)),)

        with torch_seeded(resolve_seed(self.random_state, random_state)), torch.no_grad():
            return draw_in_chunks(n, _SAMPLE_CHUNK, draw)[0]

    def sample(self, n_samples=1, *, random_state=None):
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
    def sample_latent(self, n_samples=1, *, random_state=None):
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
    def tail_probability(self, threshold, *, n_samples=100_000, defensive=0.3,
                         random_state=None):
        """Estimate ``P_p(f(x) > threshold)`` by importance sampling from ``q_beta``.

        Unbiased: ``mean_i w_i 1{f(x_i) > t}`` with ``w = p / r`` (latent densities for
        latent bases, where the event is the same) and ``r`` the defensive mixture
        ``(1 - defensive) q_beta + defensive q_start``. Most efficient when the budget
        was ``quantile_budget(rho)`` with ``rho`` near the probability sought.

        ``q_start`` is the flow fitted at the start of ``fit`` (``start_flow_``): with
        ``init="likelihood"`` it covers every tail mode that the reference base
        samples contain. ``q_beta`` seeks modes and can miss small ones; alone, it then
        underestimates the probability and its standard error (seen: -12 % on average
        at a claimed 3 % on the benchmark decoder, whose tail has several modes). The mixture
        bounds the weights there: the estimate is right on average and its standard
        error honest, at the price of a larger standard error.

        Parameters
        ----------
        threshold : float
            The threshold ``t`` on the criterion.
        n_samples : int, default=100_000
            Samples of the proposal to draw.
        defensive : float in [0, 1), default=0.3
            Fraction of the samples drawn from ``q_start``; 0 uses ``q_beta`` alone.
        random_state : int, RandomState instance or None, default=None
            ``None`` uses the estimator's ``random_state``.

        Returns
        -------
        estimate : TailEstimate
            ``probability``, ``std_error`` (unpacks as ``p, se = ...``),
            ``relative_error``, ``n_hits``, ``ess`` (effective sample size of the hits).
        """
        check_is_fitted(self)
        n = check_n_samples(n_samples)
        with torch_seeded(resolve_seed(self.random_state, random_state)):
            log_w, f, _ = self._draw_proposal(n, defensive)
        return importance_tail_probability(f, log_w, float(threshold))

    def _draw_proposal(self, n, defensive, keep_x=False):
        """``log p/r``, ``f`` (and ``x``) at ``n`` draws of the defensive mixture ``r``."""
        defensive = float(defensive)
        if not 0.0 <= defensive < 1.0:
            raise ValueError(f"defensive must be in [0, 1), got {defensive!r}.")
        if defensive == 0.0:
            log_ratio, f, x = draw_flow(self.flow_, self.base_, self.criterion, n,
                                        keep_x=keep_x)
            return -log_ratio, f, x
        return draw_defensive(self.flow_, self.start_flow_, defensive, self.base_,
                              self.criterion, n, keep_x=keep_x)

    def sample_tail(self, n_samples, threshold, *, oversample=10, defensive=0.3,
                    random_state=None):
        """Draw from ``p`` restricted to ``f(x) > threshold`` (sampling-importance-resampling).

        ``n_samples * oversample`` candidates are drawn from the proposal of
        :meth:`tail_probability`; those above the threshold are resampled with
        replacement in proportion to ``p / r``. The draws are approximate (exact as
        ``oversample`` grows); a warning is raised when the effective number of distinct
        candidates is below ``n_samples``.

        Parameters
        ----------
        n_samples : int
            Number of samples to return.
        threshold : float
            The threshold ``t`` on the criterion.
        oversample : int, default=10
            Candidates drawn per returned sample.
        defensive : float in [0, 1), default=0.3
            Fraction of the candidates drawn from ``q_start``, see
            :meth:`tail_probability`; it keeps the modes that ``q_beta`` misses.
        random_state : int, RandomState instance or None, default=None
            ``None`` uses the estimator's ``random_state``.

        Returns
        -------
        X : ndarray of shape (n_samples, ...)
        """
        check_is_fitted(self)
        n = check_n_samples(n_samples)
        oversample = check_n_samples(oversample, "oversample")
        seed = resolve_seed(self.random_state, random_state)
        with torch_seeded(seed):
            log_w, f, x = self._draw_proposal(n * oversample, defensive, keep_x=True)
        return sir_tail_sample(x, f, log_w, float(threshold), n,
                               np.random.default_rng(seed))

    # ---------------------------------------------------------------- score
    def score_samples(self, X):
        """Log density ratio ``log q_beta(x) / p(x) = beta f(x) - log Z(beta)``.

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
        check_is_fitted(self)
        if hasattr(self, "n_features_in_"):
            X = validate_data(self, X, reset=False, allow_nd=True, dtype=np.float32)
        else:  # a latent base fitted without X: any instance shape the decoder makes
            X = check_array(X, allow_nd=True, dtype=np.float32)
        with torch.no_grad():
            x = torch.as_tensor(X, device=torch.device(self.device))
            f = evaluate_criterion(self.criterion, x).double().cpu().numpy()
        return self.beta_ * f - self.log_partition_

    def score(self, X, y=None):
        """Mean of :meth:`score_samples`: average log ``q_beta / p`` over ``X``.

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
