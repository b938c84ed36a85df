"""The final polish of a point fit: its pure pieces against closed forms, and the
polished fit against the exact MLE of a location and a spread."""

import warnings

import numpy as np
import pytest
from sklearn.base import clone

from sktilt import (AVOSimulatorFitter, Critic, FlowProposal, GaussianProposal,
                    MomentRefinement, Simulator)
from sktilt.avo._polish import (
    PRIOR_SD,
    LocalFeatureModel,
    PolishSamples,
    curvature_shrinkage,
    moment_location,
    polynomial_design,
)


def test_polynomial_design_lists_every_monomial():
    np.testing.assert_allclose(polynomial_design(np.array([[2.0, 3.0]])),
                               [[1, 2, 3, 4, 6, 9]])
    assert polynomial_design(np.zeros((5, 3)), 1).shape == (5, 4)
    assert polynomial_design(np.zeros((5, 3)), 2).shape == (5, 10)


def test_moment_location_is_the_weighted_least_squares_step_of_a_linear_model():
    # features = c + u B + e, e ~ N(0, S): with the prior N(0, s^2 I) the answer is
    # (n B S^-1 B^T + I / s^2)^-1 n B S^-1 (target - c), its covariance the inverse precision
    rng = np.random.default_rng(0)
    k, p, n_sim, n_obs = 2, 5, 200_000, 1000
    B, c = 0.1 * rng.normal(size=(k, p)), rng.normal(size=p)
    A = rng.normal(size=(p, p))
    S = A @ A.T / p + np.eye(p)
    u = rng.standard_normal((n_sim, k))
    F = c + u @ B + rng.multivariate_normal(np.zeros(p), S, n_sim)
    target = c + np.array([0.8, -0.5]) @ B
    v, cov = moment_location(LocalFeatureModel.fit(u, F), target, n_obs)
    S_inv = np.linalg.inv(S)
    precision = n_obs * B @ S_inv @ B.T + np.eye(k) / PRIOR_SD**2
    expected = np.linalg.solve(precision, n_obs * B @ S_inv @ (target - c))
    np.testing.assert_allclose(v, expected, rtol=0.1)
    np.testing.assert_allclose(cov, np.linalg.inv(precision), rtol=0.1)


def test_moment_location_recovers_a_curved_model_where_a_linear_one_is_biased():
    # mean feature = (1 + u)^2 (one parameter, one feature): the quadratic model is exact
    rng = np.random.default_rng(1)
    u = rng.standard_normal((50_000, 1))
    F = (1 + u) ** 2 + 0.1 * rng.standard_normal((50_000, 1))
    v, _ = moment_location(LocalFeatureModel.fit(u, F), np.array([(1 + 0.6) ** 2]), 10_000)
    assert v[0] == pytest.approx(0.6, abs=0.01)
    linear, _ = moment_location(LocalFeatureModel.fit(u, F, degree=1),
                                np.array([(1 + 0.6) ** 2]), 10_000)
    assert abs(linear[0] - 0.6) > 0.2


def test_curvature_shrinkage_drops_noise_curvature_and_keeps_real_curvature():
    # the factor is max(0, 1 - dof / Wald statistic) on the quadratic block: about 0 when
    # the features are linear in u (the statistic is chi-squared with dof degrees), about
    # 1 when the curvature stands far above its noise
    rng = np.random.default_rng(3)
    k, p, n = 3, 20, 20_000
    u = rng.standard_normal((n, k))
    B = rng.normal(size=(k, p))
    linear = u @ B + rng.standard_normal((n, p))
    curved = linear + 0.5 * (u[:, :1] ** 2)
    factors = []
    for F in (linear, curved):
        D = polynomial_design(u)
        coef, *_ = np.linalg.lstsq(D, F, rcond=None)
        R = F - D @ coef
        S_inv = np.linalg.inv(R.T @ R / (n - D.shape[1]))
        scale = curvature_shrinkage(coef, np.linalg.inv(D.T @ D), S_inv, k)
        np.testing.assert_array_equal(scale[:1 + k], 1.0)  # constant and slopes untouched
        assert np.all(scale[1 + k:] == scale[-1])  # one factor on the whole block
        factors.append(scale[-1])
    assert factors[0] < 0.3
    assert factors[1] > 0.95


