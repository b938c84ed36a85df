"""External LFI benchmarks (sktilt.datasets.benchmarks) against exact references."""

import pickle

import numpy as np
import pytest
from scipy import integrate, optimize, special, stats

from sktilt import simulate
from sktilt.datasets import (
    BIMODAL_SOURCE_MEANS,
    BIMODAL_SOURCE_NOISE_SD,
    BIMODAL_SOURCE_SDS,
    BIMODAL_SOURCE_WEIGHTS,
    GAUSSIAN_LINEAR_VARIANCE,
    GK_TRUE_THETA,
    SLCP_SBIBM_THETA,
    SLCP_TRUE_THETA,
    TWO_MOONS_SOURCE_ENTROPY,
    bimodal_source_log_density,
    bimodal_source_mean,
    bimodal_source_sample,
    bimodal_source_simulator,
    bimodal_source_simulator_batch,
    gaussian_linear_mle,
    gaussian_linear_simulator,
    gaussian_linear_simulator_batch,
    gk_log_likelihood,
    gk_mle,
    gk_quantile,
    gk_simulator,
    gk_simulator_batch,
    slcp_log_likelihood,
    slcp_mle,
    slcp_simulator,
    slcp_simulator_batch,
    slcp_source_sample,
    two_moons_simulator,
    two_moons_simulator_batch,
    two_moons_source_sample,
)

GK_THETAS = [tuple(GK_TRUE_THETA), (0.0, 1.0, -1.0, 0.2), (1.0, 0.5, 0.5, 0.0)]


def _single(simulator, theta, n, seed):
    """``n`` draws of a per-theta simulator, one child generator each."""
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n)]
    return np.array([simulator(np.asarray(theta, dtype=float), r) for r in rngs])


def _gk_q_of_z(z, theta):
    A, B, g, k = theta
    return A + B * (1 + 0.8 * np.tanh(g * z / 2)) * (1 + z**2) ** k * z


def _gk_density(x, theta):
    return np.exp(gk_log_likelihood(theta, [x]))


def _gk_cdf(x, theta):
    """CDF by interpolating the (monotone) quantile function on a fine grid."""
    u = special.ndtr(np.linspace(-9.0, 9.0, 200_001))
    return np.interp(x, gk_quantile(u, theta), u)


# ====================================================================== g-and-k
@pytest.mark.parametrize("theta", GK_THETAS)
def test_gk_quantile_monotone_and_formula(theta):
    u = special.ndtr(np.linspace(-8, 5, 5001))  # (ndtr rounds to 1 beyond z ~ 8)
    q = gk_quantile(u, theta)
    assert np.all(np.diff(q) > 0)
    assert gk_quantile(0.5, theta) == pytest.approx(theta[0])
    z = 1.3
    assert gk_quantile(special.ndtr(z), theta) == pytest.approx(_gk_q_of_z(z, theta),
                                                                rel=1e-12)
    # broadcasting over a batch of parameters
    both = gk_quantile([0.3, 0.7], np.array([theta, theta]))
    np.testing.assert_allclose(both, gk_quantile([0.3, 0.7], theta))
    assert gk_quantile(np.full((3, 1), 0.5), np.array([theta, theta])).shape == (3, 2)


@pytest.mark.parametrize("theta", GK_THETAS)
def test_gk_density_integrates_to_one_and_to_the_quantile_levels(theta):
    # int_{Q(u_i)}^{Q(u_{i+1})} p(x) dx must be u_{i+1} - u_i: the numerically inverted
    # density against the quantile function it came from.
    u = np.array([1e-10, 1e-4, 0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99, 1 - 1e-4, 1 - 1e-10])
    edges = gk_quantile(u, theta)
    pieces = np.array([integrate.quad(_gk_density, a, b, args=(theta,), epsabs=1e-12,
                                      epsrel=1e-10, limit=200)[0]
                       for a, b in zip(edges[:-1], edges[1:])])
    np.testing.assert_allclose(pieces, np.diff(u), rtol=1e-6, atol=1e-12)
    assert pieces.sum() == pytest.approx(1.0, abs=1e-8)


def test_gk_normal_special_case_density():
    # g = k = 0: Q(u) = A + B z, so the density is N(A, B^2).
    x = np.linspace(-3, 5, 41)
    ll = np.array([gk_log_likelihood((1.0, 0.5, 0.0, 0.0), [xi]) for xi in x])
    np.testing.assert_allclose(ll, stats.norm(1.0, 0.5).logpdf(x), rtol=1e-10)


