"""Constrained tilts ``q ∝ p exp(beta f + lambda . g)`` against closed forms.

A standard normal base with linear ``f = a.x`` and ``g_j = b_j.x``: every tilt is
``N(mu, I)`` with ``KL = |mu|^2 / 2``, so the constrained optimum is the ``mu``
maximising ``a.mu`` subject to ``|mu|^2 <= 2C`` and ``b_j.mu (op) c_j`` -- solved here by
scipy's SLSQP, independently of the tuner's dual.
"""

import warnings

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from sktilt import BoltzmannTuner, LatentSampler, LinearCriterion
from sktilt.tilt._constraints import check_constraints, solve_reference

A = np.array([1.0, 0.0, 0.0])
BASE = LatentSampler(torch.nn.Identity(), latent_dim=3)


def exact_optimum(a, budget, constraints):
    """``mu`` of the exact constrained tilt (SLSQP on the closed form)."""
    cons = [{"type": "ineq", "fun": lambda m: 2 * budget - m @ m}]
    for b, op, c in constraints:
        b = np.asarray(b, float)
        if op == "<=":
            cons.append({"type": "ineq", "fun": lambda m, b=b, c=c: c - b @ m})
        elif op == ">=":
            cons.append({"type": "ineq", "fun": lambda m, b=b, c=c: b @ m - c})
        else:
            cons.append({"type": "eq", "fun": lambda m, b=b, c=c: b @ m - c})
    res = minimize(lambda m: -a @ m, np.full(len(a), 0.1), constraints=cons, method="SLSQP",
                   options={"ftol": 1e-12})
    assert res.success
    return res.x


CASES = {
    "one <= active": [([0.6, 0.8, 0.0], "<=", 0.5)],
    "one >= active": [([0.0, 1.0, 0.0], ">=", 1.0)],
    "one ==": [([0.0, 0.0, 1.0], "==", -0.8)],
    "two": [([0.6, 0.8, 0.0], "<=", 0.8), ([0.0, 0.0, 1.0], ">=", 0.5)],
}


@pytest.mark.parametrize("case", CASES)
def test_linear_constraints_hit_the_closed_form(case):
    budget = 2.0
    spec = CASES[case]
    mu = exact_optimum(A, budget, spec)
    tuner = BoltzmannTuner(
        BASE, LinearCriterion(A), kl_budget=budget, random_state=0,
        constraints=[(LinearCriterion(b), op, c) for b, op, c in spec]).fit()
    assert tuner.converged_
    assert tuner.criterion_mean_ == pytest.approx(A @ mu, rel=0.015)
    assert tuner.kl_ == pytest.approx(budget, rel=0.03)
    for j, (b, op, c) in enumerate(spec):
        value = tuner.constraint_values_[j]
        assert value == pytest.approx(np.asarray(b) @ mu, abs=0.03)
        # Met within the documented tolerance: tol * sd_p g = 0.02 here, or 2 SE.
        slack = max(0.02, 2 * tuner.constraint_values_se_[j])
        gap = {"<=": value - c, ">=": c - value, "==": abs(value - c)}[op]
        assert gap <= slack
    # The fitted samples are N(mu, I).
    x = tuner.sample(20000, random_state=1)
    np.testing.assert_allclose(x.mean(0), mu, atol=0.05)
    np.testing.assert_allclose(x.std(0), 1.0, atol=0.05)


def test_slack_constraint_has_zero_multiplier_and_changes_nothing():
    budget = 2.0
    tuner = BoltzmannTuner(BASE, LinearCriterion(A), kl_budget=budget, random_state=0,
                           constraints=[(LinearCriterion([0, 1.0, 0]), "<=", 5.0)]).fit()
    assert tuner.constraint_multipliers_[0] == 0.0
    assert tuner.criterion_mean_ == pytest.approx(2.0, rel=0.015)  # sqrt(2 C) |a|


def test_multiplier_and_score_samples_match_the_exponential_family():
    # q = N(beta a + lambda b, I): the fitted multiplier and the log-ratio are exact.
    budget, b, c = 2.0, np.array([0.6, 0.8, 0.0]), 0.5
    mu = exact_optimum(A, budget, [(b, "<=", c)])
    # mu = beta a + lambda b: solve the 2x2 least squares for (beta, lambda).
    beta, lam = np.linalg.lstsq(np.stack([A, b], 1), mu, rcond=None)[0]
    tuner = BoltzmannTuner(BASE, LinearCriterion(A), kl_budget=budget, random_state=0,
                           constraints=[(LinearCriterion(b), "<=", c)]).fit()
    assert tuner.beta_ == pytest.approx(beta, rel=0.05)
    assert tuner.constraint_multipliers_[0] == pytest.approx(lam, rel=0.08)
    x = np.random.default_rng(0).standard_normal((50, 3)).astype(np.float32)
    fitted_mu = tuner.beta_ * A + tuner.constraint_multipliers_[0] * b
    exact = x @ fitted_mu - fitted_mu @ fitted_mu / 2
    np.testing.assert_allclose(tuner.score_samples(x), exact, atol=0.05)


def test_reference_solution_matches_closed_form():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((200_000, 3))
    b = np.array([0.6, 0.8, 0.0])
    cons = check_constraints([(LinearCriterion(b), "<=", 0.5)])
    sol = solve_reference(z @ A, (z @ b)[:, None], 2.0, cons)
    mu = exact_optimum(A, 2.0, [(b, "<=", 0.5)])
    beta, lam = np.linalg.lstsq(np.stack([A, b], 1), mu, rcond=None)[0]
    assert sol.resolved
    assert sol.beta == pytest.approx(beta, rel=0.03)
    assert sol.beta * sol.nu[0] == pytest.approx(lam, rel=0.05)


