"""The pure pieces of the AVO loop: the resolution estimate and the scale floor."""

import numpy as np

from sktilt.avo import ParameterResolution


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