def test_gk_density_matches_histogram_of_draws():
    theta = GK_TRUE_THETA
    x = gk_simulator_batch(np.tile(theta, (100_000, 1)), np.random.default_rng(0))[:, 0]
    edges = np.concatenate([[-np.inf], gk_quantile(np.linspace(0.005, 0.995, 41), theta),
                            [np.inf]])
    counts = np.histogram(x, edges)[0]
    # expected bin probabilities from the density alone (quadrature), not from Q
    inner = np.array([integrate.quad(_gk_density, a, b, args=(theta,))[0]
                      for a, b in zip(edges[1:-2], edges[2:-1])])
    probs = np.concatenate([[0.005], inner, [0.005]])
    probs[0] = probs[-1] = (1 - inner.sum()) / 2
    assert stats.chisquare(counts, probs * x.size).pvalue > 1e-3
    # and a kernel-free pointwise check: histogram density at bin centres
    fine = np.linspace(1.5, 8.0, 27)
    hist, _ = np.histogram(x, fine, density=False)
    dens = hist / (x.size * np.diff(fine))
    centres = 0.5 * (fine[1:] + fine[:-1])
    p = np.array([_gk_density(c, theta) for c in centres])
    assert np.max(np.abs(dens - p)) < 0.02


def test_gk_simulators_same_distribution_and_exact_cdf():
    theta = np.array(GK_TRUE_THETA)
    batch = gk_simulator_batch(np.tile(theta, (5000, 1)), np.random.default_rng(1))
    single = _single(gk_simulator, theta, 3000, 2)
    assert batch.shape == (5000, 1) and single.shape == (3000, 1)
    assert stats.ks_2samp(batch[:, 0], single[:, 0]).pvalue > 1e-3
    assert stats.kstest(batch[:, 0], lambda t: _gk_cdf(t, theta)).pvalue > 1e-3
    assert stats.kstest(single[:, 0], lambda t: _gk_cdf(t, theta)).pvalue > 1e-3
    with pytest.raises(ValueError):
        gk_simulator_batch(np.zeros((3, 2)), np.random.default_rng(0))


def test_gk_log_likelihood_invalid_region_and_far_points():
    x = [1.0, 3.0, 10.0]
    assert gk_log_likelihood((3.0, -1.0, 2.0, 0.5), x) == -np.inf
    assert gk_log_likelihood((3.0, 0.0, 2.0, 0.5), x) == -np.inf
    assert gk_log_likelihood((3.0, 1.0, 2.0, -0.6), x) == -np.inf
    # far outside the z grid (|z| <= 10) the root is still found (bracket expansion);
    # reference: brentq on Q(z) - x and a finite-difference Q'(z)
    theta = tuple(GK_TRUE_THETA)
    for xi in [-1e4, -50.0, 0.5, 2e3, 1e6]:
        ll = gk_log_likelihood(theta, [xi])
        z = optimize.brentq(lambda t, xi=xi: _gk_q_of_z(t, theta) - xi, -1e4, 1e4,
                            xtol=1e-14, rtol=1e-15)
        h = 1e-6 * max(1.0, abs(z))
        dq = (_gk_q_of_z(z + h, theta) - _gk_q_of_z(z - h, theta)) / (2 * h)
        assert ll == pytest.approx(stats.norm.logpdf(z) - np.log(dq), rel=1e-7)


def _gk_fit(seed, n=10_000):
    x = gk_simulator_batch(np.tile(GK_TRUE_THETA, (n, 1)), np.random.default_rng(seed))
    return x, *gk_mle(x)


def test_gk_mle_within_three_standard_errors_and_a_local_maximum():
    x, est, se = _gk_fit(0)
    assert np.all(np.isfinite(se)) and np.all(se > 0)
    assert np.all(np.abs(est - GK_TRUE_THETA) < 3 * se), (est, se)
    best = gk_log_likelihood(est, x)
    for i in range(4):
        for sign in (-1, 1):
            moved = est.copy()
            moved[i] += sign * 0.05 * se[i]
            assert gk_log_likelihood(moved, x) < best
    # a second, independent optimiser reaches the same maximum
    res = optimize.minimize(lambda t: -gk_log_likelihood(t, x), est + 0.5 * se,
                            method="Nelder-Mead",
                            options={"xatol": 1e-7, "fatol": 1e-9, "maxiter": 3000})
    assert np.all(np.abs(res.x - est) < 0.02 * se)
    assert -res.fun <= best + 1e-6


