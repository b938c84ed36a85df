"""Benchmark simulators from the AVO note, with exact maximum-likelihood references.

Each model has a per-theta simulator ``f(theta, random_state) -> (n_features,)`` and a
vectorized one ``f(thetas, random_state) -> (m, n_features)`` (pass
``Simulator(f, vectorized=True)`` to :class:`~sktilt.AVOSimulatorFitter`). They are module-level
functions, so they pickle by reference for process-based joblib backends.

The ``*_mle`` helpers return the maximum-likelihood estimate on observed data and its
standard error, the reference against which the AVO fits are judged.

* **Poisson**: ``x ~ Poisson(exp(theta))``, ``theta = log(lambda)``.
* **Weinberg** (``e+ e- -> mu+ mu-`` forward-backward asymmetry): ``x = cos(A)`` in
  ``[-1, 1]`` with ``p(x | E, G_f) = 3/8 (1 + x^2 + c x)`` and
  ``c = 2 tanh(10 (2E - 90) / 90) G_f``, clipped to ``|c| <= 2`` so the density stays
  non-negative. Only ``c`` is identifiable from one beam energy.
* **Gaussian location**: ``x ~ N(theta, Sigma)`` in 2-D with a fixed correlated
  ``Sigma`` (:data:`GAUSSIAN_COVARIANCE`).
"""

from __future__ import annotations

__all__ = [
    "GAUSSIAN_COVARIANCE",
    "gaussian_location_mle",
    "gaussian_location_simulator",
    "gaussian_location_simulator_batch",
    "poisson_mle",
    "poisson_simulator",
    "poisson_simulator_batch",
    "weinberg_c",
    "weinberg_c_mle",
    "weinberg_log_likelihood",
    "weinberg_simulator",
    "weinberg_simulator_batch",
]

import numpy as np
from scipy.optimize import minimize_scalar

#: Covariance of the 2-D Gaussian location model (unit variances, correlation 0.8).
GAUSSIAN_COVARIANCE = np.array([[1.0, 0.8], [0.8, 1.0]])
_GAUSSIAN_CHOL = np.linalg.cholesky(GAUSSIAN_COVARIANCE)


def _thetas(thetas, k: int, name: str) -> np.ndarray:
    thetas = np.asarray(thetas, dtype=float)
    if thetas.ndim != 2 or thetas.shape[1] != k:
        raise ValueError(f"{name} expects parameters of shape (m, {k}), got {thetas.shape}.")
    return thetas


# ----------------------------------------------------------------------- Poisson
def poisson_simulator_batch(thetas, random_state):
    """``x_m ~ Poisson(exp(theta_m))`` for thetas of shape (m, 1); returns (m, 1)."""
    thetas = _thetas(thetas, 1, "poisson_simulator")
    return random_state.poisson(np.exp(thetas)).astype(float)


def poisson_simulator(theta, random_state):
    """One draw ``x ~ Poisson(exp(theta[0]))``, shape (1,)."""
    return poisson_simulator_batch(np.reshape(theta, (1, -1)), random_state)[0]


def poisson_mle(X):
    """MLE of ``lambda`` (the mean) and its standard error ``sqrt(lambda / n)``."""
    x = np.asarray(X, dtype=float).ravel()
    lam = x.mean()
    return lam, np.sqrt(lam / x.size)


# ---------------------------------------------------------------------- Weinberg
def weinberg_c(E, G_f):
    """Asymmetry coefficient ``c = 2 tanh(10 (2E - 90) / 90) G_f``, clipped to [-2, 2]."""
    E, G_f = np.asarray(E, dtype=float), np.asarray(G_f, dtype=float)
    return np.clip(2.0 * np.tanh(10.0 * (2.0 * E - 90.0) / 90.0) * G_f, -2.0, 2.0)


def weinberg_simulator_batch(thetas, random_state):
    """Exact draws of ``x = cos A`` for thetas ``(E, G_f)`` of shape (m, 2); (m, 1).

    Rejection sampling from the uniform on ``[-1, 1]`` with the bound
    ``max_x (1 + x^2 + c x) = 2 + |c|`` (reached at ``x = sign(c)``); the acceptance
    rate is ``(8/3) / (2 (2 + |c|)) >= 1/3``.
    """
    thetas = _thetas(thetas, 2, "weinberg_simulator")
    c = weinberg_c(thetas[:, 0], thetas[:, 1])
    bound = 2.0 + np.abs(c)
    x = np.empty(len(c))
    todo = np.arange(len(c))
    while todo.size:
        cand = random_state.uniform(-1.0, 1.0, todo.size)
        u = random_state.uniform(0.0, 1.0, todo.size)
        accept = u * bound[todo] <= 1.0 + cand**2 + c[todo] * cand
        x[todo[accept]] = cand[accept]
        todo = todo[~accept]
    return x[:, None]


def weinberg_simulator(theta, random_state):
    """One exact draw of ``x = cos A`` for ``theta = (E, G_f)``, shape (1,)."""
    return weinberg_simulator_batch(np.reshape(theta, (1, -1)), random_state)[0]


def weinberg_log_likelihood(c, X) -> float:
    """Exact log-likelihood ``sum log(3/8 (1 + x^2 + c x))`` of ``c``."""
    x = np.asarray(X, dtype=float).ravel()
    return float(np.sum(np.log(0.375 * (1.0 + x**2 + c * x))))


def weinberg_c_mle(X):
    """MLE of ``c`` (1-D maximisation of the exact, concave likelihood) and its SE.

    The standard error is ``1 / sqrt(observed information)`` with information
    ``sum x^2 / (1 + x^2 + c x)^2``.
    """
    x = np.asarray(X, dtype=float).ravel()
    res = minimize_scalar(lambda c: -weinberg_log_likelihood(c, x), bounds=(-2.0, 2.0),
                          method="bounded", options={"xatol": 1e-10})
    c = float(res.x)
    info = np.sum(x**2 / (1.0 + x**2 + c * x) ** 2)
    return c, float(1.0 / np.sqrt(info))


# ------------------------------------------------------------- Gaussian location
def gaussian_location_simulator_batch(thetas, random_state):
    """``x_m ~ N(theta_m, GAUSSIAN_COVARIANCE)`` for thetas (m, 2); returns (m, 2)."""
    thetas = _thetas(thetas, 2, "gaussian_location_simulator")
    return thetas + random_state.standard_normal(thetas.shape) @ _GAUSSIAN_CHOL.T


def gaussian_location_simulator(theta, random_state):
    """One draw ``x ~ N(theta, GAUSSIAN_COVARIANCE)``, shape (2,)."""
    return gaussian_location_simulator_batch(np.reshape(theta, (1, -1)), random_state)[0]


def gaussian_location_mle(X):
    """MLE of the location (the mean) and its per-coordinate standard errors."""
    X = np.asarray(X, dtype=float)
    return X.mean(0), np.sqrt(np.diag(GAUSSIAN_COVARIANCE) / X.shape[0])
