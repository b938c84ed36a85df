"""The final polish of a point fit: a method-of-moments step on finer features.

Where the adversarial fit ends, its precision is set by the critic, not by the data
(on the g-and-k, a fit started at the MLE ends 2.25 standard errors of the MLE away,
whatever the simulation budget). The polish regresses
:class:`~sktilt.avo._resolution.DistributionFeatures` at finer cut points on the
unconstrained parameters with a quadratic model (:class:`LocalFeatureModel`), from the
simulations of the last quarter of the fit and a last batch of its own around the fitted
location (:class:`PolishSamples`), and moves the location to where the model's features
meet the observations' (:func:`moment_location`, a Gauss-Newton solve of the efficient
method of moments).
"""

from __future__ import annotations

__all__ = ["LocalFeatureModel", "MIN_TAIL_COUNT", "POLISH_QUANTILES", "PRIOR_SD",
           "PolishSamples", "curvature_shrinkage", "moment_location", "polish_",
           "polish_levels", "polynomial_design"]

from dataclasses import dataclass
from itertools import combinations_with_replacement

import numpy as np
import torch

from .._utils import to_numpy
from ._resolution import DistributionFeatures, feature_rank, shrink_slopes
from ._uncertainty import MomentSolution, evidence_threshold, moment_covariance

# Cut points per column of the polish's CDF features (the resolution estimate uses 7):
# deciles and tail levels out to 0.5 %, where a tail parameter shows (the g-and-k's k),
# as far as the observations reach (polish_levels); more cuts need more simulations for
# their slopes.
POLISH_QUANTILES = np.array([0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7,
                             0.8, 0.9, 0.95, 0.975, 0.99, 0.995])
# A cut level is used only with at least this many observations beyond it: a sample
# quantile with fewer errs by more than the linear (Bahadur) approximation the standard
# errors assume (measured in the user guide and tests/avo/test_polish.py).
MIN_TAIL_COUNT = 50
_GAUSS_NEWTON_STEPS = 5
# The solve's prior: N(0, PRIOR_SD^2 I) in window units. It keeps a direction the
# features barely pin in place: at 3, Weinberg's ridge drifted to the window's edge and
# took c 2-2.6 SE off in 3 of 12 fits (12 seeds: 1.23 SE RMS at 3, 0.71 at 1.5; with
# 5 000 observations 0.69 and 0.60). A pinned direction (data precision about 9 for a
# window of 3 SE) keeps 95 % of its step.
PRIOR_SD = 1.5
# The solve stays within this many window standard deviations (where the model was fitted).
_MAX_RADIUS = 2.5
# A solve that stopped at the edge re-centres there and draws again, at most this often.
_MAX_ROUNDS = 3
# Samples farther than this from a round's centre (window units) leave its regression.
_KEEP_RADIUS = 4.0


def polish_levels(n_obs: int) -> np.ndarray:
    """The levels of :data:`POLISH_QUANTILES` with at least :data:`MIN_TAIL_COUNT` of
    ``n_obs`` observations beyond them, and always those from 0.2 to 0.8."""
    q = POLISH_QUANTILES
    tail = np.minimum(q, 1.0 - q)
    return q[(tail * n_obs >= MIN_TAIL_COUNT) | (tail >= 0.2 - 1e-9)]


def polynomial_design(u: np.ndarray, degree: int = 2) -> np.ndarray:
    """Monomials of ``u`` (n, k) up to ``degree``, constant first: shape (n, n_terms)."""
    u = np.atleast_2d(u)
    columns = [np.ones(len(u))]
    for d in range(1, degree + 1):
        for index in combinations_with_replacement(range(u.shape[1]), d):
            columns.append(np.prod(u[:, list(index)], axis=1))
    return np.stack(columns, axis=1)


