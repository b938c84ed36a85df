"""External likelihood-free inference benchmarks, with exact likelihood references.

The models follow their published definitions (g-and-k: Prangle 2017, as in ELFI and
sbibm-style studies; SLCP, Gaussian linear, two moons: sbibm, Lueckmann et al. 2021;
a bimodal source-estimation task in the style of Sourcerer, Vetter et al. 2024). The
conventions are those of :mod:`sktilt.datasets.simulators`: each model has a per-theta
simulator ``f(theta, random_state) -> (n_features,)`` and a vectorized one
``f(thetas, random_state) -> (m, n_features)`` (pass ``Simulator(f, vectorized=True)``
to :class:`~sktilt.AVOSimulatorFitter`); ``random_state`` is a :class:`numpy.random.Generator`.
One call returns *one* observation per theta, so an observed data set ``X_obs`` of shape
``(n_obs, n_features)`` is ``n_obs`` iid calls at one true theta. The functions live at
module level, so they pickle by reference for process-based joblib backends.

The ``*_mle`` helpers return ``(estimate, standard_errors)`` on iid data ``X``.

* **g-and-k** (:func:`gk_simulator`): one scalar draw of the g-and-k distribution with
  quantile function ``Q(u) = A + B (1 + c tanh(g z / 2)) (1 + z^2)^k z``,
  ``z = Phi^{-1}(u)``, ``c = 0.8``; ``theta = (A, B, g, k)``. The density has no closed
  form: :func:`gk_log_likelihood` inverts ``Q`` numerically and :func:`gk_mle` maximises
  the exact likelihood.
* **SLCP** (:func:`slcp_simulator`, "simple likelihood, complex posterior",
  Papamakarios et al. 2019): 4 iid points of a 2-D Gaussian whose mean and covariance are
  non-linear in ``theta`` in R^5, flattened to 8 features. Its MLE is closed form.
* **Gaussian linear** (:func:`gaussian_linear_simulator`): ``x ~ N(theta, 0.1 I_10)``.
* **Two moons** (:func:`two_moons_simulator`): a crescent in 2-D shifted by a
  non-injective function of ``theta`` in R^2, so its posterior is bimodal and
  crescent-shaped (no MLE reference).

The source-estimation tasks (a population of parameters) are in
:mod:`sktilt.datasets.sources`.
"""

from __future__ import annotations

__all__ = [
    "GAUSSIAN_LINEAR_DIM",
    "GAUSSIAN_LINEAR_VARIANCE",
    "GK_C",
    "GK_TRUE_THETA",
    "SLCP_SBIBM_THETA",
    "SLCP_TRUE_THETA",
    "gaussian_linear_mle",
    "gaussian_linear_simulator",
    "gaussian_linear_simulator_batch",
    "gk_log_likelihood",
    "gk_mle",
    "gk_quantile",
    "gk_simulator",
    "gk_simulator_batch",
    "slcp_log_likelihood",
    "slcp_mle",
    "slcp_simulator",
    "slcp_simulator_batch",
    "two_moons_simulator",
    "two_moons_simulator_batch",
]

import numpy as np
from scipy import optimize, special


def _frozen(values) -> np.ndarray:
    arr = np.array(values, dtype=float)
    arr.setflags(write=False)
    return arr


def _thetas(thetas, k: int, name: str) -> np.ndarray:
    thetas = np.asarray(thetas, dtype=float)
    if thetas.ndim != 2 or thetas.shape[1] != k:
        raise ValueError(f"{name} expects parameters of shape (m, {k}), got {thetas.shape}.")
    return thetas


def _theta(theta, k: int, name: str) -> np.ndarray:
    theta = np.asarray(theta, dtype=float).ravel()
    if theta.size != k:
        raise ValueError(f"{name} expects {k} parameters, got {theta.size}.")
    return theta


