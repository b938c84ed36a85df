"""max_simulations: the plan of a fit's simulations and the whole fit within it."""

import warnings

import numpy as np
import pytest

from sktilt import AVOSimulatorFitter, GaussianProposal, Simulator
from sktilt import FitConvergenceWarning
from sktilt.avo._budget import MIN_BATCH, growing_batches, plan_simulations
from sktilt.avo._finish import MIN_MODEL_PRECISION
from sktilt.datasets import GK_TRUE_THETA, gk_simulator_batch, poisson_simulator_batch


def test_the_automatic_schedule_grows_over_the_third_quarter():
    b = growing_batches(300, 128, 1000)
    assert np.all(b[:150] == 128) and np.all(b[225:] == 1000)
    assert np.all(np.diff(b) >= 0)


@pytest.mark.parametrize("budget", [200_000, 60_000, 20_000, 5_000, 1_000])
@pytest.mark.parametrize("batch_size", [None, 64])
@pytest.mark.parametrize("polished", [True, False])
def test_a_plan_stays_within_its_budget(budget, batch_size, polished):
    plan = plan_simulations(max_iter=300, batch_size=batch_size, n_obs=20_000,
                            n_check=10_000, polished=polished, max_simulations=budget)
    spent = plan.warm_up + plan.batches.sum()
    assert spent + plan.n_check <= budget
    assert plan.n_check <= max(100, budget // 10)
    if polished:  # the polish keeps its share
        assert plan.polish_room(spent) >= 0.3 * (budget - plan.n_check) - 1
    if batch_size is not None:
        assert np.all(plan.batches == batch_size)
    else:
        assert plan.batches.min() >= MIN_BATCH


def test_without_a_budget_the_schedule_is_the_automatic_one():
    plan = plan_simulations(max_iter=300, batch_size=None, n_obs=20_000, n_check=10_000,
                            polished=True, max_simulations=None)
    np.testing.assert_array_equal(plan.batches, growing_batches(300, 128, 1500))
    assert plan.n_check == 10_000 and plan.polish_room(10**9) is None


def test_a_budget_too_small_for_a_fit_names_the_parameter_and_the_fix():
    with pytest.raises(ValueError, match=r"max_simulations=300 leaves room for \d+ "
                                         "updates.*Raise max_simulations"):
        plan_simulations(max_iter=300, batch_size=64, n_obs=1000, n_check=1000,
                         polished=True, max_simulations=300)


def flaky_gk(thetas, random_state):
    """The g-and-k with a tenth of its simulations failing (NaN rows)."""
    X = gk_simulator_batch(thetas, random_state)
    X[random_state.uniform(size=len(X)) < 0.1] = np.nan
    return X


@pytest.mark.parametrize("budget", [8_000, 30_000])
def test_the_whole_fit_stays_within_max_simulations(budget):
    # polish, re-centred rounds, self-check and failed simulations included
    X = gk_simulator_batch(np.tile(GK_TRUE_THETA, (2000, 1)), np.random.default_rng(0))
    fitter = AVOSimulatorFitter(Simulator(flaky_gk, vectorized=True),
                                GaussianProposal([2.5, 1.5, 1.0, 0.3], [0.5, 0.5, 0.5, 0.2]),
                                max_iter=100, max_simulations=budget, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitter.fit(X)
    assert fitter.n_failed_simulations_ > 0
    assert 0.7 * budget <= fitter.n_simulations_ <= budget
    assert fitter.standard_errors_ is not None


def test_a_smaller_budget_costs_precision_not_validity():
    # Poisson rate, 5 000 observations, 150 updates: at 15 000 simulations the standard
    # error grows (the simulation noise) and the interval still holds the MLE's
    # neighbourhood
    X = np.random.default_rng(3).poisson(7.0, size=(5000, 1)).astype(float)
    ses = []
    for budget in (15_000, 60_000):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = AVOSimulatorFitter(Simulator(poisson_simulator_batch, vectorized=True),
                                     GaussianProposal([np.log(5.0)], [1.0]), max_iter=150,
                                     max_simulations=budget, random_state=0).fit(X)
        lam_se = np.sqrt(X.mean() / len(X)) / X.mean()  # the MLE's, in log(lambda)
        assert abs(fit.theta_[0] - np.log(X.mean())) < 4 * fit.standard_errors_[0]
        assert fit.standard_errors_[0] >= 0.9 * lam_se
        ses.append(fit.standard_errors_[0])
    assert ses[0] > ses[1]


def _poisson_fit(budget, **params):
    X = np.random.default_rng(3).poisson(7.0, size=(5000, 1)).astype(float)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = AVOSimulatorFitter(Simulator(poisson_simulator_batch, vectorized=True),
                                 GaussianProposal([np.log(5.0)], [1.0]), max_iter=150,
                                 max_simulations=budget, random_state=0, **params).fit(X)
    return fit, [str(w.message) for w in caught if issubclass(w.category,
                                                              FitConvergenceWarning)]


def test_a_budget_that_starves_the_polish_says_so_and_names_a_budget_that_would_not():
    # 5 000 observations, one parameter: the quadratic model has 3 terms, so 15 000
    # simulations make it as precise as the data; a 5 000 budget gives the polish about
    # 2 000 (precision ~0.15 < MIN_MODEL_PRECISION), a 20 000 budget about 8 000
    starved, messages = _poisson_fit(5_000)
    assert not starved.converged_
    (message,) = [m for m in messages if "as precise as the observations" in m]
    suggested = int(message.split("max_simulations to about ")[1].split(".")[0])
    assert 5_000 < suggested <= 5_000 * MIN_MODEL_PRECISION / 0.1
    # the rate stays identified: the running regression bounds its information, so its
    # interval is finite, wider than the MLE's and holds it
    lam_se = np.sqrt(7.0 / 5000) / 7.0  # the MLE's, in log(lambda)
    assert lam_se <= starved.standard_errors_[0] < 10 * lam_se
    lo, hi = starved.confidence_intervals()[0]
    assert lo < np.log(np.random.default_rng(3).poisson(7.0, size=5000).mean()) < hi
    fed, messages = _poisson_fit(20_000)
    assert not any("as precise as the observations" in m for m in messages)
    assert fed.converged_