def test_tied_features_leave_the_local_model_and_its_covariance_unchanged():
    # a Poisson count ties cut points: identical columns must not count as features
    from sktilt.avo._uncertainty import moment_covariance

    rng = np.random.default_rng(5)
    u = rng.standard_normal((3000, 2))
    F = u @ np.array([[0.2, 0.1, 0.0], [0.0, 0.05, 0.1]]) + rng.standard_normal((3000, 3))
    results = []
    for features in (F, np.concatenate([F, F[:, :2], F[:, :1]], axis=1)):
        model = LocalFeatureModel.fit(u, features)
        v = np.array([0.3, -0.2])
        results.append((model.slope_noise(v), *moment_covariance(
            model.jacobian(v), model.S_inv, model.slope_noise(v), 1000, 1e-4)))
    for plain, tied in zip(*results):
        np.testing.assert_allclose(tied, plain, rtol=1e-6)


def polish_errors(X, simulator_batch, mle, se, n_sim, seeds=range(4)):
    """Errors (in MLE standard errors) of polishes started 1 SE off the MLE, each on
    ``n_sim`` simulations in a window 3 SE wide, one row per seed."""
    errors = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        start = mle + se * rng.standard_normal(len(mle))
        window = np.diag(3 * se)
        z = start + rng.standard_normal((n_sim, len(mle))) @ window
        samples = PolishSamples(X)
        samples.add(z, simulator_batch(z, rng))
        errors.append((start + samples.solve(start, window).shift - mle) / se)
    return np.array(errors)


def test_the_polish_of_a_10d_gaussian_location_meets_the_mle():
    # sbibm's Gaussian linear model (x = theta + N(0, 0.1 I), 10-D, MLE the mean): from 1
    # standard error off, polishes on 60 000 simulations in a 3-SE window end within the
    # MLE's standard error (0.61 SE RMS over these 4 seeds). Without the shrinkage of the
    # 55 quadratic terms (factor 1) the same solves end 1.01 SE RMS off
    from sktilt.datasets import gaussian_linear_mle, gaussian_linear_simulator_batch

    X = gaussian_linear_simulator_batch(np.tile(np.linspace(-1, 1, 10), (1000, 1)),
                                        np.random.default_rng(7))
    mle, se = gaussian_linear_mle(X)
    errors = polish_errors(X, gaussian_linear_simulator_batch, mle, se, 60_000)
    assert np.sqrt(np.mean(np.square(errors))) < 0.8
    assert np.all(np.abs(errors) < 2.5)


def test_the_polish_sees_the_g_and_k_tail_weight_through_tail_cut_points():
    # ELFI's g-and-k, 10 000 observations (every tail level has 50 beyond it), MLE by
    # quantile inversion: from 1 SE off, polishes on 120 000 simulations in a 3-SE window
    # end within the MLE's standard error (0.75 SE RMS over these 4 seeds). With 3 000
    # observations the 0.5 % and 1 % levels are left out (polish_levels), and the same
    # polishes end 0.98 and 0.84 SE RMS off on two data sets
    from sktilt.datasets import GK_TRUE_THETA, gk_mle, gk_simulator_batch

    X = gk_simulator_batch(np.tile(GK_TRUE_THETA, (10_000, 1)), np.random.default_rng(11))
    mle, se = gk_mle(X)
    errors = polish_errors(X, gk_simulator_batch, mle, se, 120_000)
    assert np.sqrt(np.mean(np.square(errors))) < 0.9
    assert np.all(np.abs(errors) < 2.5)


def normal_simulator_batch(thetas, random_state):
    """x = theta_0 + theta_1 N(0, 1): a location and a spread."""
    thetas = np.asarray(thetas, dtype=float)
    return thetas[:, :1] + thetas[:, 1:2] * random_state.standard_normal((len(thetas), 1))


