"""Checks of a finished fit: the two-sample tests, location drift, warnings."""

import warnings

import numpy as np
import pytest

from sktilt import AVOSimulatorFitter, GaussianProposal
from sktilt.avo import FitQualityWarning
from sktilt.avo._checks import location_drift
from sktilt.avo._checks import FitVerdict
from sktilt.metrics import classifier_test, energy_test, marginal_ks_test


def test_energy_test_is_calibrated_under_the_null():
    # p-values of a valid permutation test are (super-)uniform: about 5 % below 0.05.
    p = [energy_test(rng.standard_normal((200, 2)), rng.standard_normal((200, 2)), rng,
                     n_permutations=99).p_value
         for rng in (np.random.default_rng(s) for s in range(40))]
    assert np.mean(np.array(p) < 0.05) <= 0.15
    assert 0.3 < np.mean(p) < 0.7


@pytest.mark.parametrize("shift, scale", [(0.3, 1.0), (0.0, 1.5)])
def test_energy_test_sees_location_and_spread(shift, scale):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((500, 2))
    Y = shift + scale * rng.standard_normal((500, 2))
    result = energy_test(X, Y, rng)
    assert result.distinguishable() and result.p_value < 0.01
    assert (result.n_observed, result.n_simulated) == (500, 500)


def test_energy_statistic_matches_its_definition():
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((30, 2)), rng.standard_normal((40, 2)) + 0.5
    s = X.std(0)
    d = lambda A, B: np.linalg.norm(A[:, None] / s - B[None] / s, axis=-1).mean()  # noqa: E731
    expected = 2 * d(X, Y) - d(X, X) - d(Y, Y)
    assert energy_test(X, Y, rng).statistic == pytest.approx(expected, rel=1e-8)


def test_marginal_ks_test_is_calibrated_and_combines_columns():
    from scipy.stats import ks_2samp

    results = [marginal_ks_test(rng.standard_normal((300, 3)), rng.standard_normal((300, 3)),
                                rng) for rng in (np.random.default_rng(s) for s in range(60))]
    p = np.array([r.p_value for r in results])
    assert np.mean(p < 0.05) <= 0.1  # Bonferroni: at most 5 %, conservative
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((400, 2)), rng.standard_normal((500, 2))
    r = marginal_ks_test(X, Y, rng)
    single = [ks_2samp(X[:, j], Y[:, j]) for j in range(2)]
    assert r.statistic == pytest.approx(max(t.statistic for t in single))
    assert r.p_value == pytest.approx(min(1, 2 * min(t.pvalue for t in single)))
    assert (r.n_observed, r.n_simulated, r.method) == (400, 500, "marginal KS")


def test_marginal_ks_test_sees_a_spread_change_on_ten_thousand_rows():
    # (g-and-k fits 10 SE off the MLE differ from the data like this; on 10 000
    # observations the energy test's 2 000 rows gave p = 0.05-0.1 there)
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((10_000, 1)), 1.2 * rng.standard_normal((10_000, 1))
    assert marginal_ks_test(X, Y, rng).p_value < 1e-4


def _crossing_lines(n, rng):
    # x2 = +-x1 (+ a little noise): nearly the mean, covariance and marginals of
    # N(0, I), but all the mass near two lines
    u = rng.standard_normal(n)
    return np.c_[u, rng.choice([-1.0, 1.0], n) * u + 0.1 * rng.standard_normal(n)]


def test_classifier_test_p_value_is_calibrated_under_the_null():
    from sklearn.linear_model import LogisticRegression

    p = np.array([classifier_test(rng.standard_normal((200, 3)), rng.standard_normal((150, 3)),
                                  rng, classifier=LogisticRegression()).p_value
                  for rng in (np.random.default_rng(s) for s in range(300))])
    # exact and discrete: at most 5 % below 0.05 (binomial SE 1.3 %)
    assert np.mean(p < 0.05) <= 0.08 and np.mean(p < 0.5) > 0.3
    rng = np.random.default_rng(0)
    default = [classifier_test(rng.standard_normal((200, 2)), rng.standard_normal((200, 2)),
                               rng) for _ in range(20)]
    assert sum(t.p_value < 0.05 for t in default) <= 3
    assert all(0.35 < t.statistic < 0.65 for t in default)
    assert (default[0].n_observed, default[0].method) == (100, "classifier")


def test_classifier_test_sees_dependence_the_marginals_do_not():
    rng = np.random.default_rng(0)
    X, Y = _crossing_lines(300, rng), rng.standard_normal((300, 2))
    result = classifier_test(X, Y, rng)
    assert result.p_value < 1e-6 and result.statistic > 0.7
    assert marginal_ks_test(X, Y, rng).p_value > 0.01
    with pytest.raises(ValueError, match="at least 4 rows on each side, got 3 and 300"):
        classifier_test(X[:3], Y, rng)


def _gaussian_2d(theta, random_state):
    return theta + random_state.standard_normal(2)


def test_a_dependence_misfit_is_reported_by_the_classifier_test():
    rng = np.random.default_rng(0)
    fit = AVOSimulatorFitter(_gaussian_2d, GaussianProposal([0.0, 0.0], [1.0, 1.0]),
                             max_iter=60, random_state=0)
    with pytest.warns(FitQualityWarning, match=r"classifier p-value \d"):
        fit.fit(_crossing_lines(1000, rng) + [1.0, -1.0])
    assert not fit.converged_ and fit.classifier_test_.p_value < 1e-6
    # a model that can produce the data passes the three tests
    good = AVOSimulatorFitter(_gaussian_2d, GaussianProposal([0.0, 0.0], [1.0, 1.0]),
                              max_iter=60, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FitQualityWarning)
        good.fit(rng.standard_normal((1000, 2)) + [1.0, -1.0])
    assert good.converged_ and good.classifier_test_.p_value > 0.01
    np.testing.assert_allclose(good.theta_, [1.0, -1.0], atol=0.15)


