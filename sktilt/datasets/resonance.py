"""A narrow-peak ("resonance") benchmark: a Breit-Wigner peak on a falling background.

One observation ``x`` lies in the window ``[0, 1]`` and is drawn from a two-component
mixture with parameters ``theta = (position, width, fraction, slope)``:

* with probability ``fraction``, from a Cauchy (Breit-Wigner) peak at ``position`` with
  half-width at half-maximum ``width``, truncated to ``[0, 1]``:
  ``s(x) = w / ((x - p)^2 + w^2) / A`` with
  ``A = arctan((1 - p) / w) + arctan(p / w)``;
* otherwise, from an exponential background ``b(x) = k exp(-slope x)`` truncated to
  ``[0, 1]``, with ``k = slope / (1 - exp(-slope))`` (``k = 1``, a flat background, at
  ``slope = 0``).

So ``p(x | theta) = fraction s(x) + (1 - fraction) b(x)`` on ``[0, 1]``. Valid parameters:
``0 < position < 1``, ``width > 0``, ``0 <= fraction <= 1`` and any finite real
``slope`` (``slope > 0``: falling, ``0``: flat, ``< 0``: rising background). Allowing
negative slopes keeps a flat background in the interior of the parameter space, so its
maximum-likelihood estimate is regular. The likelihood is exact and closed form; the
peak is what makes the model hard for likelihood-free fits: with a half-width of a few
percent of the window, a small fraction of the observations carries the information on
``position`` and ``width``.

The conventions are those of :mod:`sktilt.datasets.simulators`: a vectorized simulator
``resonance_simulator_batch(thetas, random_state) -> (m, 1)`` (pass ``vectorized=True`` to
:class:`~sktilt.AVOSimulatorFitter`) and a per-theta one
``resonance_simulator(theta, random_state) -> (1,)``; ``random_state`` is a
:class:`numpy.random.Generator`, and one call returns *one* observation per theta.
Sampling is exact, by inversion of the truncated Cauchy (through ``arctan``) and of the
truncated exponential CDFs. :func:`resonance_mle` returns the maximum-likelihood
estimate and its standard errors, the reference for AVO fits;
:data:`RESONANCE_CASES` lists benchmark configurations and :func:`resonance_case`
simulates one of them.
"""

from __future__ import annotations

__all__ = [
    "RESONANCE_CASES",
    "RESONANCE_PARAMETERS",
    "resonance_case",
    "resonance_cdf",
    "resonance_log_likelihood",
    "resonance_mle",
    "resonance_simulator",
    "resonance_simulator_batch",
]

import numpy as np
from numpy.typing import ArrayLike
from scipy import optimize, special

#: Names of the four parameters, in the order of ``theta``.
RESONANCE_PARAMETERS = ("position", "width", "fraction", "slope")


def _frozen(values) -> np.ndarray:
    arr = np.array(values, dtype=float)
    arr.setflags(write=False)
    return arr


def _case(position, width, fraction, slope, n_obs=5000):
    return {"theta": _frozen([position, width, fraction, slope]), "n_obs": int(n_obs)}


#: Benchmark configurations: name -> ``{"theta": (position, width, fraction, slope),
#: "n_obs": int}`` (the ``theta`` arrays are read-only). Half-widths 0.01, 0.03 and
#: 0.06 of the window, peak fractions 0.05, 0.2 and 0.4, flat (``slope = 0``), falling
#: (2) and steeply falling (5) backgrounds, peaks at 0.3-0.7; 5000 observations each.
#: ``"issue"`` is the reference case: half-width 0.03, fraction 0.2, falling background.
#: A peak both weak (fraction 0.05) and wide (half-width 0.06) is left out: at 5000
#: observations its width and fraction are poorly identified and their MLE is far from
#: normal, so its standard errors are no reliable reference.
RESONANCE_CASES = {
    "issue": _case(0.45, 0.03, 0.2, 2.0),
    "narrow_weak_flat": _case(0.5, 0.01, 0.05, 0.0),
    "narrow_medium_falling": _case(0.65, 0.01, 0.2, 2.0),
    "narrow_strong_steep": _case(0.35, 0.01, 0.4, 5.0),
    "medium_weak_steep": _case(0.6, 0.03, 0.05, 5.0),
    "medium_strong_flat": _case(0.3, 0.03, 0.4, 0.0),
    "wide_medium_steep": _case(0.4, 0.06, 0.2, 5.0),
    "wide_strong_flat": _case(0.55, 0.06, 0.4, 0.0),
}