def test_infeasible_constraint_is_named():
    # E_q g >= 3 with g = x_2 needs KL >= 4.5 > 2.
    with pytest.raises(ValueError, match=r"constraints\[1\].*cannot be met within kl_budget"):
        BoltzmannTuner(BASE, LinearCriterion(A), kl_budget=2.0, random_state=0,
                       constraints=[(LinearCriterion([0, 0, 1.0]), "<=", 1.0),
                                    (LinearCriterion([0, 1.0, 0]), ">=", 3.0)]).fit()


@pytest.mark.parametrize("bad, match", [
    ((LinearCriterion(A), "<=", 1.0), "wrap it in a list"),
    ([(LinearCriterion(A), "<", 1.0)], r"constraints\[0\]\[1\] must be one of"),
    ([(1.0, "<=", 1.0)], r"constraints\[0\]\[0\] must be a callable"),
    ([(LinearCriterion(A), "<=", float("nan"))], r"constraints\[0\]\[2\] must be a finite"),
    ([(LinearCriterion(A), "<=")], r"constraints\[0\] must be a tuple"),
])
def test_bad_constraints_name_the_parameter(bad, match):
    with pytest.raises((TypeError, ValueError), match=match):
        check_constraints(bad)


def test_constraint_with_wrong_shape_is_named():
    def per_feature(x):
        return x  # (n, d), not (n,)

    tuner = BoltzmannTuner(BASE, LinearCriterion(A), kl_budget=1.0,
                           constraints=[(per_feature, "<=", 1.0)])
    with pytest.raises(ValueError, match=r"constraints\[0\] \(E_q per_feature"):
        tuner.fit()


def test_numpy_constraint_uses_score_function_and_still_meets_it():
    def g_numpy(x):
        return x[:, 1].detach().numpy()

    with warnings.catch_warnings():
        warnings.simplefilter("error", category=UserWarning)
        tuner = BoltzmannTuner(BASE, LinearCriterion(A), kl_budget=1.0, random_state=0,
                               constraints=[(g_numpy, ">=", 0.5)]).fit()
    assert tuner.gradient_ == "score"
    assert tuner.constraint_values_[0] == pytest.approx(0.5, abs=0.05)
    mu = exact_optimum(A, 1.0, [([0, 1.0, 0], ">=", 0.5)])
    assert tuner.criterion_mean_ == pytest.approx(A @ mu, rel=0.05)


def test_refit_without_constraints_drops_the_constrained_attributes():
    tuner = BoltzmannTuner(BASE, LinearCriterion(A), kl_budget=1.0, random_state=0,
                           constraints=[(LinearCriterion([0, 1.0, 0]), ">=", 0.5)]).fit()
    tuner.set_params(constraints=None).fit()
    assert not hasattr(tuner, "constraint_values_")
    x = np.zeros((3, 3), np.float32)
    np.testing.assert_allclose(tuner.score_samples(x), -tuner.beta_**2 / 2, atol=0.05)


def test_grid_search_over_budget_keeps_every_point_constrained():
    # The grid-search story: GridSearchCV over kl_budget with a constraint, Pareto scorers.
    import pickle

    from sklearn.model_selection import GridSearchCV

    from sktilt.metrics import PARETO_SCORING

    g = LinearCriterion([0.6, 0.8, 0.0])
    tuner = BoltzmannTuner(BASE, LinearCriterion(A), max_iter=300, random_state=0,
                           constraints=[(g, "<=", 0.5)])
    X = np.zeros((2, 1))
    search = GridSearchCV(tuner, {"kl_budget": [1.0, 2.0]}, scoring=PARETO_SCORING,
                          refit="criterion_mean", cv=[(np.arange(2), np.arange(2))]).fit(X)
    for budget, value in zip([1.0, 2.0], search.cv_results_["mean_test_criterion_mean"]):
        mu = exact_optimum(A, budget, [([0.6, 0.8, 0.0], "<=", 0.5)])
        assert value == pytest.approx(A @ mu, rel=0.02)
    best = pickle.loads(pickle.dumps(search.best_estimator_))
    assert best.constraint_values_[0] <= 0.5 + 0.02
    np.testing.assert_array_equal(best.constraint_multipliers_,
                                  search.best_estimator_.constraint_multipliers_)


def test_path_with_a_constraint_follows_the_constrained_front():
    from sktilt import BoltzmannPath

    b, c = [0.6, 0.8, 0.0], 0.5
    path = BoltzmannPath(BASE, LinearCriterion(A), max_kl_budget=3.0, random_state=0,
                         constraints=[(LinearCriterion(b), "<=", c)]).fit()
    assert path.converged_
    assert path.path_["constraint_values"].shape == (path.n_path_points, 1)
    # Knots where the constraint is slack (low beta, E_p g = 0 < c) keep nu = 0.
    assert path.multipliers_.nu[1, 0] == 0.0
    for budget in (1.5, 3.0):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # between knots the path is approximate
            model = path.tuner_at(budget)
        mu = exact_optimum(A, budget, [(b, "<=", c)])
        assert model.criterion_mean_ == pytest.approx(A @ mu, rel=0.02)
        assert model.constraint_values_[0] <= c + 0.04
        assert model.constraint_multipliers_[0] < 0