def _is_positive_definite(H) -> bool:
    if not np.all(np.isfinite(H)):
        return False
    try:
        np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        return False
    return True


def _standard_errors(info) -> np.ndarray:
    """Square roots of the diagonal of ``info^{-1}``; NaN where not positive definite."""
    if not _is_positive_definite(info):
        return np.full(len(info), np.nan)
    return np.sqrt(np.diag(np.linalg.inv(info)))


# ======================================================================== g-and-k
#: The g-and-k constant ``c`` (the conventional 0.8).
GK_C = 0.8
#: The standard true parameters ``(A, B, g, k) = (3, 1, 2, 0.5)`` (Allingham et al. 2009,
#: Prangle 2017, ELFI).
GK_TRUE_THETA = _frozen([3.0, 1.0, 2.0, 0.5])

_GK_GRID = np.linspace(-10.0, 10.0, 401)  # z grid bracketing the roots of Q(z) = x
_LOG_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)


def _gk_parts(theta):
    theta = np.asarray(theta, dtype=float)
    if theta.shape[-1] != 4:
        raise ValueError(f"g-and-k expects parameters (A, B, g, k), got shape {theta.shape}.")
    return theta[..., 0], theta[..., 1], theta[..., 2], theta[..., 3]


def _gk_q(z, A, B, g, k):
    """``Q`` as a function of the standard-normal quantile ``z``."""
    return A + B * (1.0 + GK_C * np.tanh(0.5 * g * z)) * np.exp(k * np.log1p(z * z)) * z


def _gk_q_dq(z, A, B, g, k):
    """``Q(z)`` and ``dQ/dz``, sharing the transcendental functions.

    ``dQ/dz = B (1+z^2)^(k-1) [c g/2 sech^2(g z/2) z (1+z^2) + (1 + c t)(1 + (2k+1) z^2)]``
    with ``t = tanh(g z / 2)``.
    """
    t = np.tanh(0.5 * g * z)
    z2 = z * z
    l1 = np.log1p(z2)
    one_ct = 1.0 + GK_C * t
    q = A + B * one_ct * np.exp(k * l1) * z
    dq = B * np.exp((k - 1.0) * l1) * (0.5 * GK_C * g * (1.0 - t * t) * z * (1.0 + z2)
                                       + one_ct * (1.0 + (2.0 * k + 1.0) * z2))
    return q, dq


def gk_quantile(u, theta):
    """Quantile function of the g-and-k distribution.

    Parameters
    ----------
    u : array-like
        Probabilities in ``(0, 1)``.
    theta : array-like of shape (4,) or (..., 4)
        Parameters ``(A, B, g, k)``, broadcast against ``u``.

    Returns
    -------
    ndarray
        ``Q(u) = A + B (1 + c tanh(g z / 2)) (1 + z^2)^k z`` with ``z = Phi^{-1}(u)`` and
        ``c = GK_C = 0.8``.
    """
    A, B, g, k = _gk_parts(theta)
    return _gk_q(special.ndtri(np.asarray(u, dtype=float)), A, B, g, k)


def gk_simulator_batch(thetas, random_state):
    """One g-and-k draw per row of ``thetas`` (m, 4) = ``(A, B, g, k)``; returns (m, 1).

    Inversion sampling: ``x = Q(Phi(z))`` with ``z ~ N(0, 1)``, i.e. ``Q`` applied to a
    standard normal draw. Parameters are not validated (``B <= 0`` or a non-monotone
    ``Q`` still return numbers), so that proposals straying outside the valid region
    do not interrupt a fit.
    """
    thetas = _thetas(thetas, 4, "gk_simulator")
    z = random_state.standard_normal(len(thetas))
    return _gk_q(z, *thetas.T)[:, None]


def gk_simulator(theta, random_state):
    """One g-and-k draw for ``theta = (A, B, g, k)``, shape (1,)."""
    return gk_simulator_batch(np.reshape(theta, (1, -1)), random_state)[0]


