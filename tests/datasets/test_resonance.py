"""Resonance benchmark (sktilt.datasets.resonance) against independent references.

References: scipy.stats' Cauchy and truncated-exponential distributions (truncated to
[0, 1] by hand), numerical quadrature, finite differences of the log-likelihood, and the
Monte Carlo spread of the MLE over replicate data sets.
"""

import pickle

import numpy as np
import pytest
from scipy import integrate, stats

from sktilt.datasets import (
    RESONANCE_CASES,
    RESONANCE_PARAMETERS,
    resonance_case,
    resonance_cdf,
    resonance_log_likelihood,
    resonance_mle,
    resonance_simulator,
    resonance_simulator_batch,
)

THETAS = [
    (0.45, 0.03, 0.2, 2.0),  # the issue case
    (0.5, 0.01, 0.05, 0.0),  # flat background
    (0.35, 0.002, 0.4, 8.0),  # very narrow peak, steep background
    (0.7, 0.06, 0.3, -3.0),  # rising background
    (0.2, 0.5, 0.6, 1e-13),  # wide peak, nearly flat background
    (0.6, 0.02, 0.0, 40.0),  # background only
    (0.4, 0.05, 1.0, 1.0),  # peak only
]


def _reference(theta):
    """Density and CDF from scipy.stats: truncated Cauchy + truncated exponential."""
    p, w, f, s = theta
    peak = stats.cauchy(p, w)
    mass = peak.cdf(1.0) - peak.cdf(0.0)
    if s == 0:
        bg_pdf, bg_cdf = stats.uniform.pdf, stats.uniform.cdf
    elif s > 0:  # truncexpon: density exp(-y) on [0, b], here y = s x and b = s
        bg = stats.truncexpon(b=s, scale=1.0 / s)
        bg_pdf, bg_cdf = bg.pdf, bg.cdf
    else:  # a rising background is the mirror image of a falling one
        bg = stats.truncexpon(b=-s, scale=-1.0 / s)
        bg_pdf, bg_cdf = (lambda x: bg.pdf(1.0 - x)), (lambda x: 1.0 - bg.cdf(1.0 - x))

    def pdf(x):
        return f * peak.pdf(x) / mass + (1 - f) * bg_pdf(x)

    def cdf(x):
        x = np.clip(x, 0.0, 1.0)
        return f * (peak.cdf(x) - peak.cdf(0.0)) / mass + (1 - f) * bg_cdf(x)

    return pdf, cdf


def _density(theta, x):
    return np.exp(resonance_log_likelihood(np.array(theta), np.array([x])))


@pytest.mark.parametrize("theta", THETAS)
def test_density_matches_scipy_and_integrates_to_one(theta):
    pdf, _ = _reference(theta)
    x = np.linspace(0.0, 1.0, 201)
    ours = np.array([_density(theta, t) for t in x])
    np.testing.assert_allclose(ours, pdf(x), rtol=1e-9)
    # log-likelihood of a sample is the sum of single-point terms
    assert resonance_log_likelihood(np.array(theta), x) == pytest.approx(np.sum(np.log(ours)))
    p = theta[0]
    total = sum(integrate.quad(lambda t: _density(theta, t), a, b, epsabs=1e-12,
                               epsrel=1e-12, limit=200)[0]
                for a, b in [(0.0, p), (p, 1.0)])
    assert total == pytest.approx(1.0, abs=1e-8)


@pytest.mark.parametrize("theta", THETAS)
def test_cdf_matches_reference(theta):
    _, cdf = _reference(theta)
    x = np.linspace(-0.1, 1.1, 121)
    np.testing.assert_allclose(resonance_cdf(x, np.array(theta)), cdf(x), atol=1e-12)


def test_tiny_slopes_are_continuous_at_flat():
    x = np.linspace(0.0, 1.0, 11)
    flat = resonance_log_likelihood(np.array([0.5, 0.03, 0.2, 0.0]), x)
    for s in (1e-300, 1e-12, -1e-12, 1e-7):
        ll = resonance_log_likelihood(np.array([0.5, 0.03, 0.2, s]), x)
        assert ll == pytest.approx(flat, abs=1e-6)
    u = resonance_simulator_batch(np.tile([0.5, 0.03, 0.0, 1e-300], (20_000, 1)),
                                  np.random.default_rng(0))[:, 0]
    assert np.all(np.isfinite(u)) and stats.kstest(u, "uniform").pvalue > 1e-3