def curvature_shrinkage(coef: np.ndarray, design_inv: np.ndarray, S_inv: np.ndarray,
                        n_params: int) -> np.ndarray:
    """Factors (n_terms,) on the coefficients: 1 up to the linear terms, and one
    positive-part James-Stein factor ``max(0, 1 - dof / stat)`` on all higher terms.

    ``stat`` is the Wald statistic of the higher terms over every feature (chi-squared
    with ``dof`` = their number of coefficients, counting tied features once
    (:func:`~._resolution.feature_rank`), when the model is linear). With many
    parameters a quadratic model has many terms, and the noise of the unneeded ones
    swamps the solve: on the 10-D Gaussian linear model (55 quadratic terms, 195
    features at 15 evenly spaced cut points) a polish from 1 standard error off ended
    0.94 SE from the MLE with them and 0.56 with this factor (about 0.03 there), while a
    curved g-and-k keeps what its curvature needs (0.99 -> 0.89 SE; a linear model:
    1.50).
    """
    higher = slice(1 + n_params, None)
    C = coef[higher]
    scale = np.ones(len(coef))
    if C.size == 0:
        return scale
    stat = np.trace(S_inv @ C.T @ np.linalg.pinv(design_inv[higher, higher],
                                                  hermitian=True) @ C)
    dof = C.shape[0] * feature_rank(S_inv)  # tied features count once
    scale[higher] = max(0.0, 1.0 - dof / stat) if stat > 0 else 0.0
    return scale


@dataclass
class LocalFeatureModel:
    """Mean features as a quadratic function of the window coordinate ``u``.

    ``features = polynomial_design(u) coef + e``, ``e ~ N(0, S)``, fitted by least
    squares on simulations at ``z = centre + W u``, ``u ~ N(0, I)``, its terms above
    the linear ones shrunk by :func:`curvature_shrinkage`.
    """

    coef: np.ndarray  # (n_terms, p)
    S_inv: np.ndarray  # (p, p)
    design_inv: np.ndarray  # (n_terms, n_terms): (D^T D)^-1, the coefficients' noise
    n_params: int
    degree: int
    rank: int  # feature_rank(S_inv): the features that vary independently

    @classmethod
    def fit(cls, u: np.ndarray, features: np.ndarray, degree: int = 2) -> LocalFeatureModel:
        D = polynomial_design(u, degree)
        coef, *_ = np.linalg.lstsq(D, features, rcond=None)
        R = features - D @ coef
        S_inv = np.linalg.pinv(R.T @ R / max(1, len(u) - D.shape[1]), hermitian=True)
        design_inv = np.linalg.pinv(D.T @ D, hermitian=True)
        scale = curvature_shrinkage(coef, design_inv, S_inv, u.shape[1])
        return cls(coef * scale[:, None], S_inv, design_inv * np.outer(scale, scale),
                   u.shape[1], degree, feature_rank(S_inv))

    def mean(self, v: np.ndarray) -> np.ndarray:
        return polynomial_design(v[None], self.degree)[0] @ self.coef

    def _design_slopes(self, v: np.ndarray, eps: float = 1e-4) -> np.ndarray:
        # d design(v) / d v, shape (k, n_terms) (central differences of the monomials)
        return np.stack([(polynomial_design((v + eps * e)[None], self.degree)[0]
                          - polynomial_design((v - eps * e)[None], self.degree)[0]) / (2 * eps)
                         for e in np.eye(len(v))])

    def jacobian(self, v: np.ndarray) -> np.ndarray:
        """d mean / d v, shape (k, p)."""
        return self._design_slopes(v) @ self.coef

    def slope_noise(self, v: np.ndarray) -> np.ndarray:
        """What the estimation noise of :meth:`jacobian` adds to ``J S^-1 J^T`` on
        average: ``p G (D^T D)^-1 G^T`` with ``G`` the design's slopes, shape (k, k)."""
        G = self._design_slopes(v)
        return self.rank * G @ self.design_inv @ G.T

    def mean_noise(self, v: np.ndarray) -> float:
        """``c(v)``: the fitted mean at ``v`` varies as ``c(v) S`` (simulation noise)."""
        d = polynomial_design(v[None], self.degree)[0]
        return float(d @ self.design_inv @ d)

    def evidence_slopes(self, v: np.ndarray) -> np.ndarray:
        """:meth:`jacobian` shrunk by its evidence (:func:`shrink_slopes`), (k, p), no
        more than at :func:`~._uncertainty.evidence_threshold`."""
        return shrink_slopes(self.jacobian(v), self.S_inv, self.slope_noise(v),
                             evidence_threshold(self.rank))