def test_gk_standard_errors_match_the_spread_of_estimates():
    # 30 data sets of 2000 draws x 4 parameters: the standardised errors
    # (est - truth) / se must have unit RMS (sampling error over 120 values about 7%).
    fits = [_gk_fit(seed, n=2000)[1:] for seed in range(200, 230)]
    est = np.array([f[0] for f in fits])
    se = np.array([f[1] for f in fits])
    z = (est - GK_TRUE_THETA) / se
    assert 0.75 < np.sqrt(np.mean(z**2)) < 1.25
    assert np.all(np.abs(z) < 4.5)
    # the standard errors themselves vary little between data sets of this size
    assert np.all(se.std(0) < 0.2 * se.mean(0))


@pytest.mark.slow
def test_gk_standard_errors_match_the_spread_over_many_seeds():
    fits = [_gk_fit(seed)[1:] for seed in range(100, 150)]
    est = np.array([f[0] for f in fits])
    se = np.array([f[1] for f in fits])
    spread = est.std(0, ddof=1)
    np.testing.assert_allclose(se.mean(0), spread, rtol=0.3)
    assert np.all(np.abs(est.mean(0) - GK_TRUE_THETA) < 4 * spread / np.sqrt(len(est)))


# ========================================================================= SLCP
def _slcp_cov(theta):
    s1, s2, rho = theta[2] ** 2, theta[3] ** 2, np.tanh(theta[4])
    return np.array([[s1**2, rho * s1 * s2], [rho * s1 * s2, s2**2]])


def test_slcp_constants():
    assert tuple(SLCP_TRUE_THETA) == (0.7, -2.9, -1.0, -0.9, 0.6)
    assert SLCP_SBIBM_THETA.shape == (5,) and np.all(np.abs(SLCP_SBIBM_THETA) <= 3)
    with pytest.raises(ValueError):
        SLCP_TRUE_THETA[0] = 1.0  # read-only


@pytest.mark.parametrize("theta", [SLCP_TRUE_THETA, SLCP_SBIBM_THETA])
def test_slcp_simulator_moments(theta):
    theta = np.asarray(theta)
    X = slcp_simulator_batch(np.tile(theta, (100_000, 1)), np.random.default_rng(3))
    assert X.shape == (100_000, 8)
    pts = X.reshape(-1, 4, 2)
    S = _slcp_cov(theta)
    for j in range(4):  # each of the four points is N(m, Sigma)
        mean, cov = pts[:, j].mean(0), np.cov(pts[:, j].T)
        assert np.all(np.abs(mean - theta[:2]) < 5 * np.sqrt(np.diag(S) / len(pts)))
        np.testing.assert_allclose(cov, S, rtol=0.03, atol=0.03 * np.sqrt(S[0, 0] * S[1, 1]))
    # and the four points are independent
    C = np.corrcoef(X.T)
    for a in range(4):
        for b in range(a):
            assert np.all(np.abs(C[2 * a:2 * a + 2, 2 * b:2 * b + 2]) < 0.02)


def test_slcp_log_likelihood_matches_scipy_and_symmetry():
    theta = np.asarray(SLCP_TRUE_THETA)
    X = slcp_simulator_batch(np.tile(theta, (20, 1)), np.random.default_rng(4))
    ref = stats.multivariate_normal(theta[:2], _slcp_cov(theta)).logpdf(X.reshape(-1, 2)).sum()
    assert slcp_log_likelihood(theta, X) == pytest.approx(ref, rel=1e-12)
    flipped = theta * np.array([1, 1, -1, -1, 1])
    assert slcp_log_likelihood(flipped, X) == pytest.approx(ref, rel=1e-12)
    assert slcp_log_likelihood(theta * np.array([1, 1, 0, 1, 1]), X) == -np.inf


def test_slcp_mle_equals_numerical_maximisation():
    theta = np.asarray(SLCP_TRUE_THETA)
    X = slcp_simulator_batch(np.tile(theta, (50, 1)), np.random.default_rng(5))
    est, se = slcp_mle(X)
    assert est[2] > 0 and est[3] > 0

    def nll(t):
        return -slcp_log_likelihood(t, X)

    res = optimize.minimize(nll, theta + 0.1, method="BFGS", options={"gtol": 1e-10})
    num = res.x * np.array([1, 1, np.sign(res.x[2]), np.sign(res.x[3]), 1])
    np.testing.assert_allclose(num, est, atol=1e-5)
    assert nll(est) <= res.fun + 1e-9
    # standard errors: inverse observed information by central differences
    h = 1e-4
    E = np.eye(5) * h
    H = np.array([[(nll(est + E[i] + E[j]) - nll(est + E[i] - E[j]) - nll(est - E[i] + E[j])
                    + nll(est - E[i] - E[j])) / (4 * h * h) for j in range(5)]
                  for i in range(5)])
    np.testing.assert_allclose(se, np.sqrt(np.diag(np.linalg.inv(H))), rtol=1e-4)
    assert np.all(np.abs(est - theta * np.array([1, 1, -1, -1, 1])) < 4 * se)