@pytest.mark.parametrize("theta", [(0.45, 0.03, 0.2, 0.0),  # flat background
                                   (0.45, 0.03, 0.2, 8.0),  # steep background
                                   (0.3, 0.005, 0.3, -4.0),  # narrow peak, rising
                                   (0.45, 0.03, 1.0, 2.0)])  # peak only
def test_sampler_matches_analytic_cdf(theta):
    _, cdf = _reference(theta)
    x = resonance_simulator_batch(np.tile(theta, (100_000, 1)), np.random.default_rng(1))
    assert x.shape == (100_000, 1)
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert stats.kstest(x[:, 0], cdf).pvalue > 1e-3
    rng = np.random.default_rng(2)
    single = np.array([resonance_simulator(np.array(theta), rng)[0] for _ in range(2000)])
    assert stats.kstest(single, cdf).pvalue > 1e-3


def test_sampler_draws_each_row_from_its_own_theta():
    thetas = np.array([[0.2, 1e-4, 1.0, 0.0], [0.8, 1e-4, 1.0, 0.0]] * 500)
    x = resonance_simulator_batch(thetas, np.random.default_rng(3))[:, 0]
    # the peaks are narrow: nearly all draws lie close to their own row's position
    assert np.mean(np.abs(x - thetas[:, 0]) < 0.05) > 0.98
    assert resonance_simulator(np.array([0.5, 0.1, 0.3, 1.0]),
                               np.random.default_rng(0)).shape == (1,)
    # vectorized simulators pickle by reference (process-based joblib backends)
    assert pickle.loads(pickle.dumps(resonance_simulator_batch)) is resonance_simulator_batch


def test_cases_table():
    assert len(RESONANCE_CASES) >= 6
    widths, fractions, slopes = set(), set(), set()
    for name, case in RESONANCE_CASES.items():
        theta = case["theta"]
        assert theta.shape == (4,) and 0.3 <= theta[0] <= 0.7
        assert 4000 <= case["n_obs"] <= 6000
        widths.add(theta[1])
        fractions.add(theta[2])
        slopes.add(theta[3])
        X, theta_true = resonance_case(name, np.random.default_rng(0))
        assert X.shape == (case["n_obs"], 1)
        np.testing.assert_array_equal(theta_true, theta)
        theta_true[0] = -1.0  # a copy: the table is untouched
        assert RESONANCE_CASES[name]["theta"][0] == theta[0]
    assert {0.01, 0.03, 0.06} <= widths and {0.05, 0.2, 0.4} <= fractions
    assert 0.0 in slopes and max(slopes) >= 4.0 and any(1.0 <= s <= 3.0 for s in slopes)
    np.testing.assert_array_equal(RESONANCE_CASES["issue"]["theta"][1:3], [0.03, 0.2])
    assert RESONANCE_CASES["issue"]["theta"][3] > 0
    assert RESONANCE_PARAMETERS == ("position", "width", "fraction", "slope")


def _observed_information(theta, X):
    """Central-difference Hessian of the negative log-likelihood (function values only)."""
    h = np.array([2e-5, 2e-5 * theta[1], 1e-4, 1e-3])
    E = np.diag(h)

    def nll(t):
        return -resonance_log_likelihood(t, X)

    H = np.empty((4, 4))
    for i in range(4):
        for j in range(4):
            H[i, j] = (nll(theta + E[i] + E[j]) - nll(theta + E[i] - E[j])
                       - nll(theta - E[i] + E[j]) + nll(theta - E[i] - E[j])) / (4 * h[i] * h[j])
    return H