def moment_location(model: LocalFeatureModel, target: np.ndarray, n_obs: int,
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Where the model's features meet ``target`` (the observations' mean features).

    Gauss-Newton on ``n_obs (target - m(v))^T S^-1 (target - m(v)) + |v|^2 / PRIOR_SD^2``:
    the efficient method of moments, with a prior ``N(0, PRIOR_SD^2 I)`` so that a
    direction the features do not pin stays where it was. Kept within
    :data:`_MAX_RADIUS` of the window's centre, where the model was fitted.

    Returns
    -------
    v : ndarray of shape (k,)
        The estimate, in window coordinates.
    cov : ndarray of shape (k, k)
        Its covariance from the observations' noise (the inverse of the precision).
    """
    k = model.n_params
    prior = np.eye(k) / PRIOR_SD**2
    v, precision = np.zeros(k), prior
    for _ in range(_GAUSS_NEWTON_STEPS):
        # noisy slopes look like information and shorten the step toward the target
        # (errors in variables): shrink them by their evidence (their noise subtracted)
        J = model.evidence_slopes(v)
        precision = n_obs * J @ model.S_inv @ J.T + prior
        gradient = n_obs * J @ model.S_inv @ (target - model.mean(v)) - prior @ v
        try:
            v = v + np.linalg.solve(precision, gradient)
        except np.linalg.LinAlgError:
            break
        radius = np.linalg.norm(v)
        if radius > _MAX_RADIUS:
            v *= _MAX_RADIUS / radius
    return v, np.linalg.pinv(precision, hermitian=True)


class PolishSamples:
    """The simulations the polish regresses, as (unconstrained parameters, features).

    Fed with the batches of the last quarter of the fit (:meth:`add`), then with the
    polish's own; :meth:`shift` fits the model and solves. The features are
    :class:`~sktilt.avo._resolution.DistributionFeatures` at :func:`polish_levels`
    of the observations ``X_obs`` (n_obs, n_features), kept as float32.
    """

    def __init__(self, X_obs: np.ndarray):
        self.features = DistributionFeatures(X_obs, polish_levels(len(X_obs)))
        self.target = self.features.transform(X_obs).mean(0)
        self.n_obs = len(X_obs)
        self._z: list[np.ndarray] = []
        self._F: list[np.ndarray] = []

    @property
    def n_samples(self) -> int:
        return sum(len(z) for z in self._z)

    def needed(self, n_params: int) -> int:
        """Simulations for a model as precise as the data and slopes above their
        noise: ``max(n_terms, 0.3 p) n_obs`` for ``n_terms`` terms of the quadratic
        model in ``n_params`` parameters and ``p`` features. Averaged over its window,
        the fitted mean's variance is ``n_terms / n_sim`` of one simulation's, the
        observations' ``1 / n_obs``; the slopes' signal-to-noise is
        ``n_sim w^2 / (p n_obs)``, about 2.7 at ``0.3 p`` for a window ``w`` of 3
        standard errors."""
        n_terms = polynomial_design(np.zeros((1, n_params))).shape[1]
        return int(max(n_terms, 0.3 * self.features.n_features) * self.n_obs)

    def model_precision(self, n_samples: int, n_params: int) -> float:
        """How precise a model of ``n_samples`` simulations is over its window, against
        the observations' mean: ``n_samples / (n_terms n_obs)``, the ratio of the
        observations' variance to the fitted mean's averaged over the window."""
        n_terms = polynomial_design(np.zeros((1, n_params))).shape[1]
        return n_samples / (n_terms * self.n_obs)

    def add(self, z: np.ndarray, X: np.ndarray) -> None:
        """One batch: parameters ``z`` (m, k) and their simulated data ``X`` (m, n_features)."""
        self._z.append(np.asarray(z, dtype=float))
        self._F.append(self.features.transform(X).astype(np.float32))

    def solve(self, centre: np.ndarray, window: np.ndarray, move: bool = True,
              ) -> MomentSolution | None:
        """The location shift (z units) from the quadratic model in the coordinates
        ``u = window^-1 (z - centre)``, and its precision there
        (:func:`~._uncertainty.moment_covariance`); ``None`` while the samples are too
        few. With ``move=False`` the location stays (a zero shift) and the precision
        is that at ``centre``."""
        if not self._z:
            return None
        Z, F = np.concatenate(self._z), np.concatenate(self._F).astype(float)
        k = len(centre)
        if len(Z) < 2 * (F.shape[1] + k * k) + 10:
            return None
        u = np.linalg.solve(window, (Z - centre).T).T
        near = np.linalg.norm(u, axis=1) < _KEEP_RADIUS  # earlier rounds' far samples
        if near.sum() < 2 * (F.shape[1] + k * k) + 10:
            return None
        model = LocalFeatureModel.fit(u[near], F[near])
        v = moment_location(model, self.target, self.n_obs)[0] if move else np.zeros(k)
        c = model.mean_noise(v)
        cov, unidentified = moment_covariance(model.jacobian(v), model.S_inv,
                                              model.slope_noise(v), self.n_obs, c, window)
        return MomentSolution(window @ v, cov, unidentified,
                              1.0 + self.n_obs * c,
                              at_edge=bool(np.linalg.norm(v) > 0.99 * _MAX_RADIUS),
                              # d m / d z = W^-T d m / d u
                              slopes=np.linalg.solve(window.T, model.jacobian(v)),
                              S_inv=model.S_inv, mean_noise=c,
                              model_precision=self.model_precision(int(near.sum()), k),
                              window=window)


def polish_(module, samples: PolishSamples, floor: np.ndarray | None,
            extra: tuple[int, ...], rng: np.random.Generator, simulate_features,
            move: bool = True) -> MomentSolution | None:
    """Polish ``module`` (a :class:`~sktilt.avo._gaussian.GaussianProposalModule`) in place.

    Each round draws ``extra[round]`` simulations around the location in a window of the
    proposal's spread, widened to ``floor`` (3 standard errors) where that is wider, so
    that the slopes stand out of the noise; ``simulate_features(thetas) -> (ok,
    features)`` simulates them. With the ``samples`` already pooled,
    :meth:`PolishSamples.solve` gives the location's move (``move=False``: none, only
    the precision). A solve that stops at the window's edge re-centres there for the next
    round (at most :data:`_MAX_ROUNDS`). Returns the last solution, ``None`` when the
    samples were too few.
    """
    solution = None
    for n_extra in extra[:_MAX_ROUNDS if move else 1]:
        with torch.no_grad():
            centre = to_numpy(module.loc())
            window = to_numpy(module.scale_tril())
            spread = to_numpy(module.spread())
        if floor is not None:
            widen = np.where(np.isfinite(floor), np.maximum(1.0, floor / spread), 1.0)
            window = widen[:, None] * window
        if n_extra > 0:
            z = centre + rng.standard_normal((n_extra, len(centre))) @ window.T
            with torch.no_grad():
                thetas = to_numpy(module.transform(torch.as_tensor(
                    z, dtype=module.loc_anchor.dtype)))
            ok, features = simulate_features(thetas)
            if features is not None:
                samples.add(z[ok], features)
        solution = samples.solve(centre, window, move=move)
        if solution is None:
            return None
        module.move_location_(torch.as_tensor(solution.shift, dtype=module.loc_anchor.dtype))
        if not solution.at_edge:
            break
    return solution
