"""How precisely the observations pin each parameter: the floor on the proposal's spread,
and the second-order location step that the same linear model gives.

Below the data's resolution the critic cannot see the proposal's spread, REINFORCE
location gradients lose their signal and the location freezes wherever it was, since its
steps shrink with the spread. :class:`ScaleFloor` keeps the entropy term from tightening
the proposal below a few standard errors, estimated along the fit by
:class:`ParameterResolution`, whose regression of distribution features on the
parameters also gives :meth:`ParameterResolution.kalman_shift`: where the location
should move for the simulated features to meet the observed ones.
"""

from __future__ import annotations

__all__ = ["DistributionFeatures", "ParameterResolution", "ScaleFloor", "feature_rank",
           "shrink_slopes"]

import numpy as np

from .._utils import column_scale

# Cut points per feature of the observations at which the empirical CDF is compared, and
# the largest number of pairwise products (dependence) the features include.
_QUANTILES = np.arange(1, 8) / 8
_MAX_PAIRS = 45


def feature_rank(S_inv: np.ndarray) -> int:
    """How many features vary independently: the rank of their inverse covariance.

    The slopes' estimation noise adds this many units to their signal-to-noise, not
    the number of features: tied cut points of discrete data (a Poisson count's
    quantiles) give identical features, which add neither information nor noise.
    """
    return int(np.linalg.matrix_rank(S_inv, hermitian=True))


class DistributionFeatures:
    """Features of the whole distribution of the data, for the resolution estimate.

    The mean of raw features only sees parameters that move the data's location: a
    parameter of spread or shape (the g-and-k's ``B``, ``g``, ``k``, a correlation)
    leaves it unchanged. These features are, per column, the indicators
    ``1{x <= c}`` at the seven octiles ``c`` of the observations (so their means are
    the empirical CDF there: bounded, and moved by location, spread and shape alike),
    and the products of pairs of standardised columns (moved by dependence), up to
    :data:`_MAX_PAIRS` pairs.

    Parameters
    ----------
    X_obs : array of shape (n_obs, n_features)
        The observations (after any ``summary``).
    quantiles : array of shape (n_cuts,), default=the seven octiles
        Levels of the cut points, quantiles of each column of ``X_obs``.
    """

    def __init__(self, X_obs: np.ndarray, quantiles: np.ndarray = _QUANTILES):
        X_obs = np.asarray(X_obs, dtype=float)
        self.cuts = np.quantile(X_obs, quantiles, axis=0)  # (n_cuts, p)
        self.mean, self.scale = X_obs.mean(0), column_scale(X_obs)
        p = X_obs.shape[1]
        pairs = [(i, j) for i in range(p) for j in range(i + 1, p)][:_MAX_PAIRS]
        self.pairs = np.array(pairs, dtype=int).reshape(-1, 2)

    @property
    def n_features(self) -> int:
        return self.cuts.size + len(self.pairs)

    def transform(self, X: np.ndarray) -> np.ndarray:
        """The features of ``X`` (n, n_features_in), shape (n, n_features)."""
        X = np.asarray(X, dtype=float)
        below = (X[:, None, :] <= self.cuts[None]).reshape(len(X), -1).astype(float)
        Z = (X - self.mean) / self.scale
        products = Z[:, self.pairs[:, 0]] * Z[:, self.pairs[:, 1]]
        return np.concatenate([below, products], axis=1)


