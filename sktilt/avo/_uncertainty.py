"""Standard errors of a point fit: the efficient method-of-moments sandwich.

The polish (:mod:`._polish`) fits the simulated features' mean as a function of the
parameters near the fitted point, ``m(v)``, with slopes ``J`` and feature covariance
``S``, and solves ``target = m(v)``. Two noises move that solution: the observations'
(their mean features vary with covariance ``S / n_obs``) and the simulations' (the
fitted ``m(v)`` varies with covariance ``c(v) S``, ``c(v) = d(v)^T (D^T D)^{-1} d(v)``
for the design row ``d(v)``). With the optimal weight ``S^-1`` the sandwich collapses to

    Cov(v) = (1 / n_obs + c(v)) (J S^-1 J^T)^-1,

the method of simulated moments' variance with its simulation-noise factor
``1 + n_obs c(v)`` (Gourieroux & Monfort, 1996; Gallant & Tauchen, 1996). The slopes are
those the solve uses, shrunk by their evidence, so that noise does not pass for
information. A parameter whose slopes show no evidence, or whose standard error exceeds
the window the model was fitted in, is not identified there: its variance is infinite.

A small budget leaves the polish few simulations, and its slopes over many features then
show too little evidence for a parameter the data do pin (a Poisson rate, 20 000
observations, 20 000 simulations). The fit's running regression on fewer features and
all its batches (:class:`~._resolution.ParameterResolution`) bounds the information from
below; where it identifies parameters the polish does not,
:func:`with_resolution_fallback` takes its sandwich instead: wider, never narrower, than
the polish's would be with enough simulations.
"""

from __future__ import annotations

__all__ = ["MomentCheck", "MomentSolution", "evidence_threshold", "moment_check",
           "moment_covariance", "parameter_covariance", "with_resolution_fallback"]

from dataclasses import dataclass, replace

import numpy as np
import torch

from .._utils import to_numpy
from ._resolution import feature_rank

# A direction counts as identified while its standard error stays inside the window the
# local model was fitted in (in window standard deviations, as ``_polish._MAX_RADIUS``).
_MAX_IDENTIFIED_SE = 2.5


@dataclass
class MomentSolution:
    """Where the moment solve put the location, and how precisely.

    ``shift`` moves the location and ``covariance`` (k, k) is the solution's, both in
    units of the unconstrained ``z``; ``unidentified`` (k,) marks the coordinates the
    data do not pin there; ``simulation_factor`` is ``1 + n_obs c(v)``.
    """

    shift: np.ndarray
    covariance: np.ndarray
    unidentified: np.ndarray
    simulation_factor: float
    at_edge: bool = False  # the solve stopped at the window's edge: the answer lies beyond
    slopes: np.ndarray | None = None  # (k, p) d features / d z at the solution
    S_inv: np.ndarray | None = None  # (p, p) inverse feature covariance
    mean_noise: float = 0.0  # c: the fitted mean's variance, in units of S
    # the model's precision over its window against the observations':
    # n_sim / (n_terms n_obs), see PolishSamples.model_precision
    model_precision: float = np.inf
    window: np.ndarray | None = None  # (k, k): z = centre + window u, where it was fitted


@dataclass(frozen=True)
class MomentCheck:
    """Fresh simulations at the fitted point against the observations' features.

    Attributes
    ----------
    statistic : float
        ``chi^2`` statistic with ``df`` degrees of freedom.
    df : int
        The number of parameters.
    p_value : float
        Small when the point is not where the observations' features put it.
    step : ndarray of shape (k,)
        The one step from the point toward the features' root, in standard errors.
    """

    statistic: float
    df: int
    p_value: float
    step: np.ndarray


def moment_check(solution: MomentSolution, target: np.ndarray, simulated: np.ndarray,
                 ) -> MomentCheck | None:
    """Whether fresh simulations at the solution reproduce the observed features.

    The solve put the point where the local model's mean features meet ``target`` (the
    observations'); fresh simulations there give an independent estimate of the mean,
    ``simulated`` (n, p) features. Their difference ``g``, projected onto the parameters'
    directions, ``u = J S^-1 g``, has covariance ``(c + 1 / n) J S^-1 J^T`` when the
    model is right (the observations' noise is fixed by the data; ``c`` is the model's
    own), so ``u^T (J S^-1 J^T)^-1 u / (c + 1 / n)`` is ``chi^2_k``. A model that
    misdescribes the features at the point (a window too wide for its curvature, a
    solve short of the root) leaves a discrepancy along the parameters, seen here.
    ``None`` without slopes or with fewer than ``2 p`` simulations.
    """
    from scipy import stats

    J, S_inv = solution.slopes, solution.S_inv
    if J is None or S_inv is None or len(simulated) < 2 * J.shape[1]:
        return None
    g = np.asarray(target, dtype=float) - simulated.mean(0)
    M = J @ S_inv @ J.T
    try:
        M_inv = np.linalg.inv(M)
    except np.linalg.LinAlgError:
        return None
    u = J @ S_inv @ g
    scale = solution.mean_noise + 1.0 / len(simulated)
    statistic = float(u @ M_inv @ u / scale)
    step = M_inv @ u
    se = np.sqrt(np.maximum(np.diag(solution.covariance), 1e-300))
    return MomentCheck(statistic, len(u), float(stats.chi2.sf(statistic, len(u))),
                       step / se)


