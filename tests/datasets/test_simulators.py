"""Benchmark simulators against exact distributions; MLE helpers against brute force."""

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import cdist

from sktilt import energy_distance
from sktilt.datasets import (
    GAUSSIAN_COVARIANCE,
    gaussian_location_mle,
    gaussian_location_simulator,
    gaussian_location_simulator_batch,
    poisson_mle,
    poisson_simulator,
    poisson_simulator_batch,
    weinberg_c,
    weinberg_c_mle,
    weinberg_log_likelihood,
    weinberg_simulator,
    weinberg_simulator_batch,
)


def weinberg_cdf(x, c):
    """Exact CDF of p(x) = 3/8 (1 + x^2 + c x) on [-1, 1]."""
    return 0.375 * ((x + 1) + (x**3 + 1) / 3 + c * (x**2 - 1) / 2)


@pytest.mark.parametrize("E, G_f", [(42.0, 0.9), (45.0, 1.0), (60.0, 1.0), (30.0, 1.5)])
def test_weinberg_sampler_matches_exact_distribution(E, G_f):
    c = float(weinberg_c(E, G_f))
    x = weinberg_simulator_batch(np.tile([E, G_f], (20_000, 1)), np.random.default_rng(0))
    assert x.min() >= -1 and x.max() <= 1
    assert stats.kstest(x[:, 0], lambda t: weinberg_cdf(t, c)).pvalue > 1e-3
    single = np.array([weinberg_simulator(np.array([E, G_f]), np.random.default_rng(i))[0]
                       for i in range(3000)])
    assert stats.kstest(single, lambda t: weinberg_cdf(t, c)).pvalue > 1e-3


def test_weinberg_c_formula_and_clip():
    assert weinberg_c(42.0, 0.9) == pytest.approx(2 * np.tanh(10 * (84 - 90) / 90) * 0.9)
    assert weinberg_c(45.0, 1.0) == 0.0
    assert weinberg_c(200.0, 5.0) == 2.0 and weinberg_c(0.0, 5.0) == -2.0


def test_weinberg_mle_and_standard_error():
    x = weinberg_simulator_batch(np.tile([42.0, 0.9], (5000, 1)), np.random.default_rng(1))
    c_hat, se = weinberg_c_mle(x)
    grid = np.linspace(-2, 2, 40_001)
    ll = np.array([weinberg_log_likelihood(c, x) for c in grid[::100]])
    assert abs(c_hat - grid[::100][ll.argmax()]) < 0.011
    h = 1e-4  # observed information by finite differences
    d2 = (weinberg_log_likelihood(c_hat + h, x) - 2 * weinberg_log_likelihood(c_hat, x)
          + weinberg_log_likelihood(c_hat - h, x)) / h**2
    assert se == pytest.approx(1 / np.sqrt(-d2), rel=1e-3)
    assert abs(c_hat - weinberg_c(42.0, 0.9)) < 4 * se


def test_poisson_simulator_and_mle():
    rng = np.random.default_rng(2)
    x = poisson_simulator_batch(np.full((20_000, 1), np.log(7.0)), rng)
    lam, se = poisson_mle(x)
    assert lam == x.mean() and se == pytest.approx(np.sqrt(lam / 20_000))
    assert abs(lam - 7.0) < 4 * se
    assert poisson_simulator(np.array([np.log(3.0)]), rng).shape == (1,)
    with pytest.raises(ValueError, match=r"shape \(m, 1\)"):
        poisson_simulator(np.array([1.0, 2.0]), rng)


def test_gaussian_location_simulator_and_mle():
    rng = np.random.default_rng(3)
    x = gaussian_location_simulator_batch(np.tile([1.0, -0.5], (50_000, 1)), rng)
    np.testing.assert_allclose(np.cov(x.T), GAUSSIAN_COVARIANCE, atol=0.02)
    mle, se = gaussian_location_mle(x)
    np.testing.assert_allclose(mle, x.mean(0))
    np.testing.assert_allclose(se, np.sqrt(1 / 50_000))
    assert np.all(np.abs(mle - [1.0, -0.5]) < 4 * se)
    assert gaussian_location_simulator(np.zeros(2), rng).shape == (2,)


def test_energy_distance_matches_brute_force_and_scipy():
    rng = np.random.default_rng(4)
    X, Y = rng.normal(size=(300, 2)), rng.normal(0.5, 1, size=(200, 2))
    n, m = len(X), len(Y)
    u = (2 * cdist(X, Y).mean() - cdist(X, X).sum() / (n * (n - 1))
         - cdist(Y, Y).sum() / (m * (m - 1)))
    assert energy_distance(X, Y) == pytest.approx(u, rel=1e-10)
    # With V-statistics (diagonals included), it is scipy's 1-D distance squared.
    x, y = X[:, 0], Y[:, 0]
    v = 2 * cdist(x[:, None], y[:, None]).mean() - cdist(x[:, None], x[:, None]).mean() \
        - cdist(y[:, None], y[:, None]).mean()
    assert stats.energy_distance(x, y) ** 2 == pytest.approx(v, rel=1e-10)
    assert energy_distance(x, y) > energy_distance(x, rng.normal(size=200)) - 0.05
    assert abs(energy_distance(rng.normal(size=2000), rng.normal(size=2000))) < 0.01
    with pytest.raises(ValueError, match="same number of columns"):
        energy_distance(X, Y[:, :1])
