"""Source-estimation tasks: a population of parameters, one observation each.

Unlike the point-estimate benchmarks of :mod:`sktilt.datasets.benchmarks`, there is no
single true ``theta``: each observation ``x_i`` comes from its own ``theta_i`` drawn from
a population (the *source*), and the task is to recover that population from ``X``
alone (source or empirical-Bayes estimation; Sourcerer, Vetter et al. 2024, whose
benchmark includes two moons).

* **Bimodal source** (:func:`bimodal_source_sample`): a known two-component Gaussian
  mixture pushed through a noisy, monotone simulator; the source is identified, so its
  modes and their masses can be checked.
* **Two-moons source** (:func:`two_moons_source_sample`): sbibm's uniform prior box
  ``U(-1, 1)^2`` pushed through :func:`~sktilt.datasets.two_moons_simulator_batch`. The
  simulator sees ``theta`` only through ``(t1 - t0, |t0 + t1|)``, so many sources give
  the same data (the box's mirror image ``(t0, t1) -> (-t1, -t0)`` among them); only the
  law of those two combinations is identified, and it is what a fit can be checked
  on. The box's entropy is :data:`TWO_MOONS_SOURCE_ENTROPY` ``= log 4``; the
  simulator's crescent noise (radius 0.1) blurs its edges, so sources a little smoother
  at the edges, of somewhat larger entropy, fit finite data as well.
* **SLCP source** (:func:`slcp_source_sample`): sbibm's SLCP prior box ``U(-3, 3)^5``
  through :func:`~sktilt.datasets.slcp_simulator_batch` (8 features per observation).
  Identified: the laws of ``t0``, ``t1``, ``|t2|``, ``|t3|`` and ``tanh(t4)`` (the signs
  of ``t2``, ``t3`` are not, and ``tanh`` saturates, so ``t4`` beyond about 2 is weakly
  pinned).
"""

from __future__ import annotations

__all__ = [
    "BIMODAL_SOURCE_MEANS",
    "BIMODAL_SOURCE_NOISE_SD",
    "BIMODAL_SOURCE_SDS",
    "BIMODAL_SOURCE_WEIGHTS",
    "TWO_MOONS_SOURCE_ENTROPY",
    "bimodal_source_log_density",
    "bimodal_source_mean",
    "bimodal_source_sample",
    "bimodal_source_simulator",
    "bimodal_source_simulator_batch",
    "slcp_source_sample",
    "two_moons_source_sample",
]

import numpy as np
from scipy import special

from .benchmarks import (
    _LOG_SQRT_2PI,
    _frozen,
    _thetas,
    slcp_simulator_batch,
    two_moons_simulator_batch,
)

# ================================================================ bimodal source
#: Mixture weights of the true source (population) distribution of ``theta``.
BIMODAL_SOURCE_WEIGHTS = _frozen([0.3, 0.7])
#: Component means of the true source distribution.
BIMODAL_SOURCE_MEANS = _frozen([-1.5, 1.0])
#: Component standard deviations of the true source distribution.
BIMODAL_SOURCE_SDS = _frozen([0.3, 0.4])
#: Standard deviation of the simulator's additive Gaussian noise.
BIMODAL_SOURCE_NOISE_SD = 0.2


def bimodal_source_mean(theta):
    """Noise-free simulator output ``g(theta) = theta + 0.3 sin(2 theta)``.

    ``g'(theta) = 1 + 0.6 cos(2 theta) >= 0.4``, so ``g`` is strictly increasing (the
    mean is invertible) yet non-linear.
    """
    theta = np.asarray(theta, dtype=float)
    return theta + 0.3 * np.sin(2.0 * theta)


def bimodal_source_log_density(theta):
    """Log-density of the true source ``0.3 N(-1.5, 0.3^2) + 0.7 N(1.0, 0.4^2)``."""
    theta = np.asarray(theta, dtype=float)[..., None]
    z = (theta - BIMODAL_SOURCE_MEANS) / BIMODAL_SOURCE_SDS
    comp = (np.log(BIMODAL_SOURCE_WEIGHTS) - np.log(BIMODAL_SOURCE_SDS)
            - _LOG_SQRT_2PI - 0.5 * z * z)
    return special.logsumexp(comp, axis=-1)