class ParameterResolution:
    """Standard error that ``n_obs`` observations give each coordinate of ``z``.

    A linear-Gaussian approximation of the simulator: within each batch, the
    features are regressed on the unconstrained parameters ``z``
    (``features = a_batch + (z - mean_batch) B + e``, ``e ~ N(0, S)``, one
    ``B`` and ``S`` pooled over all batches by accumulating their centred cross
    products). The mean of ``n_obs`` observations then carries the information
    ``I_ii = n_obs b_i^T S^{-1} b_i`` on ``z_i`` (the other coordinates held fixed).
    Only the features' means are used, so this bounds the Fisher information from
    below and ``1 / sqrt(I_ii)`` errs on the large side; with
    :class:`DistributionFeatures` the means are those of the empirical CDF and of
    pairwise products, which every parameter of the data's distribution moves. Older batches are
    discounted by ``decay`` per update, so that the estimate follows the sensitivity
    along the path; within that window the broader batches, whose slopes are the
    best determined, weigh most. On average the noise of ``B`` inflates
    ``b_i^T S^{-1} b_i`` by ``p [(Z^T Z)^{-1}]_ii``, which is subtracted, and
    ``S^{-1}`` is corrected by its inverse-Wishart factor.
    """

    def __init__(self, n_params: int, n_features: int, decay: float = 1.0):
        k, p = n_params, n_features
        self.decay = decay
        self.zz, self.zf, self.ff = np.zeros((k, k)), np.zeros((k, p)), np.zeros((p, p))
        self.z_sum, self.f_sum = np.zeros(k), np.zeros(p)
        self.n = self.n_batches = 0

    def update(self, z, features) -> "ParameterResolution":
        """Add one batch: ``z`` of shape (m, k), ``features`` of shape (m, p)."""
        z = np.asarray(z, dtype=float)
        F = np.asarray(features, dtype=float)
        if z.shape[0] < 2:
            return self
        for name in ("zz", "zf", "ff", "z_sum", "f_sum", "n", "n_batches"):
            setattr(self, name, getattr(self, name) * self.decay)
        self.z_sum += z.sum(0)
        self.f_sum += F.sum(0)
        Z, F = z - z.mean(0), F - F.mean(0)
        self.zz += Z.T @ Z
        self.zf += Z.T @ F
        self.ff += F.T @ F
        self.n += z.shape[0]
        self.n_batches += 1
        return self

    def standard_errors(self, n_obs: int) -> np.ndarray:
        """Per-coordinate standard errors, shape (k,).

        ``inf`` where the simulations so far show no effect of ``z_i`` on the
        features, or are too few to estimate the features' covariance.
        """
        k = self.zf.shape[0]
        se = np.full(k, np.inf)
        model = self.linear_model()
        if model is None:
            return se
        zz_inv, B, S_inv, p = model
        info = n_obs * (np.einsum("ip,pq,iq->i", B, S_inv, B) - p * np.diag(zz_inv))
        positive = info > 0
        se[positive] = 1.0 / np.sqrt(info[positive])
        return se

    def linear_model(self):
        """``((Z^T Z)^{-1}, B, S^{-1}, rank)`` of the pooled regression (``rank``: the
        :func:`feature_rank` of ``S^{-1}``), or None (too few rows)."""
        k, p = self.zf.shape
        dof = self.n - self.n_batches - k
        if dof < 2 * p + 4:
            return None
        zz_inv = np.linalg.pinv(self.zz)
        B = zz_inv @ self.zf
        S_inv = np.linalg.pinv((self.ff - B.T @ self.zz @ B) / dof, hermitian=True)
        rank = feature_rank(S_inv)
        return zz_inv, B, S_inv * (dof - rank - 1) / dof, rank

    def kalman_shift(self, loc: np.ndarray, cov: np.ndarray, target: np.ndarray,
                     n_obs: int) -> np.ndarray:
        """Shift of the location ``loc`` that makes the features' mean meet ``target``.

        The linear-Gaussian model (``mean features(z) = f(loc) + (z - loc) B``, with
        ``f(loc)`` extrapolated from the discounted batches' means) says that the
        mean of ``n_obs`` observations, ``target``, has the likelihood
        ``N(target; f(loc) + d B, S / n_obs)`` for a shift ``d``. With the proposal
        ``N(loc, cov)`` as its prior, the posterior mean of ``d`` is

        ``(n_obs B S^-1 B^T + cov^-1)^-1 n_obs B S^-1 (target - f(loc))``,

        the update of ensemble Kalman inversion: a Gauss-Newton step in the directions
        the data pin, none in those they do not. Being second-order, it travels
        ridges along which score-function steps, scaled by the proposal's spread, stall.

        Parameters
        ----------
        loc : ndarray of shape (k,)
        cov : ndarray of shape (k, k)
            The proposal's location and covariance (unconstrained variable ``z``).
        target : ndarray of shape (n_features,)
            The observations' mean features.
        n_obs : int

        Returns
        -------
        ndarray of shape (k,)
            Zeros while the simulations are too few, or where the system is singular.
        """
        model = self.linear_model()
        if model is None:
            return np.zeros_like(loc)
        zz_inv, B, S_inv, rank = model
        f_loc = self.f_sum / self.n + (loc - self.z_sum / self.n) @ B
        try:
            B = shrink_slopes(B, S_inv, rank * zz_inv)
            precision = n_obs * B @ S_inv @ B.T + np.linalg.inv(cov)
            shift = np.linalg.solve(precision, n_obs * B @ S_inv @ (target - f_loc))
        except (np.linalg.LinAlgError, ValueError):
            return np.zeros_like(loc)
        return shift if np.all(np.isfinite(shift)) else np.zeros_like(loc)