def _gk_solve_z(x, A, B, g, k, tol=1e-13, maxiter=100):
    """Solve ``Q(z) = x`` for every ``x`` at once (safeguarded Newton in a bracket).

    ``Q`` is evaluated on a grid of ``z`` in ``[-10, 10]`` and each ``x`` is located in
    it by binary search; brackets of points outside the grid are doubled outwards.
    Newton steps that leave the bracket are replaced by bisection. Returns ``None``
    when ``Q`` is not increasing on the grid (``theta`` outside the valid region), and
    ``+-inf`` where no root was found with ``|z| <= 1e150``; otherwise ``(z, Q'(z))``
    (the derivative from the last Newton step, at most ``tol`` away from ``z``).
    """
    qg = _gk_q(_GK_GRID, A, B, g, k)
    if not np.all(np.diff(qg) > 0):
        return None
    n_grid = _GK_GRID.size
    idx = np.searchsorted(qg, x)  # qg[idx - 1] < x <= qg[idx]
    i_lo, i_hi = np.maximum(idx - 1, 0), np.minimum(idx, n_grid - 1)
    lo, hi, q_lo, q_hi = _GK_GRID[i_lo], _GK_GRID[i_hi], qg[i_lo], qg[i_hi]
    failed = np.zeros(x.size, dtype=int)
    for sign, end in ((-1.0, 0), (1.0, n_grid)):
        todo = np.flatnonzero(idx == end)
        inner = np.full(todo.size, sign * _GK_GRID[-1])
        q_in = np.full(todo.size, qg[0] if sign < 0 else qg[-1])
        outer = 2.0 * inner
        while todo.size:
            q_out = _gk_q(outer, A, B, g, k)
            found = sign * (q_out - x[todo]) >= 0
            ok = found | (np.abs(outer) > 1e150) | ~np.isfinite(q_out)
            d = todo[ok]
            failed[todo[ok & ~found]] = sign
            near, far = (inner[ok], q_in[ok]), (outer[ok], q_out[ok])
            (lo[d], q_lo[d]), (hi[d], q_hi[d]) = (near, far) if sign > 0 else (far, near)
            todo, inner, q_in, outer = todo[~ok], outer[~ok], q_out[~ok], 2.0 * outer[~ok]
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        span = q_hi - q_lo
        good = np.isfinite(span) & (span > 0)
        z = np.where(good, lo + (x - q_lo) / np.where(good, span, 1.0) * (hi - lo),
                     0.5 * (lo + hi))
        z = np.clip(z, lo, hi)
        for _ in range(maxiter):
            q, dq = _gk_q_dq(z, A, B, g, k)
            f = q - x
            lo = np.where(f < 0, z, lo)
            hi = np.where(f > 0, z, hi)
            z_new = z - f / dq
            z_new = np.where((z_new >= lo) & (z_new <= hi), z_new, 0.5 * (lo + hi))
            step = np.abs(z_new - z)
            z = z_new
            if np.all(step <= tol * (1.0 + np.abs(z))):
                break
    z[failed != 0] = failed[failed != 0] * np.inf
    return z, dq


def _gk_loglik_terms(theta, x):
    A, B, g, k = (float(v) for v in _theta(theta, 4, "gk_log_likelihood"))
    if not (B > 0 and k > -0.5 and np.isfinite([A, B, g, k]).all()):
        return None
    solved = _gk_solve_z(x, A, B, g, k)
    if solved is None:
        return None
    z, dq = solved
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        out = -0.5 * z * z - _LOG_SQRT_2PI - np.log(dq)
    out[~np.isfinite(z) | ~(dq > 0)] = -np.inf
    return out