def test_a_marginal_misfit_alone_makes_the_fit_unconverged():
    from sktilt.metrics import TwoSampleTest

    quiet = TwoSampleTest(0.01, 0.4, 2000, 2000)
    loud = TwoSampleTest(0.05, 1e-6, 10_000, 10_000, "marginal KS")
    verdict = FitVerdict(quiet, loud, None, np.zeros(2), [])
    assert verdict.distinguishable and not verdict.converged
    assert "marginal KS p-value 1e-06" in verdict.problems()[0]
    assert FitVerdict(quiet, quiet, None, np.zeros(2), []).converged
    c2st = TwoSampleTest(0.6, 1e-5, 500, 500, "classifier")
    verdict = FitVerdict(quiet, quiet, c2st, np.zeros(2), [])
    assert not verdict.converged and "classifier p-value 1e-05" in verdict.problems()[0]


def test_location_drift_of_a_ramp_and_of_noise():
    t = np.arange(400, dtype=float)[:, None]
    # a ramp of slope 0.01 per update travels 0.01 * 100 over the last quarter
    np.testing.assert_allclose(location_drift(0.01 * t, np.array([0.5])), [2.0])
    noise = np.random.default_rng(0).standard_normal((400, 1)) * 0.1
    assert location_drift(noise, np.array([0.5]))[0] < 0.2
    assert np.isnan(location_drift(t[:5], np.array([1.0]))).all()


def _ignores_second(theta, random_state):
    # theta[1] does not enter the data: it cannot be resolved
    return theta[:1] + random_state.standard_normal(1)


def test_an_unidentified_parameter_is_named():
    X = np.random.default_rng(0).normal(1.0, 1.0, size=(2000, 1))
    fit = AVOSimulatorFitter(_ignores_second, GaussianProposal([0.0, 0.0], [1.0, 1.0]),
                             max_iter=60, random_state=0)
    # a point fit names it through its standard errors (infinite), a population fit
    # through its resolution estimate
    with pytest.warns(FitQualityWarning, match=r"do not identify parameter\(s\) \[1\]"):
        fit.fit(X)
    assert fit.unresolved_parameters_ == [1]
    assert np.isinf(fit.scale_floor_[1]) and np.isfinite(fit.scale_floor_[0])


def _gaussian(theta, random_state):
    return theta + random_state.standard_normal(1)


def test_a_simulator_that_cannot_reproduce_the_data_is_reported():
    # exponential data, a unit-variance Gaussian location model: no theta matches
    X = np.random.default_rng(0).exponential(2.0, size=(2000, 1))
    fit = AVOSimulatorFitter(_gaussian, GaussianProposal([0.0], [1.0]), max_iter=60,
                             random_state=0)
    with pytest.warns(FitQualityWarning, match="can be told apart"):
        fit.fit(X)
    assert not fit.converged_ and fit.two_sample_.p_value < 0.01


def test_held_out_check_and_a_good_fit_stays_quiet():
    X = np.random.default_rng(0).normal(1.0, 1.0, size=(2000, 1))
    fit = AVOSimulatorFitter(_gaussian, GaussianProposal([0.0], [1.0]), max_iter=100,
                             random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FitQualityWarning)
        fit.fit(X[:1500], X_val=X[1500:])
    assert fit.converged_ and fit.two_sample_.n_observed == 500
    assert fit.classifier_test_ is None  # one feature: the KS test suffices
    assert fit.marginal_test_.n_observed == 500 and fit.marginal_test_.p_value > 0.01
    assert abs(fit.theta_[0] - 1.0) < 0.1
    with pytest.raises(ValueError, match="X has 2 features"):
        AVOSimulatorFitter(_gaussian, GaussianProposal([0.0], [1.0]),
                           max_iter=1).fit(X, X_val=np.zeros((10, 2)))


def test_a_location_still_moving_is_a_convergence_warning():
    # a moving location is scikit-learn's ConvergenceWarning too, exported from sktilt
    # (filtered like any unconverged estimator's); the other problems stay apart
    from sklearn.exceptions import ConvergenceWarning

    from sktilt import FitConvergenceWarning
    from sktilt import FitQualityWarning as TopLevel
    from sktilt.avo._checks import FitVerdict
    from sktilt.metrics import TwoSampleTest

    assert issubclass(FitConvergenceWarning, ConvergenceWarning)
    assert issubclass(FitConvergenceWarning, TopLevel) and TopLevel is FitQualityWarning
    passed = TwoSampleTest(1.0, 0.5, 500, 500)
    moving = FitVerdict(passed, passed, None, np.array([2.5, 0.1]), [])
    [(category, message)] = moving.warnings()
    assert category is FitConvergenceWarning and "parameter(s) [0]" in message
    failed = TwoSampleTest(9.0, 1e-6, 500, 500)
    both = FitVerdict(failed, passed, None, np.array([2.5, 0.1]), [], "at theta_")
    categories = [c for c, _ in both.warnings()]
    assert categories == [FitConvergenceWarning, FitQualityWarning]
    assert "simulated at theta_ can be told apart" in both.warnings()[1][1]
    assert FitVerdict(passed, passed, None, np.array([0.2, 0.1]), []).warnings() == []
