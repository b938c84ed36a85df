"""Standard errors of point fits: the moment sandwich against closed forms, and the
estimator's standard errors and intervals against exact MLEs over replicated data."""

import warnings

import numpy as np
import pytest
import torch

from sktilt import AVOSimulatorFitter, FitQualityWarning, FlowProposal, GaussianProposal, Simulator
from sktilt.avo._uncertainty import (
    MomentSolution,
    moment_covariance,
    parameter_covariance,
    with_resolution_fallback,
)
from sktilt.datasets import gaussian_location_mle, gaussian_location_simulator_batch


def test_moment_covariance_is_the_sandwich_with_its_simulation_noise_factor():
    # the slopes' noise N is subtracted from their information: (1/n + c) (A - N)^-1
    rng = np.random.default_rng(0)
    k, p, n_obs, c = 3, 8, 500, 1e-3
    J = 3 * rng.normal(size=(k, p))
    S_inv = np.linalg.inv(np.cov(rng.normal(size=(p, 50))))
    N = 0.1 * np.eye(k)
    cov, unidentified = moment_covariance(J, S_inv, N, n_obs, c)
    expected = (1 / n_obs + c) * np.linalg.inv(J @ S_inv @ J.T - N)
    np.testing.assert_allclose(cov, expected, rtol=1e-8)
    assert not unidentified.any()


def test_a_parameter_without_evidence_is_not_identified():
    # the second parameter's slopes are at their noise level (1.3 times its
    # information; pure noise reaches 1 + 3 sqrt(2 / p)): not identified; the first's
    # stands far above and keeps its variance alone, or more where the unidentified one's
    # slope leaks into it (its unknown variance is taken at the threshold's, a bound)
    N = np.diag([1e-3, 1e-3])
    for second in (0.0, np.sqrt(1.3e-3)):
        J = np.array([[1.0, 0.5], [second, 0.0]])
        cov, unidentified = moment_covariance(J, np.eye(2), N, 1000, 0.0)
        np.testing.assert_array_equal(unidentified, [False, True])
        alone = 1 / (1000 * (1.25 - 1e-3))
        assert alone * (1 - 1e-9) <= cov[0, 0] < 1.5 * alone


def test_parameter_covariance_maps_through_the_box_bijection_by_the_delta_method():
    module = GaussianProposal([0.3, 2.0], [0.1, 0.5], bounds=[(0, 1), None]).build()
    cov_z = np.array([[0.04, 0.01], [0.01, 0.09]])
    solution = MomentSolution(np.zeros(2), cov_z, np.array([False, False]), 1.0)
    with torch.no_grad():
        z = module.loc().clone()
    G = torch.autograd.functional.jacobian(module.transform, z).numpy()
    np.testing.assert_allclose(parameter_covariance(solution, module), G @ cov_z @ G.T,
                               rtol=1e-10)
    solution = MomentSolution(np.zeros(2), cov_z, np.array([False, True]), 1.0)
    cov = parameter_covariance(solution, module)
    assert np.isfinite(cov[0, 0]) and np.isinf(cov[1, 1]) and np.isnan(cov[0, 1])


def test_standard_errors_cover_the_truth_over_replicated_data():
    # 2-D Gaussian location (correlation 0.8), 1 000 observations per data set: the
    # standard errors match the MLE's (sigma / sqrt(n)) and the standardised errors
    # against the truth have the spread of a standard normal
    truth = np.array([0.5, -0.3])
    errors, ratios = [], []
    for seed in range(6):
        X = gaussian_location_simulator_batch(np.tile(truth, (1000, 1)),
                                              np.random.default_rng(50 + seed))
        _, mle_se = gaussian_location_mle(X)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = AVOSimulatorFitter(
                Simulator(gaussian_location_simulator_batch, vectorized=True),
                GaussianProposal([0.0, 0.0], [1.0, 1.0]), max_iter=80,
                random_state=seed).fit(X)
        errors.append((fit.theta_ - truth) / fit.standard_errors_)
        ratios.append(fit.standard_errors_ / mle_se)
        intervals = fit.confidence_intervals(0.95)
        assert intervals.shape == (2, 2)
        np.testing.assert_allclose(intervals.mean(1), fit.theta_)
        np.testing.assert_allclose(np.diff(intervals, axis=1)[:, 0],
                                   2 * 1.959964 * fit.standard_errors_, rtol=1e-5)
        np.testing.assert_allclose(np.sqrt(np.diag(fit.covariance_)), fit.standard_errors_)
    errors, ratios = np.array(errors), np.array(ratios)
    assert np.all((ratios > 0.75) & (ratios < 2.0)), ratios  # the simulation noise adds
    assert 0.4 < np.sqrt(np.mean(errors**2)) < 1.6, errors
    assert np.abs(errors).max() < 3.5