# ------------------------------------------------------------------ validation
def _check_thetas(thetas, name: str) -> np.ndarray:
    """``thetas`` as a float array of shape (m, 4); ValueError naming a bad parameter."""
    thetas = np.asarray(thetas, dtype=float)
    if thetas.ndim != 2 or thetas.shape[1] != 4:
        raise ValueError(f"{name} expects parameters (position, width, fraction, slope) of "
                         f"shape (m, 4), got {thetas.shape}.")
    p, w, f, s = thetas.T
    for j, (bad, rule) in enumerate((
            (~((p > 0) & (p < 1)), "must lie in (0, 1)"),
            (~((w > 0) & np.isfinite(w)), "must be positive and finite"),
            (~((f >= 0) & (f <= 1)), "must lie in [0, 1]"),
            (~np.isfinite(s), "must be finite"))):
        if np.any(bad):
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{name}: {RESONANCE_PARAMETERS[j]} {rule}, got "
                             f"{thetas[i, j]:g} in row {i}.")
    return thetas


def _check_x(X, name: str) -> np.ndarray:
    x = np.asarray(X, dtype=float)
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"{name} expects observations X of shape (n_obs,) or (n_obs, 1), "
                         f"got {np.shape(X)}.")
    if not np.all((x >= 0) & (x <= 1)):
        raise ValueError(f"{name}: observations X must lie in the window [0, 1].")
    return x


# ------------------------------------------------------------ the two components
def _bw_norm(p, w):
    """``A = arctan((1 - p) / w) + arctan(p / w)``, the peak's mass inside [0, 1] times pi."""
    return np.arctan((1.0 - p) / w) + np.arctan(p / w)


def _log_bg_norm(t):
    """``log(t / (1 - exp(-t)))`` for ``t >= 0`` (0 at ``t = 0``), stable for tiny ``t``."""
    t = np.asarray(t, dtype=float)
    safe = np.where(t > 0, t, 1.0)
    return np.where(t > 0, np.log(safe) - np.log(-np.expm1(-safe)), 0.0)


def _bg_mean(s):
    """Mean of the truncated exponential: ``1/s - 1/(exp(s) - 1)`` (``1/2`` at ``s = 0``)."""
    s = np.asarray(s, dtype=float)
    small = np.abs(s) < 1e-3
    safe = np.where(small, 1.0, s)
    with np.errstate(over="ignore"):
        exact = 1.0 / safe - 1.0 / np.expm1(safe)
    return np.where(small, 0.5 - s / 12.0 + s**3 / 720.0, exact)


def _log_components(x, p, w, s):
    """Log-densities of the truncated peak and of the truncated background at ``x``."""
    log_peak = np.log(w) - 2.0 * np.log(np.hypot(x - p, w)) - np.log(_bw_norm(p, w))
    t = np.abs(s)
    y = np.where(s >= 0, x, 1.0 - x)  # a rising background is a falling one, mirrored
    log_bg = _log_bg_norm(t) - t * y
    return log_peak, log_bg


def _log_density(x, p, w, f, s):
    log_peak, log_bg = _log_components(x, p, w, s)
    with np.errstate(divide="ignore"):
        return np.logaddexp(np.log(f) + log_peak, np.log1p(-f) + log_bg)