def gk_log_likelihood(theta, X) -> float:
    """Exact log-likelihood of ``theta = (A, B, g, k)`` on iid g-and-k draws ``X``.

    For each ``x`` the equation ``Q(z) = x`` is solved for ``z`` (all ``x`` at once: a
    bracket from ``Q`` on a grid of ``z``, then Newton steps safeguarded by bisection),
    and ``log p(x) = log phi(z) - log Q'(z)`` with the analytic derivative
    ``Q'(z) = B (1+z^2)^(k-1) [c g/2 sech^2(g z/2) z (1+z^2) + (1 + c tanh(g z/2))
    (1 + (2k+1) z^2)]``.

    Parameters
    ----------
    theta : array-like of shape (4,)
        ``(A, B, g, k)``.
    X : array-like of shape (n_obs,) or (n_obs, 1)
        Observations.

    Returns
    -------
    float
        The log-likelihood; ``-inf`` outside the valid region (``B <= 0``,
        ``k <= -0.5``, or ``Q`` not increasing on ``|z| <= 10``).
    """
    terms = _gk_loglik_terms(theta, np.asarray(X, dtype=float).ravel())
    return -np.inf if terms is None else float(np.sum(terms))


def _gk_quantile_start(x):
    """Least-squares fit of ``Q`` to empirical quantiles: a cheap start for the MLE."""
    p = np.linspace(0.01, 0.99, 49)
    q = np.quantile(x, p)
    z = special.ndtri(p)
    iqr = np.subtract(*np.quantile(x, [0.75, 0.25]))
    scale = max(iqr, 1e-12)

    def resid(t):
        return (_gk_q(z, *t) - q) / scale

    t0 = np.array([np.median(x), iqr / 1.349 if iqr > 0 else 1.0, 0.0, 0.1])
    res = optimize.least_squares(resid, t0, bounds=([-np.inf, 1e-12, -np.inf, -0.45],
                                                    [np.inf, np.inf, np.inf, np.inf]))
    return res.x


def _grad_hess(f, x, steps):
    """Value, central-difference gradient and Hessian of a scalar ``f`` at ``x``."""
    d = x.size
    E = np.diag(steps)
    f0 = f(x)
    fp = np.array([f(x + E[i]) for i in range(d)])
    fm = np.array([f(x - E[i]) for i in range(d)])
    grad = (fp - fm) / (2.0 * steps)
    H = np.diag((fp - 2.0 * f0 + fm) / steps**2)
    for i in range(d):
        for j in range(i):
            H[i, j] = H[j, i] = (f(x + E[i] + E[j]) - f(x + E[i] - E[j])
                                 - f(x - E[i] + E[j]) + f(x - E[i] - E[j])) / (
                4.0 * steps[i] * steps[j])
    return f0, grad, H