def test_the_polish_takes_fits_started_off_to_the_mle_of_location_and_spread():
    # N(mu, sigma): the MLE is the mean and the population std. Each fit starts 3 SE off
    # in both and is too short to travel; over 6 datasets the polish (120 000
    # simulations, 12 n_obs) must bring the RMS error under 1 SE, each fit under 2.5 SE.
    # With 10 000 observations the batch grows to 1 000 polished or not, so the two
    # fits are the same up to the polish.
    errors, starts = [], []
    for seed in range(6):
        X = np.random.default_rng(100 + seed).normal(1.0, 2.0, size=(10_000, 1))
        mle = np.array([X.mean(), X.std()])
        se = mle[1] / np.sqrt([len(X), 2 * len(X)])
        fitter = AVOSimulatorFitter(
            Simulator(normal_simulator_batch, vectorized=True),
            GaussianProposal(mle + 3 * se * np.array([1, -1]), 3 * se, min_scale=3 * se),
            max_iter=10, batch_size=64, critic=Critic(n_steps=2),
            refinement=MomentRefinement(polish_simulations=120_000), random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            unpolished = clone(fitter).set_params(
                refinement__polish_simulations=0).fit(X)
            polished = fitter.fit(X)
        assert unpolished.polish_shift_ is None
        assert polished.n_simulations_ == unpolished.n_simulations_ + 120_000
        np.testing.assert_allclose(polished.polish_shift_,
                                   polished.theta_ - unpolished.theta_, rtol=1e-6)
        starts.append((unpolished.theta_ - mle) / se)
        errors.append((polished.theta_ - mle) / se)
    starts, errors = np.array(starts), np.array(errors)
    assert np.all(np.abs(starts).max(1) > 2)  # the fits alone stayed off
    assert np.sqrt(np.mean(errors**2)) < 1.0
    assert np.abs(errors).max() < 2.5


def test_polish_samples_need_as_many_simulations_as_the_quadratic_model_has_terms():
    # max(n_terms, 0.3 p) n_obs: a 4-parameter model has 15 terms, 11 cut points on one
    # column are 11 features (0.3 p = 3.3); ten parameters have 66 terms
    # (polish_levels: 11 of them with 1 000 observations)
    samples = PolishSamples(np.random.default_rng(0).normal(size=(1000, 1)))
    assert samples.features.n_features == 11
    assert samples.needed(4) == 15_000
    assert samples.needed(1) == 3_300
    assert samples.needed(10) == 66_000
    # the model's precision against the data's: n_samples / (n_terms n_obs)
    assert samples.model_precision(3_000, 4) == pytest.approx(0.2)
    assert samples.model_precision(66_000, 10) == pytest.approx(1.0)


def test_an_auto_polish_tops_a_four_parameter_fit_up_to_its_terms():
    # g-and-k with 1 000 observations: a short fit pools far fewer than the 15 n_obs
    # its quadratic model needs, and "auto" draws the rest (the old 5.1 n_obs rule
    # would have stopped at 5 100)
    from sktilt.datasets import GK_TRUE_THETA, gk_simulator_batch

    X = gk_simulator_batch(np.tile(GK_TRUE_THETA, (1000, 1)), np.random.default_rng(3))
    fitter = AVOSimulatorFitter(Simulator(gk_simulator_batch, vectorized=True),
                                GaussianProposal(GK_TRUE_THETA, 0.1), max_iter=8,
                                critic=Critic(n_steps=2), random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        unpolished = clone(fitter).set_params(refinement__polish_simulations=0).fit(X)
        polished = fitter.fit(X)
    assert unpolished.n_simulations_ < 5000
    assert polished.polish_shift_ is not None
    updates = [h["n_simulations"] for h in polished.history_]
    pooled = sum(updates[6:])  # the last quarter's two updates, 1 000 each
    assert pooled == 2000
    warm_up, check = 128, len(X)
    extra = polished.n_simulations_ - sum(updates) - warm_up - check
    assert extra == 15_000 - pooled


def test_a_polished_fit_grows_its_batch_to_a_thousand_and_a_set_batch_size_is_kept():
    # the automatic batch grows to n_obs // 10 (here below its start, 128); a polished
    # fit regresses the last quarter's simulations and takes at least 1 000 per update;
    # a batch_size the user sets is every update's
    X = np.random.default_rng(0).normal(1.0, 2.0, size=(1000, 1))
    fitter = AVOSimulatorFitter(Simulator(normal_simulator_batch, vectorized=True),
                                GaussianProposal([1.0, 2.0], 0.1), max_iter=8,
                                critic=Critic(n_steps=2), random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        polished = clone(fitter).fit(X)
        fixed = clone(fitter).set_params(batch_size=64).fit(X)
        unpolished = fitter.set_params(refinement__polish_simulations=0).fit(X)
    assert polished.history_[-1]["n_simulations"] == 1000
    assert unpolished.history_[-1]["n_simulations"] == 128
    assert [h["n_simulations"] for h in fixed.history_] == [64] * 8


@pytest.mark.parametrize("settings", [
    {"proposal": FlowProposal([0.0], [1.0])},
    {"proposal": GaussianProposal([0.0], [1.0]), "gamma": 0.0},
])
def test_a_polish_is_for_point_fits_only(settings):
    fitter = AVOSimulatorFitter(Simulator(normal_simulator_batch, vectorized=True),
                                max_iter=2,
                                refinement=MomentRefinement(polish_simulations=5000),
                                **settings)
    with pytest.raises(ValueError, match=r"MomentRefinement\(polish_simulations=5000\) "
                                         "refines a point fit"):
        fitter.fit(np.random.default_rng(0).normal(size=(100, 1)))


@pytest.mark.parametrize("replicate", [0, 6, 9])
def test_a_weakly_seen_direction_does_not_carry_the_point_off(replicate):
    # 2-D Gaussian location, correlation 0.8, 2 000 observations, 20 000 simulations:
    # along (1, 1) the polish's slopes barely stand above their noise, and their
    # errors-in-variables correction divided the features' noise by sqrt(1 - 1/lambda)
    # ~ 0.4 there. These three data sets' fits ended 2.5-3.9 MLE standard errors off
    # with no check failing; the correction now stops at the evidence threshold
    from sktilt.datasets import gaussian_location_mle, gaussian_location_simulator_batch

    X = gaussian_location_simulator_batch(np.tile([0.5, -0.3], (2_000, 1)),
                                          np.random.default_rng(10_000 + replicate))
    mle, se = gaussian_location_mle(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = AVOSimulatorFitter(
            Simulator(gaussian_location_simulator_batch, vectorized=True),
            GaussianProposal([0.0, 0.0], [1.0, 1.0]), max_simulations=20_000,
            random_state=replicate).fit(X)
    assert np.all(np.abs(fit.theta_ - mle) < 2 * se)


def linearised_error_ratio(levels, n_obs=2000, rho=0.8, replicates=2000, seed=3):
    """Real spread of the polish's moment estimator over replicated 2-D Gaussian data
    sets (location model, correlation ``rho``), against its sandwich standard error,
    with the features at ``levels`` of each data set's own quantiles. The model's mean
    features, slopes and covariance are exact (normal CDFs); only the cut points' noise
    differs between the two."""
    from scipy.stats import multivariate_normal, norm

    from sktilt.avo._resolution import DistributionFeatures

    C = np.array([[1.0, rho], [rho, 1.0]])
    q, m = norm.ppf(levels), len(levels)
    within = np.minimum.outer(levels, levels) - np.outer(levels, levels)
    both = multivariate_normal([0.0, 0.0], C)
    cross = np.array([[both.cdf([a, b]) for b in q] for a in q]) - np.outer(levels, levels)
    S_inv = np.linalg.inv(np.block([[within, cross], [cross.T, within]]))
    rng = np.random.default_rng(seed)
    errors = []
    for _ in range(replicates):
        X = rng.standard_normal((n_obs, 2)) @ np.linalg.cholesky(C).T
        features = DistributionFeatures(X, levels)
        # the indicators come level by level, both columns at each: regroup by column
        target = features.transform(X).mean(0)[:2 * m].reshape(m, 2).T.ravel()
        cuts = features.cuts.T  # (2, m)
        J = np.zeros((2, 2 * m))
        J[0, :m], J[1, m:] = -norm.pdf(cuts[0]), -norm.pdf(cuts[1])
        A = J @ S_inv @ J.T
        errors.append(np.linalg.solve(A, J @ S_inv @ (target - norm.cdf(cuts).ravel())))
    J = np.zeros((2, 2 * m))
    J[0, :m], J[1, m:] = -norm.pdf(q), -norm.pdf(q)
    sandwich = np.sqrt(np.diag(np.linalg.inv(J @ S_inv @ J.T)) / n_obs)
    return np.std(errors, axis=0) / sandwich


def test_polish_levels_keep_the_sandwich_honest_where_few_observations_lie_beyond():
    # A sample quantile with 10 or 20 observations beyond it errs more than its linear
    # (Bahadur) approximation: with the levels 0.5 % and 1 % at 2 000 observations the
    # estimator's real spread exceeds its standard error by about 7 % here; the levels
    # kept (50 observations or more beyond each) leave about 3 % (+-1 % of noise)
    from sktilt.avo._polish import MIN_TAIL_COUNT, POLISH_QUANTILES, polish_levels

    kept = polish_levels(2000)
    assert np.all(np.minimum(kept, 1 - kept) * 2000 >= MIN_TAIL_COUNT)
    assert np.array_equal(polish_levels(20_000), POLISH_QUANTILES)
    assert np.allclose(polish_levels(100), [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    honest = np.mean(linearised_error_ratio(kept, replicates=4000))
    every = np.mean(linearised_error_ratio(POLISH_QUANTILES, replicates=4000))
    assert honest < 1.035 and every - honest > 0.025