def resonance_cdf(x: ArrayLike, theta: ArrayLike) -> np.ndarray:
    """Exact CDF of the resonance model on the window ``[0, 1]``.

    Parameters
    ----------
    x : array-like
        Points; values below 0 give 0 and above 1 give 1.
    theta : array-like of shape (4,)
        ``(position, width, fraction, slope)``.

    Returns
    -------
    ndarray
        ``fraction F_peak(x) + (1 - fraction) F_bg(x)`` with
        ``F_peak(x) = (arctan((x - p) / w) + arctan(p / w)) / A`` and
        ``F_bg(x) = (1 - exp(-slope x)) / (1 - exp(-slope))`` (``x`` at ``slope = 0``).
    """
    p, w, f, s = _check_thetas(np.reshape(theta, (1, -1)), "resonance_cdf")[0]
    x = np.clip(np.asarray(x, dtype=float), 0.0, 1.0)
    peak = (np.arctan((x - p) / w) + np.arctan(p / w)) / _bw_norm(p, w)
    t = abs(s)
    y = x if s >= 0 else 1.0 - x
    bg_y = y if t == 0 else np.expm1(-t * y) / np.expm1(-t)
    bg = bg_y if s >= 0 else 1.0 - bg_y
    return f * peak + (1.0 - f) * bg


# ------------------------------------------------------------------- simulators
def resonance_simulator_batch(thetas: ArrayLike,
                              random_state: np.random.Generator) -> np.ndarray:
    """One exact draw per row of ``thetas`` (m, 4) = ``(position, width, fraction, slope)``.

    The component is chosen with probability ``fraction`` for the peak; the peak is drawn
    by inverting its truncated CDF, ``x = p + w tan(a0 + u (a1 - a0))`` with
    ``a0 = -arctan(p / w)``, ``a1 = arctan((1 - p) / w)``, and the background by inverting
    the truncated exponential, ``x = -log(1 + u (exp(-t) - 1)) / t`` (``u`` at ``t = 0``)
    with ``t = |slope|``, mirrored to ``1 - x`` for a negative slope.

    Parameters
    ----------
    thetas : array-like of shape (m, 4)
        Parameters, one row per draw; ``0 < position < 1``, ``width > 0``,
        ``0 <= fraction <= 1``, ``slope`` finite.
    random_state : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    ndarray of shape (m, 1)
        Draws in ``[0, 1]``.

    Raises
    ------
    ValueError
        If ``thetas`` does not have shape (m, 4) or a row is outside the valid region
        (the message names the parameter).
    """
    thetas = _check_thetas(thetas, "resonance_simulator")
    p, w, f, s = thetas.T
    m = len(thetas)
    is_peak = random_state.random(m) < f
    u = random_state.random(m)
    a0, a1 = -np.arctan(p / w), np.arctan((1.0 - p) / w)
    peak = p + w * np.tan(a0 + u * (a1 - a0))
    t = np.abs(s)
    safe = np.where(t > 0, t, 1.0)
    y = np.where(t > 0, -np.log1p(u * np.expm1(-safe)) / safe, u)
    bg = np.where(s >= 0, y, 1.0 - y)
    return np.clip(np.where(is_peak, peak, bg), 0.0, 1.0)[:, None]


def resonance_simulator(theta: ArrayLike, random_state: np.random.Generator) -> np.ndarray:
    """One exact draw for ``theta = (position, width, fraction, slope)``, shape (1,).

    See :func:`resonance_simulator_batch`.
    """
    theta = np.asarray(theta, dtype=float)
    if theta.ndim != 1 or theta.size != 4:
        raise ValueError(f"resonance_simulator expects theta = (position, width, fraction, "
                         f"slope) of shape (4,), got {theta.shape}.")
    return resonance_simulator_batch(theta[None, :], random_state)[0]


# ------------------------------------------------------------------- likelihood
def _theta(theta, name: str) -> np.ndarray:
    theta = np.asarray(theta, dtype=float)
    if theta.ndim != 1 or theta.size != 4:
        raise ValueError(f"{name} expects theta = (position, width, fraction, slope) of "
                         f"shape (4,), got {theta.shape}.")
    return theta


def resonance_log_likelihood(theta: ArrayLike, X: ArrayLike) -> float:
    """Exact log-likelihood of ``theta`` on iid observations ``X``.

    Parameters
    ----------
    theta : array-like of shape (4,)
        ``(position, width, fraction, slope)``.
    X : array-like of shape (n_obs,) or (n_obs, 1)
        Observations in ``[0, 1]``.

    Returns
    -------
    float
        ``sum_i log(fraction s(x_i) + (1 - fraction) b(x_i))`` (see the module
        docstring); ``-inf`` if ``theta`` is outside the valid region.

    Raises
    ------
    ValueError
        If ``theta`` does not have 4 entries, or ``X`` has the wrong shape or values
        outside ``[0, 1]``.
    """
    p, w, f, s = _theta(theta, "resonance_log_likelihood")
    x = _check_x(X, "resonance_log_likelihood")
    if not (0 < p < 1 and 0 < w < np.inf and 0 <= f <= 1 and np.isfinite(s)):
        return -np.inf
    return float(np.sum(_log_density(x, p, w, f, s)))