def test_slcp_simulators_same_distribution():
    theta = np.asarray(SLCP_TRUE_THETA)
    batch = slcp_simulator_batch(np.tile(theta, (3000, 1)), np.random.default_rng(6))
    single = _single(slcp_simulator, theta, 2000, 7)
    assert single.shape == (2000, 8)
    pvals = [stats.ks_2samp(batch[:, j], single[:, j]).pvalue for j in range(8)]
    assert min(pvals) > 1e-3 / 8


# ============================================================== Gaussian linear
def test_gaussian_linear_simulator_and_mle():
    theta = np.linspace(-0.5, 0.5, 10)
    X = gaussian_linear_simulator_batch(np.tile(theta, (40_000, 1)), np.random.default_rng(8))
    assert X.shape == (40_000, 10)
    np.testing.assert_allclose(np.cov(X.T), GAUSSIAN_LINEAR_VARIANCE * np.eye(10), atol=0.004)
    est, se = gaussian_linear_mle(X)
    np.testing.assert_allclose(est, X.mean(0))
    np.testing.assert_allclose(se, np.sqrt(0.1 / 40_000))
    assert np.all(np.abs(est - theta) < 4 * se)
    single = _single(gaussian_linear_simulator, theta, 2000, 9)
    assert single.shape == (2000, 10)
    for j in (0, 9):
        assert stats.kstest(single[:, j], stats.norm(theta[j], np.sqrt(0.1)).cdf).pvalue > 1e-3


# ==================================================================== two moons
def _shift(theta):
    t0, t1 = theta
    return np.array([-abs(t0 + t1), -t0 + t1]) / np.sqrt(2)


@pytest.mark.parametrize("theta", [(0.3, -0.1), (-0.6, 0.2), (0.0, 0.0)])
def test_two_moons_crescent_shape(theta):
    X = two_moons_simulator_batch(np.tile(theta, (100_000, 1)), np.random.default_rng(10))
    p = X - _shift(theta) - np.array([0.25, 0.0])
    r, a = np.hypot(p[:, 0], p[:, 1]), np.arctan2(p[:, 1], p[:, 0])
    assert r.mean() == pytest.approx(0.1, abs=1e-4)
    assert r.std() == pytest.approx(0.01, rel=0.02)
    assert stats.kstest(a, stats.uniform(-np.pi / 2, np.pi).cdf).pvalue > 1e-3
    single = _single(two_moons_simulator, theta, 2000, 11)
    for j in range(2):
        assert stats.ks_2samp(single[:, j], X[:, j]).pvalue > 1e-3


def test_two_moons_bimodal_symmetry_and_shift():
    theta = np.array([[0.3, -0.1]])
    mirror = -theta[:, ::-1]  # (-t1, -t0): the second posterior mode
    np.testing.assert_array_equal(two_moons_simulator_batch(theta, np.random.default_rng(0)),
                                  two_moons_simulator_batch(mirror, np.random.default_rng(0)))
    other = np.array([[0.5, 0.4]])
    diff = (two_moons_simulator_batch(theta, np.random.default_rng(1))
            - two_moons_simulator_batch(other, np.random.default_rng(1)))
    np.testing.assert_allclose(diff[0], _shift(theta[0]) - _shift(other[0]), atol=1e-15)


# ============================================================== bimodal source
def _mixture_cdf(t):
    t = np.asarray(t, dtype=float)[..., None]
    return np.sum(BIMODAL_SOURCE_WEIGHTS
                  * stats.norm.cdf(t, BIMODAL_SOURCE_MEANS, BIMODAL_SOURCE_SDS), axis=-1)


def test_bimodal_source_constants_and_density():
    assert tuple(BIMODAL_SOURCE_WEIGHTS) == (0.3, 0.7)
    assert tuple(BIMODAL_SOURCE_MEANS) == (-1.5, 1.0)
    assert tuple(BIMODAL_SOURCE_SDS) == (0.3, 0.4) and BIMODAL_SOURCE_NOISE_SD == 0.2
    total = integrate.quad(lambda t: np.exp(bimodal_source_log_density(t)), -np.inf, np.inf)
    assert total[0] == pytest.approx(1.0, abs=1e-8)
    t = np.linspace(-3, 3, 13)
    h = 1e-5
    np.testing.assert_allclose(np.exp(bimodal_source_log_density(t)),
                               (_mixture_cdf(t + h) - _mixture_cdf(t - h)) / (2 * h), rtol=1e-5)
    grid = np.linspace(-5, 5, 10_001)  # the simulator's mean is increasing: invertible
    assert np.all(np.diff(bimodal_source_mean(grid)) > 0)


