"""The pure pieces of the AVO loop: the resolution estimate and the scale floor."""

import numpy as np

from sktilt.avo._resolution import ParameterResolution, shrink_slopes


def _linear_batches(B, noise_sd, spread, n_batches, rng, loc=0.0):
    for _ in range(n_batches):
        z = loc + spread * rng.standard_normal((128, B.shape[0]))
        yield z, z @ B + noise_sd * rng.standard_normal((128, B.shape[1]))


def test_resolution_matches_the_linear_gaussian_closed_form():
    # features = z B + N(0, I): the information of n observations on z_i (others
    # fixed) is n |b_i|^2.
    rng = np.random.default_rng(0)
    B = np.array([[1.0, 0.5, 0.0], [0.0, 0.2, 0.1]])
    res = ParameterResolution(2, 3)
    for z, F in _linear_batches(B, 1.0, 1.0, 100, rng):
        res.update(z, F)
    expected = 1.0 / np.sqrt(10_000 * (B**2).sum(1))
    np.testing.assert_allclose(res.standard_errors(10_000), expected, rtol=0.1)


def test_resolution_of_a_poisson_rate_is_the_closed_form():
    rng = np.random.default_rng(1)
    res = ParameterResolution(1, 1)
    for _ in range(20):
        z = np.log(7.0) + 0.1 * rng.standard_normal((128, 1))
        res.update(z, rng.poisson(np.exp(z)))
    np.testing.assert_allclose(res.standard_errors(20_000), 1 / np.sqrt(20_000 * 7.0),
                               rtol=0.15)


def test_resolution_is_infinite_without_evidence():
    rng = np.random.default_rng(2)
    res = ParameterResolution(2, 1)
    assert np.all(np.isinf(res.standard_errors(100)))  # nothing seen yet
    for _ in range(20):
        z = rng.standard_normal((128, 2))
        res.update(z, z[:, :1] + rng.standard_normal((128, 1)))  # z_1 does nothing
    se = res.standard_errors(1_000)
    assert np.isfinite(se[0]) and np.isinf(se[1])


def test_tied_features_count_once():
    # discrete data tie cut points: duplicated features add neither information nor
    # noise, so the standard errors and the location step are those without them
    rng = np.random.default_rng(4)
    B = np.array([[1.0, 0.5, 0.0], [0.0, 0.2, 0.1]])
    plain, tied = ParameterResolution(2, 3), ParameterResolution(2, 7)
    for z, F in _linear_batches(B, 1.0, 0.3, 10, rng):
        plain.update(z, F)
        tied.update(z, np.concatenate([F, F, F[:, :1]], axis=1))
    np.testing.assert_allclose(tied.standard_errors(500), plain.standard_errors(500),
                               rtol=1e-6)
    target = np.array([0.3, 0.1, 0.0])
    shifts = [res.kalman_shift(np.zeros(2), np.eye(2), t, 500) for res, t in
              ((plain, target), (tied, np.concatenate([target, target, target[:1]])))]
    np.testing.assert_allclose(shifts[1], shifts[0], rtol=1e-6)


def test_resolution_forgets_old_batches():
    # The slope changes from 1 to 3; with forgetting the estimate follows it.
    rng = np.random.default_rng(3)
    kept, forgetful = ParameterResolution(1, 1), ParameterResolution(1, 1, decay=0.9)
    for slope in (1.0, 3.0):
        for z, F in _linear_batches(np.array([[slope]]), 1.0, 1.0, 60, rng):
            kept.update(z, F)
            forgetful.update(z, F)
    exact = 1 / np.sqrt(1_000 * 9.0)
    np.testing.assert_allclose(forgetful.standard_errors(1_000), exact, rtol=0.1)
    assert kept.standard_errors(1_000)[0] > 1.2 * exact


def test_kalman_shift_is_the_linear_gaussian_posterior_mean():
    # features = a + z B + N(0, I); the mean of n observations at z* has the likelihood
    # N(a + z* B, I / n); with the prior N(loc, cov) the posterior mean of z* - loc is
    # (n B B^T + cov^-1)^-1 n B (target - a - loc B).
    rng = np.random.default_rng(3)
    B = np.array([[1.0, 0.5, 0.0], [0.0, 0.2, 0.1]])
    a, loc, n = np.array([0.3, -0.2, 1.0]), np.array([0.5, -1.0]), 400
    res = ParameterResolution(2, 3)
    for z, F in _linear_batches(B, 1.0, 0.2, 400, rng, loc=loc):
        res.update(z, a + F)
    target = a + np.array([0.8, -0.5]) @ B
    cov = np.diag([0.2, 0.2]) ** 2
    expected = np.linalg.solve(n * B @ B.T + np.linalg.inv(cov), n * B @ (target - a - loc @ B))
    shift = res.kalman_shift(loc, cov, target, n)
    np.testing.assert_allclose(shift, expected, atol=0.02)
    # with many observations it is the Gauss-Newton step to z* = [0.8, -0.5], up to the
    # noise of the slopes (z_1's are 0.2 and 0.1, known to about 0.02 from simulations
    # 0.2 wide, and the step extrapolates 2.5 spreads)
    np.testing.assert_allclose(loc + res.kalman_shift(loc, cov, target, 10**6), [0.8, -0.5],
                               atol=0.1)


def test_kalman_shift_does_not_move_what_the_data_do_not_pin():
    rng = np.random.default_rng(4)
    B = np.array([[1.0, 0.5], [0.0, 0.0]])  # z_1 has no effect on the features
    res = ParameterResolution(2, 2)
    assert np.all(res.kalman_shift(np.zeros(2), np.eye(2), np.ones(2), 100) == 0)
    for z, F in _linear_batches(B, 1.0, 1.0, 50, rng):
        res.update(z, F)
    shift = res.kalman_shift(np.zeros(2), np.eye(2), np.array([1.0, 0.5]), 10_000)
    assert abs(shift[0] - 1.0) < 0.05 and abs(shift[1]) < 0.05


def test_shrink_slopes_debiases_evidence_and_caps_the_shrink_below_the_threshold():
    # three independent directions, unit noise: signal-to-noise 9, 1.2 and 0.5. Their
    # slopes keep sqrt(1 - 1/lambda) of themselves, so that the information is
    # lambda - 1, and none below 1. With a threshold of 1.5 the weak direction keeps the
    # weight at 1.5, sqrt(1/3): a step along it is its noise over that, not over
    # sqrt(1 - 1/1.2) = 0.41; the direction below 1 still has no slopes
    S_inv, noise = np.eye(3), np.eye(3)
    B = np.diag([3.0, np.sqrt(1.2), np.sqrt(0.5)])
    debiased = shrink_slopes(B, S_inv, noise)
    np.testing.assert_allclose(np.diag(debiased @ debiased.T), [8.0, 0.2, 0.0], atol=1e-10)
    capped = shrink_slopes(B, S_inv, noise, threshold=1.5)
    np.testing.assert_allclose(np.diag(capped @ capped.T), [8.0, 1.2 / 3, 0.0], atol=1e-10)