def bimodal_source_simulator_batch(thetas, random_state):
    """``x_m = g(theta_m) + N(0, 0.2^2)`` for thetas (m, 1); returns (m, 1).

    ``g(theta) = theta + 0.3 sin(2 theta)`` (:func:`bimodal_source_mean`).
    """
    thetas = _thetas(thetas, 1, "bimodal_source_simulator")
    return bimodal_source_mean(thetas) + BIMODAL_SOURCE_NOISE_SD * random_state.standard_normal(
        thetas.shape)


def bimodal_source_simulator(theta, random_state):
    """One draw ``x = g(theta) + N(0, 0.2^2)`` for ``theta`` of shape (1,), shape (1,)."""
    return bimodal_source_simulator_batch(np.reshape(theta, (1, -1)), random_state)[0]


def bimodal_source_sample(n, random_state=None):
    """A source-estimation data set: a population of parameters and one observation each.

    ``theta_i ~ 0.3 N(-1.5, 0.3^2) + 0.7 N(1.0, 0.4^2)`` (the true source, see
    :data:`BIMODAL_SOURCE_WEIGHTS`, :data:`BIMODAL_SOURCE_MEANS`,
    :data:`BIMODAL_SOURCE_SDS`), then ``x_i = theta_i + 0.3 sin(2 theta_i) + N(0, 0.2^2)``
    (:func:`bimodal_source_simulator_batch`). The task is to recover the distribution of
    ``theta`` from ``X`` alone (Sourcerer, Vetter et al. 2024); unlike the other
    benchmarks there is no single true ``theta``.

    Parameters
    ----------
    n : int
        Number of (theta, x) pairs.
    random_state : numpy.random.Generator, int or None
        Passed to :func:`numpy.random.default_rng`.

    Returns
    -------
    thetas : ndarray of shape (n, 1)
        The population draws.
    X : ndarray of shape (n, 1)
        One observation per theta.
    """
    rng = np.random.default_rng(random_state)
    comp = rng.choice(len(BIMODAL_SOURCE_WEIGHTS), size=int(n), p=BIMODAL_SOURCE_WEIGHTS)
    thetas = (BIMODAL_SOURCE_MEANS[comp]
              + BIMODAL_SOURCE_SDS[comp] * rng.standard_normal(int(n)))[:, None]
    return thetas, bimodal_source_simulator_batch(thetas, rng)


# ===================================================== uniform-box sources (sbibm priors)
def _box_source_sample(n, random_state, half_width: float, k: int, simulator_batch):
    """``theta_i ~ U(-half_width, half_width)^k``, then one ``simulator_batch`` draw each."""
    rng = np.random.default_rng(random_state)
    thetas = rng.uniform(-half_width, half_width, size=(int(n), k))
    return thetas, simulator_batch(thetas, rng)


# ============================================================== two-moons source
#: Entropy (nats) of the two-moons source ``U(-1, 1)^2``: ``log 4``.
TWO_MOONS_SOURCE_ENTROPY = float(np.log(4.0))


def two_moons_source_sample(n, random_state=None):
    """A two-moons source-estimation data set: ``theta_i ~ U(-1, 1)^2``, one draw each.

    Parameters
    ----------
    n : int
        Number of (theta, x) pairs.
    random_state : numpy.random.Generator, int or None
        Passed to :func:`numpy.random.default_rng`.

    Returns
    -------
    thetas : ndarray of shape (n, 2)
        The population draws (sbibm's two-moons prior box).
    X : ndarray of shape (n, 2)
        One :func:`~sktilt.datasets.two_moons_simulator_batch` draw per theta.
    """
    return _box_source_sample(n, random_state, 1.0, 2, two_moons_simulator_batch)


# =================================================================== SLCP source
def slcp_source_sample(n, random_state=None):
    """An SLCP source-estimation data set: ``theta_i ~ U(-3, 3)^5``, one observation each.

    Parameters
    ----------
    n : int
        Number of (theta, x) pairs.
    random_state : numpy.random.Generator, int or None
        Passed to :func:`numpy.random.default_rng`.

    Returns
    -------
    thetas : ndarray of shape (n, 5)
        The population draws (sbibm's SLCP prior box).
    X : ndarray of shape (n, 8)
        One :func:`~sktilt.datasets.slcp_simulator_batch` draw per theta.
    """
    return _box_source_sample(n, random_state, 3.0, 5, slcp_simulator_batch)
