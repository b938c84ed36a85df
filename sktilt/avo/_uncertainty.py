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
information. A direction whose standard error exceeds the window the model was fitted in
is not identified there: the parameters that load on it get an infinite variance.
"""

from __future__ import annotations

__all__ = ["MomentSolution", "moment_covariance", "parameter_covariance"]

from dataclasses import dataclass

import numpy as np
import torch

from .._utils import to_numpy

# A direction counts as identified while its standard error stays inside the window the
# local model was fitted in (in window standard deviations, as ``_polish._MAX_RADIUS``).
_MAX_IDENTIFIED_SE = 2.5
# A parameter loads on an unidentified direction when that direction carries at least
# this fraction of its (unit-normalised) coefficients.
_LOADING = 0.1


@dataclass
class MomentSolution:
    """Where the moment solve put the location, and how precisely.

    ``shift`` moves the location (units of the unconstrained ``z``); ``directions``
    (k, k) holds the eigen-directions of the precision in ``z`` units (columns) and
    ``variances`` (k,) their variances (``inf`` where not identified);
    ``simulation_factor`` is ``1 + n_obs c(v)``.
    """

    shift: np.ndarray
    directions: np.ndarray
    variances: np.ndarray
    simulation_factor: float
    at_edge: bool = False  # the solve stopped at the window's edge: the answer lies beyond


def moment_covariance(J: np.ndarray, S_inv: np.ndarray, n_obs: int, c: float,
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Eigen-directions (k, k) and variances (k,) of the solution in window units.

    ``J`` (k, p) are the slopes, ``S_inv`` (p, p) the inverse feature covariance and
    ``c`` the simulation noise of the fitted mean (see the module docstring).
    """
    A = J @ S_inv @ J.T
    values, E = np.linalg.eigh((A + A.T) / 2)
    information = values / (1.0 / n_obs + c)
    with np.errstate(divide="ignore"):
        variances = np.where(information > 0, 1.0 / np.maximum(information, 1e-300), np.inf)
    variances[variances > _MAX_IDENTIFIED_SE**2] = np.inf
    return E, variances


def parameter_covariance(solution: MomentSolution, module) -> np.ndarray:
    """Covariance (n_params, n_params) of the fitted parameters, in their own units.

    The delta method through ``module.transform`` at its location (the box bijection of
    a bounded :class:`~sktilt.avo.GaussianProposal`). Parameters that load on an
    unidentified direction get an infinite variance and NaN covariances.
    """
    with torch.no_grad():
        z = module.loc().detach().clone()
    G = to_numpy(torch.autograd.functional.jacobian(module.transform, z))  # (k, k)
    B = G @ solution.directions  # columns: the directions in parameter units
    finite = np.isfinite(solution.variances)
    cov = (B[:, finite] * solution.variances[finite]) @ B[:, finite].T
    norms = np.linalg.norm(B, axis=1, keepdims=True)
    loading = np.abs(B) / np.where(norms > 0, norms, 1.0)
    unidentified = np.any(loading[:, ~finite] >= _LOADING, axis=1)
    cov[unidentified, :] = np.nan
    cov[:, unidentified] = np.nan
    cov[unidentified, unidentified] = np.inf
    return cov