def _nll_grad(theta, x):
    """Negative log-likelihood and its analytic gradient in theta units."""
    p, w, f, s = theta
    d2 = (x - p) ** 2 + w * w
    log_peak, log_bg = _log_components(x, p, w, s)
    peak, bg = np.exp(log_peak), np.exp(log_bg)
    mix = f * peak + (1.0 - f) * bg
    r_peak = f * peak / mix  # posterior probability of the peak
    A = _bw_norm(p, w)
    dA_dp = w / (p * p + w * w) - w / ((1.0 - p) ** 2 + w * w)
    dA_dw = -p / (p * p + w * w) - (1.0 - p) / ((1.0 - p) ** 2 + w * w)
    dlp_dp = 2.0 * (x - p) / d2 - dA_dp / A
    dlp_dw = 1.0 / w - 2.0 * w / d2 - dA_dw / A
    dlb_ds = _bg_mean(s) - x
    grad = np.array([np.sum(r_peak * dlp_dp), np.sum(r_peak * dlp_dw),
                     np.sum((peak - bg) / mix), np.sum((1.0 - r_peak) * dlb_ds)])
    return -float(np.sum(np.log(mix))), -grad


def _to_theta(z):
    return np.array([special.expit(z[0]), np.exp(z[1]), special.expit(z[2]), z[3]])


def _to_z(theta):
    p, w, f, s = theta
    return np.array([special.logit(p), np.log(w), special.logit(f), s])


def _nll_grad_z(z, x):
    """Negative log-likelihood and gradient in the unconstrained coordinates
    ``z = (logit position, log width, logit fraction, slope)``."""
    theta = _to_theta(z)
    if not (0 < theta[0] < 1 and 0 < theta[1] < np.inf and 0 < theta[2] < 1):
        return np.inf, np.zeros(4)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        val, g = _nll_grad(theta, x)
    p, w, f, _ = theta
    g = g * np.array([p * (1.0 - p), w, f * (1.0 - f), 1.0])
    if not (np.isfinite(val) and np.all(np.isfinite(g))):
        return np.inf, np.zeros(4)
    return val, g


def _background_slope(x):
    """MLE of the slope of a pure truncated-exponential background (matches the mean)."""
    mean = float(np.mean(x))
    if not 1e-6 < mean < 1 - 1e-6:
        return 0.0
    return float(optimize.brentq(lambda s: _bg_mean(s) - mean, -1e4, 1e4, xtol=1e-12))


_GRID_POSITIONS = np.linspace(0.01, 0.99, 99)
_GRID_WIDTHS = np.geomspace(0.002, 0.2, 9)
_GRID_FRACTIONS = np.array([0.05, 0.15, 0.4])
_GRID_POINTS = 1000


def _grid_starts(x, n_starts):
    """Best grid points (position x width x fraction, slope fixed) at distinct positions.

    The grid likelihood uses at most ``_GRID_POINTS`` evenly spaced order statistics of
    ``x``: it only has to rank the candidate peaks.
    """
    s0 = _background_slope(x)
    xs = np.sort(x)[np.linspace(0, x.size - 1, min(x.size, _GRID_POINTS)).astype(int)]
    P, W = np.meshgrid(_GRID_POSITIONS, _GRID_WIDTHS, indexing="ij")
    P, W = P.ravel(), W.ravel()
    log_peak, log_bg = _log_components(xs[None, :], P[:, None], W[:, None], s0)
    ll = np.stack([np.sum(np.logaddexp(np.log(f) + log_peak, np.log1p(-f) + log_bg), axis=1)
                   for f in _GRID_FRACTIONS], axis=1)
    starts = []
    for k in np.argsort(-ll, axis=None):
        i, j = divmod(int(k), _GRID_FRACTIONS.size)
        if all(abs(P[i] - q[0]) > 2 * max(W[i], q[1]) for q in starts):
            starts.append(np.array([P[i], W[i], _GRID_FRACTIONS[j], s0]))
            if len(starts) == n_starts:
                break
    return starts