def gk_mle(X, start=None, max_iter=50):
    """Maximum-likelihood estimate of ``(A, B, g, k)`` and its standard errors.

    The exact log-likelihood (:func:`gk_log_likelihood`) is maximised by Newton's
    method with central-difference gradient and Hessian and a backtracking line
    search, from the best (highest likelihood) of ``start``, a least-squares fit of
    ``Q`` to 49 empirical quantiles, and a normal fit (``g = k = 0``). Where the
    Hessian is not positive definite, a Nelder-Mead search is run first (once). The
    iteration stops when the Newton decrement is below ``1e-8`` (the estimate is then
    within about ``1e-4`` standard errors of the maximum). The standard errors are the
    square roots of the diagonal of the inverse observed information: the
    central-difference Hessian (relative steps ``1e-4``) of the negative
    log-likelihood at the returned estimate.

    Parameters
    ----------
    X : array-like of shape (n_obs,) or (n_obs, 1)
        iid g-and-k draws.
    start : array-like of shape (4,), optional
        An additional starting point, used if its likelihood is the highest.
    max_iter : int, default=50
        Maximum number of Newton iterations.

    Returns
    -------
    estimate : ndarray of shape (4,)
        The MLE of ``(A, B, g, k)``.
    standard_errors : ndarray of shape (4,)
        Their asymptotic standard errors (NaN if the observed information is not
        positive definite at the estimate).
    """
    x = np.asarray(X, dtype=float).ravel()
    n = x.size

    def nll(t):  # mean negative log-likelihood
        terms = _gk_loglik_terms(t, x)
        return np.inf if terms is None else -float(np.sum(terms)) / n

    def steps(t):
        h = 1e-4 * np.maximum(0.1, np.abs(t))
        h[1] = min(h[1], 0.25 * t[1])  # keep B > 0
        h[3] = min(h[3], 0.25 * (t[3] + 0.5))  # keep k > -0.5
        return h

    iqr = np.subtract(*np.quantile(x, [0.75, 0.25]))
    starts = [_gk_quantile_start(x),  # and a normal (g = k = 0), always valid
              np.array([np.median(x), max(iqr, 1e-12) / 1.349, 0.0, 0.0])]
    if start is not None:
        starts.insert(0, _theta(start, 4, "gk_mle"))
    t = min(starts, key=nll).copy()
    tried_simplex = False
    at = None  # where the Hessian H was computed
    for _ in range(max_iter):
        f0, grad, H = _grad_hess(nll, t, steps(t))
        at = t
        if not _is_positive_definite(H):
            if tried_simplex:
                break
            tried_simplex = True
            res = optimize.minimize(nll, t, method="Nelder-Mead",
                                    options={"xatol": 1e-6, "fatol": 1e-12, "maxiter": 4000})
            t = res.x if res.fun < f0 else t
            continue
        step = np.linalg.solve(H, grad)
        if n * float(grad @ step) < 1e-8:
            break
        alpha = 1.0
        while alpha > 1e-10 and not nll(t - alpha * step) < f0:
            alpha *= 0.5
        if alpha <= 1e-10:
            break
        t = t - alpha * step
    if at is not t:
        H = _grad_hess(nll, t, steps(t))[2]
    return t, _standard_errors(n * H)


# =========================================================================== SLCP
#: True parameters of the SLCP example in Papamakarios et al. (2019, "Sequential neural
#: likelihood", appendix A.1), also the usual choice in sbi tutorials. These are *not*
#: sbibm's reference parameters, which were drawn from the prior ``U(-3, 3)^5`` per
#: observation (see :data:`SLCP_SBIBM_THETA`).
SLCP_TRUE_THETA = _frozen([0.7, -2.9, -1.0, -0.9, 0.6])
#: The true parameters of sbibm's SLCP observation 1 (``num_observation=1``,
#: ``files/num_observation_1/true_parameters.csv``); note ``rho = tanh(2.97) = 0.995``.
SLCP_SBIBM_THETA = _frozen([-2.8581212, -0.44451332, 2.9473476, 1.2396116, 2.9712725])
_SLCP_POINTS = 4


def _slcp_moments(thetas):
    """Means (m, 2), standard deviations (m, 2) and correlations (m,) of SLCP."""
    return thetas[:, :2], thetas[:, 2:4] ** 2, np.tanh(thetas[:, 4])


def slcp_simulator_batch(thetas, random_state):
    """SLCP draws for thetas (m, 5); returns (m, 8), four 2-D points ``(x1, y1, ..., y4)``.

    Each of the four points is iid ``N(mu, Sigma)`` with ``mu = (t0, t1)``,
    ``s1 = t2^2``, ``s2 = t3^2``, ``rho = tanh(t4)`` and
    ``Sigma = [[s1^2, rho s1 s2], [rho s1 s2, s2^2]]``. Unlike sbibm, no ``1e-6`` jitter
    is added to the diagonal of ``Sigma`` (sampled as ``x = mu + L eps``, which stays
    defined when ``Sigma`` is singular).
    """
    thetas = _thetas(thetas, 5, "slcp_simulator")
    mu, sd, rho = _slcp_moments(thetas)
    eps = random_state.standard_normal((len(thetas), _SLCP_POINTS, 2))
    x = mu[:, None, 0] + sd[:, None, 0] * eps[..., 0]
    y = mu[:, None, 1] + sd[:, None, 1] * (rho[:, None] * eps[..., 0]
                                           + np.sqrt(1.0 - rho[:, None] ** 2) * eps[..., 1])
    return np.stack([x, y], axis=-1).reshape(len(thetas), 2 * _SLCP_POINTS)