def shrink_slopes(B: np.ndarray, S_inv: np.ndarray, noise: np.ndarray,
                  threshold: float = 1.0) -> np.ndarray:
    """Slopes ``B`` (k, p) shrunk by their evidence, direction by direction.

    The estimation noise of ``B`` adds ``noise = p (Z^T Z)^{-1}`` to ``B S^{-1} B^T``
    on average. In the directions ``v`` of the generalised eigenproblem
    ``B S^{-1} B^T v = lambda noise v``, ``lambda`` is a signal-to-noise ratio; the
    slopes along ``v`` are scaled by ``sqrt(max(0, 1 - 1 / lambda))``, so that their
    information is the debiased ``lambda - 1``. Unshrunk, a parameter without effect
    looks pinned by noise once ``n_obs p`` outgrows the simulations, and a step toward
    the data's features would move it by that noise. Between 1 and ``threshold`` the
    weight stays at its value at ``threshold``: a step along such a direction divides
    the features' noise by the weight, and near ``lambda = 1`` that noise, not the
    data, would set the step.
    """
    from scipy.linalg import eigh

    values, V = eigh(B @ S_inv @ B.T, noise)  # V^T noise V = I
    weights = np.where(values > 1.0,
                       np.sqrt(1.0 - 1.0 / np.maximum(values, max(threshold, 1.0))), 0.0)
    # rows of V^T B are the slopes of the components; back with V^-T = noise V
    return noise @ V @ (weights[:, None] * (V.T @ B))


class ScaleFloor:
    """The floor ``min_scale`` puts on the proposal's standard deviations.

    ``min_scale`` is ``"auto"`` (``factor`` standard errors from a
    :class:`ParameterResolution` of the :class:`DistributionFeatures` of every batch,
    fed through :meth:`observe`),
    ``None`` (no floor), or a positive float or array of shape ``(n_params,)``.
    Below the data's resolution the critic cannot see the proposal's spread,
    REINFORCE location gradients lose their signal and the location freezes wherever
    it was, since its steps shrink with the spread. The default ``decay`` (a window
    of about 70 batches) is local enough to follow the sensitivity along the path
    and long enough to pool the thousands of simulations a standard error needs.
    """

    def __init__(self, min_scale, n_params: int, X_obs: np.ndarray, factor: float = 3.0,
                 decay: float = 0.985):
        self.n_obs, self.factor = len(X_obs), factor
        self.resolution = self.fixed = self.features = None
        if isinstance(min_scale, str):
            self.features = DistributionFeatures(X_obs)
            self.target = self.features.transform(X_obs).mean(0)
            self.resolution = ParameterResolution(n_params, self.features.n_features, decay)
        elif min_scale is not None:
            floor = np.asarray(min_scale, dtype=float)
            if floor.ndim > 1 or (floor.ndim == 1 and floor.shape != (n_params,)):
                raise ValueError(f"min_scale must be 'auto', None, a float or an array "
                                 f"of shape ({n_params},) (one per parameter); got "
                                 f"shape {floor.shape}.")
            if not np.all(np.isfinite(floor) & (floor > 0)):
                raise ValueError(f"min_scale must be positive and finite; got "
                                 f"{min_scale}.")
            self.fixed = np.broadcast_to(floor, (n_params,)).copy()

    def observe(self, z, features) -> None:
        """Feed one batch of unconstrained parameters and simulated features."""
        if self.resolution is not None:
            self.resolution.update(z, self.features.transform(features))

    def location_shift(self, loc: np.ndarray, cov: np.ndarray) -> np.ndarray | None:
        """:meth:`ParameterResolution.kalman_shift` toward the observations' features
        (None without a resolution estimate, i.e. unless ``min_scale="auto"``)."""
        if self.resolution is None:
            return None
        return self.resolution.kalman_shift(loc, cov, self.target, self.n_obs)

    def value(self):
        """The current floor, shape (n_params,), or None."""
        if self.resolution is None:
            return self.fixed
        return self.factor * self.resolution.standard_errors(self.n_obs)