def _hessian(theta, x):
    """Central differences of the analytic gradient (theta units), symmetrised."""
    p, w, f, s = theta
    h = 1e-5 * np.array([min(p, 1.0 - p, 1.0), w, min(f, 1.0 - f, 1.0), 1.0 + abs(s)])
    H = np.empty((4, 4))
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        for i in range(4):
            e = np.zeros(4)
            e[i] = h[i]
            H[i] = (_nll_grad(theta + e, x)[1] - _nll_grad(theta - e, x)[1]) / (2.0 * h[i])
    return 0.5 * (H + H.T)


def resonance_mle(X: ArrayLike,
                  start: ArrayLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-likelihood estimate of ``(position, width, fraction, slope)`` and its SEs.

    The exact likelihood is maximised by BFGS with its analytic gradient in the
    unconstrained coordinates ``(logit position, log width, logit fraction, slope)``,
    from several starting points: the best points of a grid of 99 positions x 9
    half-widths (0.002 to 0.2) x 3 fractions, at most one per peak (positions more
    than two half-widths apart), with the slope of a pure-background fit; and ``start``
    if given. The highest maximum is returned. The standard errors are the square roots
    of the diagonal of the inverse observed information, the Hessian of the negative
    log-likelihood at the estimate in theta units (central differences of the analytic
    gradient).

    Parameters
    ----------
    X : array-like of shape (n_obs,) or (n_obs, 1)
        iid observations in ``[0, 1]``.
    start : array-like of shape (4,), optional
        An additional starting point, strictly inside the parameter space
        (``0 < fraction < 1``).

    Returns
    -------
    estimate : ndarray of shape (4,)
        The MLE of ``(position, width, fraction, slope)``.
    standard_errors : ndarray of shape (4,)
        Their asymptotic standard errors (NaN if the observed information is not
        positive definite at the estimate, e.g. when no peak is resolved).

    Raises
    ------
    ValueError
        If ``X`` has the wrong shape or values outside ``[0, 1]``, or ``start`` is
        invalid.
    """
    x = _check_x(X, "resonance_mle")
    starts = _grid_starts(x, n_starts=6)
    if start is not None:
        start = _check_thetas(np.reshape(_theta(start, "resonance_mle"), (1, 4)),
                              "resonance_mle")[0]
        if not 0 < start[2] < 1:
            raise ValueError(f"resonance_mle: start fraction must lie in (0, 1), got "
                             f"{start[2]!r}.")
        starts.insert(0, start)
    best = None
    for t0 in starts:
        res = optimize.minimize(_nll_grad_z, _to_z(t0), args=(x,), jac=True,
                                method="BFGS", options={"maxiter": 2000, "gtol": 1e-6})
        if best is None or res.fun < best.fun:
            best = res
    theta = _to_theta(best.x)
    H = _hessian(theta, x)
    # NaN standard errors where the observed information is not positive definite
    if not (np.all(np.isfinite(H)) and np.linalg.eigvalsh((H + H.T) / 2).min() > 0):
        return theta, np.full(4, np.nan)
    return theta, np.sqrt(np.diag(np.linalg.inv(H)))


def resonance_case(name: str,
                   random_state: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Simulate an observed data set of one of :data:`RESONANCE_CASES`.

    Parameters
    ----------
    name : str
        A key of :data:`RESONANCE_CASES`.
    random_state : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    X : ndarray of shape (n_obs, 1)
        ``n_obs`` iid draws at the case's true parameters.
    theta_true : ndarray of shape (4,)
        The true ``(position, width, fraction, slope)`` (a copy).
    """
    if name not in RESONANCE_CASES:
        raise ValueError(f"Unknown resonance case {name!r}; choose from "
                         f"{sorted(RESONANCE_CASES)}.")
    case = RESONANCE_CASES[name]
    theta = np.array(case["theta"])
    return resonance_simulator_batch(np.tile(theta, (case["n_obs"], 1)), random_state), theta