@pytest.mark.parametrize("name", ["issue", "narrow_weak_flat", "wide_medium_steep"])
def test_mle_near_truth_and_standard_errors_match_curvature(name):
    for seed in range(3):
        X, theta = resonance_case(name, np.random.default_rng(10 + seed))
        est, se = resonance_mle(X)
        assert np.all(np.isfinite(se)) and np.all(se > 0)
        assert np.all(np.abs(est - theta) < 3.5 * se), (seed, est, se)
        ll = resonance_log_likelihood(est, X)
        assert ll >= resonance_log_likelihood(theta, X)
        # a maximum: no coordinate step of a tenth of a standard error improves on it
        for i in range(4):
            for sign in (-1, 1):
                step = np.zeros(4)
                step[i] = sign * 0.1 * se[i]
                assert resonance_log_likelihood(est + step, X) <= ll + 1e-6
        if seed == 0:
            se_ref = np.sqrt(np.diag(np.linalg.inv(_observed_information(est, X))))
            np.testing.assert_allclose(se, se_ref, rtol=0.02)
    # the start argument does not move a converged fit
    est_start, _ = resonance_mle(X, start=theta)
    np.testing.assert_allclose(est_start, est, rtol=1e-4, atol=1e-6)


def test_mle_finds_narrow_peak_far_from_start():
    X, theta = resonance_case("narrow_weak_flat", np.random.default_rng(4))
    est, se = resonance_mle(X, start=[0.1, 0.2, 0.5, 3.0])
    assert np.all(np.abs(est - theta) < 3.5 * se)


def test_standard_errors_match_monte_carlo_spread():
    rng = np.random.default_rng(20)
    z = []
    for _ in range(30):
        X, theta = resonance_case("issue", rng)
        est, se = resonance_mle(X)
        z.append((est - theta) / se)
    z = np.array(z)
    sd = z.std(axis=0, ddof=1)
    assert np.all((sd > 0.7) & (sd < 1.4)), sd
    assert np.all(np.abs(z.mean(axis=0)) < 0.6), z.mean(axis=0)


@pytest.mark.parametrize("theta, name", [
    ([0.0, 0.03, 0.2, 2.0], "position"),
    ([1.0, 0.03, 0.2, 2.0], "position"),
    ([np.nan, 0.03, 0.2, 2.0], "position"),
    ([0.5, 0.0, 0.2, 2.0], "width"),
    ([0.5, -0.1, 0.2, 2.0], "width"),
    ([0.5, np.inf, 0.2, 2.0], "width"),
    ([0.5, 0.03, -0.1, 2.0], "fraction"),
    ([0.5, 0.03, 1.5, 2.0], "fraction"),
    ([0.5, 0.03, 0.2, np.nan], "slope"),
    ([0.5, 0.03, 0.2, np.inf], "slope"),
])
def test_invalid_parameters_raise_naming_the_parameter(theta, name):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=name):
        resonance_simulator(np.array(theta), rng)
    batch = np.array([[0.5, 0.03, 0.2, 2.0], theta])
    with pytest.raises(ValueError, match=f"{name} .*row 1"):
        resonance_simulator_batch(batch, rng)
    with pytest.raises(ValueError, match=name):
        resonance_cdf(0.5, np.array(theta))
    assert resonance_log_likelihood(np.array(theta), [0.5]) == -np.inf


def test_invalid_shapes_and_observations_raise():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"shape \(m, 4\)"):
        resonance_simulator_batch(np.zeros((3, 3)), rng)
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        resonance_simulator(np.array([0.5, 0.03, 0.2]), rng)
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        resonance_log_likelihood([0.5, 0.03, 0.2], [0.5])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        resonance_log_likelihood([0.5, 0.03, 0.2, 2.0], [0.5, 1.2])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        resonance_mle(np.array([0.1, np.nan, 0.5]))
    with pytest.raises(ValueError, match=r"n_obs"):
        resonance_mle(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="fraction"):
        resonance_mle(np.linspace(0, 1, 50), start=[0.5, 0.03, 1.0, 2.0])
    with pytest.raises(ValueError, match="width"):
        resonance_mle(np.linspace(0, 1, 50), start=[0.5, -0.03, 0.2, 2.0])
    with pytest.raises(ValueError, match="Unknown resonance case"):
        resonance_case("nope", rng)