def ignores_second(thetas, random_state):
    """x = theta_0 + N(0, 1); theta_1 has no effect."""
    thetas = np.asarray(thetas, dtype=float)
    return thetas[:, :1] + random_state.standard_normal((len(thetas), 1))


def test_a_parameter_without_effect_gets_an_infinite_interval_and_a_warning():
    X = np.random.default_rng(0).normal(1.0, 1.0, size=(1000, 1))
    fitter = AVOSimulatorFitter(Simulator(ignores_second, vectorized=True),
                                GaussianProposal([0.5, 0.0], [1.0, 1.0]), max_iter=60,
                                random_state=0)
    with pytest.warns(FitQualityWarning, match=r"do not identify parameter\(s\) \[1\]"):
        fitter.fit(X)
    assert np.isfinite(fitter.standard_errors_[0]) and np.isinf(fitter.standard_errors_[1])
    intervals = fitter.confidence_intervals()
    assert np.all(np.isfinite(intervals[0]))
    np.testing.assert_array_equal(intervals[1], [-np.inf, np.inf])


def test_intervals_need_a_point_fit_and_a_valid_level():
    X = np.random.default_rng(0).normal(1.0, 1.0, size=(200, 1))
    fitter = AVOSimulatorFitter(Simulator(ignores_second, vectorized=True),
                                FlowProposal([0.5, 0.0], [1.0, 1.0]), gamma=0.0, max_iter=3,
                                batch_size=32, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitter.fit(X)
    assert fitter.standard_errors_ is None
    with pytest.raises(ValueError, match="point fit"):
        fitter.confidence_intervals()


def recording(thetas, random_state):
    recording.calls.append(np.array(thetas))
    return np.asarray(thetas)[:, :1] + random_state.standard_normal((len(thetas), 1))


recording.calls = []


@pytest.mark.parametrize("gamma", [1.0, 0.0])
def test_the_self_check_simulates_at_theta_for_a_point_fit(gamma):
    # a point fit reports theta_, so its check must see theta_'s data, not the smear of
    # the proposal's spread; a population fit's check draws from the proposal
    recording.calls.clear()
    X = np.random.default_rng(0).normal(1.0, 1.0, size=(300, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = AVOSimulatorFitter(Simulator(recording, vectorized=True),
                                 GaussianProposal([0.5], [1.0]), gamma=gamma, max_iter=4,
                                 batch_size=32, random_state=0).fit(X)
    checked = np.concatenate(recording.calls)[-len(X):]  # the check ran last (in chunks)
    assert len(checked) == len(X)
    if gamma > 0:
        np.testing.assert_array_equal(checked, np.tile(fit.theta_, (len(X), 1)))
    else:
        assert checked.std() > 0.1


def test_identification_is_judged_per_parameter_whatever_the_window():
    # the same simulator seen through a diagonal and through a rotated (full) window:
    # the covariance in z and the unidentified parameter are the same
    J_z = np.array([[2.0, 1.0, 0.5], [0.0, 0.0, 0.0]])  # z_1 has no effect
    S_inv = np.eye(3)
    noise_z = 1e-3 * np.eye(2)
    results = []
    for W in (np.diag([0.5, 2.0]), np.linalg.cholesky(np.array([[1.0, 0.9], [0.9, 1.0]]))):
        J_u = W.T @ J_z  # d m / d u = W^T d m / d z
        noise_u = W.T @ noise_z @ W
        results.append(moment_covariance(J_u, S_inv, noise_u, 1000, 0.0, W))
        np.testing.assert_array_equal(results[-1][1], [False, True])
    np.testing.assert_allclose(results[0][0][0, 0], results[1][0][0, 0], rtol=1e-6)


def test_the_running_regression_stands_in_where_the_polish_sees_no_evidence():
    # the polish's slopes left both parameters unidentified; the running regression
    # (slopes B per unit z, q features) pins them: its sandwich (1/n + c)(B S^-1 B^T -
    # q (Z^T Z)^-1)^-1 replaces the polish's, with the polish's simulation noise c
    rng = np.random.default_rng(1)
    k, q, n_obs, c = 2, 7, 2000, 2e-3
    B = rng.normal(size=(k, q))
    S_inv = np.linalg.inv(np.cov(rng.normal(size=(q, 60))) + np.eye(q))
    zz_inv = 1e-3 * np.eye(k)
    W = np.diag([0.3, 0.2])
    polish = MomentSolution(np.zeros(k), np.full((k, k), np.inf), np.ones(k, bool), 1.0,
                            mean_noise=c, window=W)
    fallback = with_resolution_fallback(polish, (zz_inv, B, S_inv, q), n_obs)
    expected = (1 / n_obs + c) * np.linalg.inv(B @ S_inv @ B.T - q * zz_inv)
    np.testing.assert_allclose(fallback.covariance, expected, rtol=1e-8)
    assert not fallback.unidentified.any()
    # it never takes away what the polish identified, nor stands in for nothing
    B_flat = B.copy()
    B_flat[0] = 0.0  # the regression sees no effect of the first parameter
    partly = MomentSolution(np.zeros(k), np.eye(k), np.array([False, True]), 1.0,
                            mean_noise=c, window=W)
    assert with_resolution_fallback(partly, (zz_inv, B_flat, S_inv, q), n_obs) is partly
    assert with_resolution_fallback(polish, (zz_inv, 0 * B, S_inv, q), n_obs) is polish
    assert with_resolution_fallback(polish, None, n_obs) is polish


def _linear_solution(rng, k=2, p=6, c=1e-3, n_obs=400):
    J = rng.normal(size=(k, p))
    S = np.cov(rng.normal(size=(p, 4 * p))) + 0.5 * np.eye(p)
    S_inv = np.linalg.inv(S)
    cov = (1 / n_obs + c) * np.linalg.inv(J @ S_inv @ J.T)
    return MomentSolution(np.zeros(k), cov, np.zeros(k, bool), 1.0, slopes=J,
                          S_inv=S_inv, mean_noise=c), S


def test_the_moment_check_holds_its_level_and_sees_a_point_off_the_root():
    # features m(z) = m0 + J^T z; the solve's point is the root up to the model's own
    # noise (covariance c S); n fresh simulations at the point have mean m(point) plus
    # S / n noise. At the root the statistic is chi^2_k (rejections at 1 %: about 1 %);
    # with as many simulations as observations, 5 standard errors off along one
    # parameter it rejects nearly always (noncentrality 25).
    from sktilt.avo._uncertainty import moment_check

    rng = np.random.default_rng(0)
    solution, S = _linear_solution(rng)
    L, n, k = np.linalg.cholesky(S), 400, 2
    target = np.zeros(6)
    se = np.sqrt(np.diag(solution.covariance))

    def p_value(offset):
        model_error = np.sqrt(solution.mean_noise) * L @ rng.normal(size=6)
        mean = target + solution.slopes.T @ offset + model_error
        simulated = mean + rng.normal(size=(n, 6)) @ L.T
        return moment_check(solution, target, simulated).p_value

    at_root = np.array([p_value(np.zeros(k)) for _ in range(2000)])
    assert 0.004 < np.mean(at_root < 0.01) < 0.02  # binomial sd 0.0022 around 0.01
    assert abs(np.mean(at_root < 0.5) - 0.5) < 0.04
    off = np.array([p_value(np.array([5 * se[0], 0.0])) for _ in range(200)])
    assert np.mean(off < 0.01) > 0.8
    # noiseless simulations one standard error off: the step leads back by one
    exact = np.tile(target + solution.slopes.T @ [se[0], 0.0], (20, 1))
    np.testing.assert_allclose(moment_check(solution, target, exact).step, [-1.0, 0.0],
                               atol=1e-8)


def test_the_moment_check_needs_slopes_and_simulations():
    from sktilt.avo._uncertainty import moment_check

    solution, _ = _linear_solution(np.random.default_rng(1))
    assert moment_check(solution, np.zeros(6), np.zeros((5, 6))) is None
    bare = MomentSolution(np.zeros(2), np.eye(2), np.zeros(2, bool), 1.0)
    assert moment_check(bare, np.zeros(6), np.zeros((100, 6))) is None