def test_bimodal_source_sample_population_and_simulator():
    thetas, X = bimodal_source_sample(20_000, random_state=12)
    assert thetas.shape == (20_000, 1) and X.shape == (20_000, 1)
    assert stats.kstest(thetas[:, 0], _mixture_cdf).pvalue > 1e-3
    frac_low = np.mean(thetas < -0.25)
    assert abs(frac_low - 0.3) < 4 * np.sqrt(0.3 * 0.7 / 20_000)
    noise = (X - thetas - 0.3 * np.sin(2 * thetas))[:, 0]
    assert stats.kstest(noise, stats.norm(0, 0.2).cdf).pvalue > 1e-3
    # the per-theta simulators reproduce X's distribution given the same thetas
    again = bimodal_source_simulator_batch(thetas, np.random.default_rng(13))
    assert stats.ks_2samp(again[:, 0], X[:, 0]).pvalue > 1e-3
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(14).spawn(3000)]
    single = np.array([bimodal_source_simulator(t, r) for t, r in zip(thetas[:3000], rngs)])
    assert single.shape == (3000, 1)
    assert stats.ks_2samp(single[:, 0], X[:3000, 0]).pvalue > 1e-3
    resid = (single - bimodal_source_mean(thetas[:3000]))[:, 0]
    assert stats.kstest(resid, stats.norm(0, 0.2).cdf).pvalue > 1e-3
    # reproducible from an int seed or a Generator
    t2, X2 = bimodal_source_sample(100, np.random.default_rng(12))
    t3, X3 = bimodal_source_sample(100, 12)
    np.testing.assert_array_equal(t2, t3)
    np.testing.assert_array_equal(X2, X3)


@pytest.mark.parametrize("sample, simulate, k, half_width", [
    (two_moons_source_sample, two_moons_simulator_batch, 2, 1.0),
    (slcp_source_sample, slcp_simulator_batch, 5, 3.0),
])
def test_box_source_samples(sample, simulate, k, half_width):
    thetas, X = sample(20_000, random_state=3)
    assert thetas.shape == (20_000, k) and X.shape[0] == 20_000
    for j in range(k):  # each coordinate uniform on the prior box
        assert stats.kstest(thetas[:, j], stats.uniform(-half_width, 2 * half_width).cdf
                            ).pvalue > 1e-3
    assert abs(np.corrcoef(thetas.T)[0, 1]) < 0.03
    # X is one simulator draw per theta, from the same stream
    rng = np.random.default_rng(3)
    np.testing.assert_array_equal(X, simulate(rng.uniform(-half_width, half_width,
                                                          (20_000, k)), rng))
    np.testing.assert_array_equal(sample(50, np.random.default_rng(4))[1], sample(50, 4)[1])
    assert TWO_MOONS_SOURCE_ENTROPY == pytest.approx(np.log(4.0))


# ============================================================ shared behaviour
SIMULATORS = [
    (gk_simulator, gk_simulator_batch, GK_TRUE_THETA, 1),
    (slcp_simulator, slcp_simulator_batch, SLCP_TRUE_THETA, 8),
    (gaussian_linear_simulator, gaussian_linear_simulator_batch, np.zeros(10), 10),
    (two_moons_simulator, two_moons_simulator_batch, np.array([0.1, 0.2]), 2),
    (bimodal_source_simulator, bimodal_source_simulator_batch, np.array([0.5]), 1),
]


@pytest.mark.parametrize("single, batch, theta, n_features", SIMULATORS)
def test_simulators_run_through_simulate_and_pickle(single, batch, theta, n_features):
    thetas = np.tile(theta, (40, 1)) + 0.01 * np.random.default_rng(0).standard_normal(
        (40, len(theta)))
    for fn, vectorized in ((single, False), (batch, True)):
        assert pickle.loads(pickle.dumps(fn)) is fn
        res = simulate(fn, thetas, seed=0, vectorized=vectorized, n_features=n_features,
                       on_failure="raise")
        assert res.X.shape == (40, n_features) and np.all(np.isfinite(res.X))
    with pytest.raises(ValueError):
        batch(np.zeros((3, len(theta) + 1)), np.random.default_rng(0))