def evidence_threshold(n_features: int) -> float:
    """The signal-to-noise ``lambda`` of slopes that pure noise stays below: three
    standard deviations of ``chi^2_p / p`` above 1, for ``p`` features."""
    return 1.0 + 3.0 * np.sqrt(2.0 / n_features)


def moment_covariance(J: np.ndarray, S_inv: np.ndarray, noise: np.ndarray, n_obs: int,
                      c: float, window: np.ndarray | None = None,
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Covariance (k, k) of the solution, and the coordinates (k,) it does not identify.

    ``J`` (k, p) are the slopes fitted in window units ``u``, ``S_inv`` (p, p) the
    inverse feature covariance, ``noise`` (k, k) what the slopes' estimation noise adds
    to ``J S^-1 J^T`` on average and ``c`` the simulation noise of the fitted mean (see
    the module docstring). In the directions of ``J S^-1 J^T v = lambda noise v``
    (``v^T noise v = 1``) the slopes shrunk by their evidence
    (:func:`~._resolution.shrink_slopes`) carry the information ``lambda - 1``, so the
    variance along ``v`` is ``(1 / n_obs + c) / (lambda - 1)``; a direction without
    evidence (``lambda`` below :func:`evidence_threshold`) gets the variance it would
    have at the threshold, a lower bound. The result is in the coordinates
    ``z = centre + window u`` (``window=None``: ``u`` itself), where a coordinate is not
    identified when its own slopes show no evidence (the others held fixed) or its
    standard error exceeds the window.
    """
    from scipy.linalg import eigh

    W = np.eye(len(J)) if window is None else np.asarray(window, dtype=float)
    A = J @ S_inv @ J.T
    threshold = evidence_threshold(feature_rank(S_inv))
    values, V = eigh(A, noise)
    information = np.maximum(values, threshold) - 1.0
    cov = W @ ((V / information) @ V.T) @ W.T * (1.0 / n_obs + c)
    W_inv = np.linalg.inv(W)  # slopes per unit of z: W^-T J
    own = (np.diag(W_inv.T @ A @ W_inv)
           / np.maximum(np.diag(W_inv.T @ noise @ W_inv), 1e-300))
    unidentified = (own < threshold) | (np.diag(cov) > _MAX_IDENTIFIED_SE**2
                                        * np.diag(W @ W.T))
    return cov, unidentified


def with_resolution_fallback(solution: MomentSolution, linear_model, n_obs: int,
                             ) -> MomentSolution:
    """``solution`` with the covariance of the fit's running regression where that
    identifies parameters the polish's slopes do not.

    ``linear_model`` is ``((Z^T Z)^-1, B, S^-1, rank)`` of
    :class:`~._resolution.ParameterResolution` (``B`` (k, q): slopes per unit of
    ``z``), or ``None``. Its slopes, taken to the polish's window, go through
    :func:`moment_covariance` with the polish's simulation noise ``c``: the point's
    own. The fallback is taken whole, and only when every parameter the polish
    identifies stays identified and at least one more is; otherwise ``solution``
    comes back unchanged.
    """
    if (linear_model is None or solution.window is None
            or not solution.unidentified.any()):
        return solution
    zz_inv, B, S_inv, rank = linear_model
    W = solution.window
    noise = rank * W.T @ zz_inv @ W  # the slopes' noise, in window units
    try:
        cov, unidentified = moment_covariance(W.T @ B, S_inv, noise, n_obs,
                                              solution.mean_noise, W)
    except (np.linalg.LinAlgError, ValueError):
        return solution
    if np.any(unidentified & ~solution.unidentified) or (
            unidentified.sum() == solution.unidentified.sum()):
        return solution
    return replace(solution, covariance=cov, unidentified=unidentified)


def parameter_covariance(solution: MomentSolution, module) -> np.ndarray:
    """Covariance (n_params, n_params) of the fitted parameters, in their own units.

    The delta method through ``module.transform`` at its location (the box bijection of
    a bounded :class:`~sktilt.avo.GaussianProposal`). Unidentified parameters get an
    infinite variance and NaN covariances.
    """
    with torch.no_grad():
        z = module.loc().detach().clone()
    G = to_numpy(torch.autograd.functional.jacobian(module.transform, z))  # (k, k)
    cov = G @ solution.covariance @ G.T
    bad = solution.unidentified
    cov[bad, :] = np.nan
    cov[:, bad] = np.nan
    cov[bad, bad] = np.inf
    return cov