def slcp_simulator(theta, random_state):
    """One SLCP observation (four 2-D points, flattened) for ``theta``, shape (8,)."""
    return slcp_simulator_batch(np.reshape(theta, (1, -1)), random_state)[0]


def slcp_log_likelihood(theta, X) -> float:
    """Exact log-likelihood of ``theta`` (5,) on SLCP observations ``X`` (n_obs, 8).

    The ``4 n_obs`` points are iid bivariate normal (see :func:`slcp_simulator_batch`).
    Returns ``-inf`` where ``Sigma`` is singular (``t2 = 0``, ``t3 = 0``).
    """
    theta = _theta(theta, 5, "slcp_log_likelihood")
    P = np.asarray(X, dtype=float).reshape(-1, 2)
    (m1, m2), (s1, s2), rho = theta[:2], theta[2:4] ** 2, np.tanh(theta[4])
    if not (s1 > 0 and s2 > 0 and abs(rho) < 1):
        return -np.inf
    u, v = (P[:, 0] - m1) / s1, (P[:, 1] - m2) / s2
    one_m_r2 = 1.0 - rho**2
    quad = (u * u - 2.0 * rho * u * v + v * v) / one_m_r2
    return float(-0.5 * np.sum(quad)
                 - len(P) * (np.log(2.0 * np.pi * s1 * s2) + 0.5 * np.log(one_m_r2)))


def _slcp_fisher(theta):
    """Fisher information of one 2-D point in the ``theta`` parametrisation (5, 5)."""
    t2, t3, r = theta[2], theta[3], np.tanh(theta[4])
    S = np.array([[t2**4, r * t2**2 * t3**2], [r * t2**2 * t3**2, t3**4]])
    Si = np.linalg.inv(S)
    dS = [np.array([[4 * t2**3, 2 * r * t2 * t3**2], [2 * r * t2 * t3**2, 0.0]]),
          np.array([[0.0, 2 * r * t2**2 * t3], [2 * r * t2**2 * t3, 4 * t3**3]]),
          np.array([[0.0, 1.0], [1.0, 0.0]]) * (1.0 - r**2) * t2**2 * t3**2]
    info = np.zeros((5, 5))
    info[:2, :2] = Si
    for i in range(3):
        for j in range(3):
            info[2 + i, 2 + j] = 0.5 * np.trace(Si @ dS[i] @ Si @ dS[j])
    return info


def slcp_mle(X):
    """Closed-form MLE of the SLCP parameters and its standard errors.

    With ``mean`` and ``C`` the sample mean and (maximum-likelihood, divisor ``N``)
    covariance of the ``N = 4 n_obs`` pooled points, the MLE is
    ``t0, t1 = mean``, ``t2 = C_11^(1/4)``, ``t3 = C_22^(1/4)`` and
    ``t4 = arctanh(C_12 / sqrt(C_11 C_22))`` (invariance of the MLE: the map from
    ``(mu, sd1, sd2, rho)`` to ``theta`` with ``t2, t3 > 0`` is one-to-one).

    The likelihood is invariant under ``t2 -> -t2`` and ``t3 -> -t3`` (only
    ``t2^2``, ``t3^2`` enter), so there are four equivalent maxima; the one with
    ``t2, t3 >= 0`` is returned, and ``|t2|``, ``|t3|`` are the identifiable
    quantities (compare ``np.abs(theta[2:4])`` with the truth). This symmetry is why
    SLCP's posterior has four modes.

    Parameters
    ----------
    X : array-like of shape (n_obs, 8)
        SLCP observations.

    Returns
    -------
    estimate : ndarray of shape (5,)
        The MLE, with ``t2, t3 >= 0``.
    standard_errors : ndarray of shape (5,)
        From the inverse Fisher information ``N I(theta_hat)`` (here equal to the
        observed information at the MLE, a full-rank reparametrisation of the
        bivariate-normal exponential family).
    """
    P = np.asarray(X, dtype=float).reshape(-1, 2)
    mean = P.mean(0)
    C = np.cov(P.T, bias=True)
    rho = C[0, 1] / np.sqrt(C[0, 0] * C[1, 1])
    theta = np.array([mean[0], mean[1], C[0, 0] ** 0.25, C[1, 1] ** 0.25, np.arctanh(rho)])
    return theta, _standard_errors(len(P) * _slcp_fisher(theta))


