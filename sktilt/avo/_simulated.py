"""The surface of a fitted AVO model: parameters drawn from the proposal, data simulated.

:class:`SimulatedModelMixin` is written against the fitted attributes of
:class:`~sktilt.AVOSimulatorFitter` (``proposal_``, ``n_features_in_``, the simulator
settings, ``_simulator_spec()``, ``standard_errors_``) and holds what a user does with the
fit once it is done.
"""

from __future__ import annotations

__all__ = ["SimulatedModelMixin"]

from numbers import Real

import numpy as np
from scipy.stats import norm
from sklearn.utils.validation import check_is_fitted, validate_data

from .._random import resolve_seed
from .._utils import check_n_samples, warn_at_caller
from ..metrics import energy_distance
from ..simulation import SimulationFailureWarning, simulate
from ._proposals import parse_bounds

# score() compares with this many simulations and at most this many observations.
_SCORE_SIMULATIONS, _SCORE_MAX_OBSERVATIONS = 2000, 5000
# sample() simulates in chunks of this many rows: memory stays that of the result, not of
# the simulator's intermediates and joblib's copies for all of it at once.
_SAMPLE_CHUNK = 100_000


class SimulatedModelMixin:
    """Sampling and scoring methods of a fitted simulator model ``theta ~ q, x ~ p(x|theta)``."""

    def sample_parameters(self, n_samples=1, random_state=None) -> np.ndarray:
        """Draw ``theta ~ q_psi`` from the fitted proposal, shape (n_samples, n_params).

        ``random_state`` defaults to the estimator's ``random_state``.
        """
        check_is_fitted(self)
        seed = resolve_seed(self.random_state, random_state)
        return self.proposal_.sample(check_n_samples(n_samples), np.random.default_rng(seed))

    def sample(self, n_samples=1, random_state=None) -> np.ndarray:
        """Simulate data from the fitted model: ``theta ~ q_psi``, ``x = simulator(theta)``.

        Failed simulations are dropped (with a warning), so fewer than
        ``n_samples`` rows can come back.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        """
        check_is_fitted(self)
        n = check_n_samples(n_samples)
        seed = np.random.SeedSequence(resolve_seed(self.random_state, random_state))
        theta_seed, sim_seed = seed.spawn(2)
        rng = np.random.default_rng(theta_seed)
        out = np.empty((n, self.n_features_in_))
        spec = self._simulator_spec()
        n_ok, n_failed, first_error = 0, 0, None
        for start, chunk_seed in zip(range(0, n, _SAMPLE_CHUNK),
                                     sim_seed.spawn(-(-n // _SAMPLE_CHUNK))):
            m = min(_SAMPLE_CHUNK, n - start)
            result = simulate(spec.function, self.proposal_.sample(m, rng), seed=chunk_seed,
                              n_jobs=self.n_jobs, vectorized=spec.vectorized,
                              n_features=self.n_features_in_, timeout=spec.timeout)
            out[n_ok:n_ok + len(result.X)] = result.X
            n_ok += len(result.X)
            n_failed += result.n_failed
            if result.n_failed and first_error is None:
                first_error = result.errors[0]
        if n_failed:
            warn_at_caller(f"{n_failed} of {n} simulations failed and were "
                           f"dropped: {first_error}", SimulationFailureWarning)
        return out[:n_ok]

    def score(self, X, y=None) -> float:
        """Negative energy distance between ``X`` and data simulated from the fit.

        Higher is better (0 is a perfect match, up to sampling noise). Both samples
        are standardised with the training observations' mean and standard deviation
        first; 2 000 simulations are drawn with a seed fixed at fit time and at most
        5 000 rows of ``X`` are used (a fixed-seed subsample), so the score is
        deterministic and comparable across the candidates of a grid search.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored.

        Returns
        -------
        float
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, ensure_min_samples=2, dtype=np.float64)
        rng = np.random.default_rng(self._score_seed)
        if X.shape[0] > _SCORE_MAX_OBSERVATIONS:
            X = X[rng.choice(X.shape[0], _SCORE_MAX_OBSERVATIONS, replace=False)]
        thetas = self.proposal_.sample(_SCORE_SIMULATIONS, rng)
        spec = self._simulator_spec()
        Y = simulate(spec.function, thetas, seed=self._score_seed, n_jobs=self.n_jobs,
                     vectorized=spec.vectorized, n_features=self.n_features_in_,
                     timeout=spec.timeout).X
        if Y.shape[0] < 2:
            return -np.inf
        mean, scale = self._obs_mean, self._obs_scale
        return -energy_distance((X - mean) / scale, (Y - mean) / scale)

    def confidence_intervals(self, level: float = 0.95) -> np.ndarray:
        """Wald confidence intervals ``theta_ -+ z standard_errors_``.

        Parameters
        ----------
        level : float in (0, 1), default=0.95
            Coverage probability of each (marginal) interval.

        Returns
        -------
        intervals : ndarray of shape (n_params, 2)
            Lower and upper ends in the parameters' own units, clipped to the
            proposal's bounds; ``(-inf, inf)`` within the bounds for a parameter the
            data do not identify.
        """
        check_is_fitted(self, "theta_")
        if not isinstance(level, Real) or not 0 < level < 1:
            raise ValueError(f"level must be a float in (0, 1), got {level!r}.")
        if self.standard_errors_ is None:
            raise ValueError(
                "confidence_intervals needs a point fit: gamma > 0 and a "
                f"GaussianProposal (got gamma={self.gamma}, "
                f"{type(self.proposal).__name__}); a population fit's answer is the "
                "distribution proposal_, not a point.")
        half = norm.ppf(0.5 + level / 2) * self.standard_errors_
        intervals = np.stack([self.theta_ - half, self.theta_ + half], axis=1)
        with np.errstate(invalid="ignore"):
            intervals[~np.isfinite(half)] = [-np.inf, np.inf]
        bounds = getattr(self.proposal_, "bounds", None)
        if bounds is not None:
            limits = np.array(parse_bounds(bounds, len(self.theta_)), dtype=float)
            intervals = np.clip(intervals, limits[:, :1], limits[:, 1:])
        return intervals