# ================================================================ Gaussian linear
#: Dimension of the Gaussian linear task (sbibm ``gaussian_linear``).
GAUSSIAN_LINEAR_DIM = 10
#: Noise variance of the Gaussian linear task, ``x ~ N(theta, 0.1 I)``.
GAUSSIAN_LINEAR_VARIANCE = 0.1


def gaussian_linear_simulator_batch(thetas, random_state):
    """``x_m ~ N(theta_m, 0.1 I_10)`` for thetas (m, 10); returns (m, 10)."""
    thetas = _thetas(thetas, GAUSSIAN_LINEAR_DIM, "gaussian_linear_simulator")
    return thetas + np.sqrt(GAUSSIAN_LINEAR_VARIANCE) * random_state.standard_normal(
        thetas.shape)


def gaussian_linear_simulator(theta, random_state):
    """One draw ``x ~ N(theta, 0.1 I_10)``, shape (10,)."""
    return gaussian_linear_simulator_batch(np.reshape(theta, (1, -1)), random_state)[0]


def gaussian_linear_mle(X):
    """MLE of ``theta`` (the sample mean, (10,)) and its standard errors ``sqrt(0.1/n)``."""
    X = np.asarray(X, dtype=float).reshape(-1, GAUSSIAN_LINEAR_DIM)
    return X.mean(0), np.full(GAUSSIAN_LINEAR_DIM,
                              np.sqrt(GAUSSIAN_LINEAR_VARIANCE / X.shape[0]))


# ====================================================================== two moons
def two_moons_simulator_batch(thetas, random_state):
    """Two-moons draws for thetas (m, 2); returns (m, 2).

    ``a ~ U(-pi/2, pi/2)``, ``r ~ N(0.1, 0.01^2)``, ``p = (r cos a + 0.25, r sin a)`` and
    ``x = p + (-|t0 + t1| / sqrt(2), (-t0 + t1) / sqrt(2))`` (sbibm ``two_moons``).

    The shift depends on ``theta`` only through ``|t0 + t1|`` and ``t1 - t0``, so
    ``theta`` and ``(-t1, -t0)`` give the same distribution: for one observation the
    posterior has two crescent-shaped modes, and the model has no unique MLE.
    """
    thetas = _thetas(thetas, 2, "two_moons_simulator")
    m = len(thetas)
    a = random_state.uniform(-0.5 * np.pi, 0.5 * np.pi, m)
    r = 0.1 + 0.01 * random_state.standard_normal(m)
    p = np.stack([r * np.cos(a) + 0.25, r * np.sin(a)], axis=1)
    t0, t1 = thetas[:, 0], thetas[:, 1]
    return p + np.stack([-np.abs(t0 + t1), t1 - t0], axis=1) / np.sqrt(2.0)


def two_moons_simulator(theta, random_state):
    """One two-moons draw for ``theta`` (2,), shape (2,)."""
    return two_moons_simulator_batch(np.reshape(theta, (1, -1)), random_state)[0]
