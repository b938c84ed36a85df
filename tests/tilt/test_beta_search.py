"""The beta search and the importance-sampling reference, against closed forms."""

import math

import numpy as np
import pytest

from sktilt import quantile_budget
from sktilt.tilt._beta_search import BetaController, starting_beta
from sktilt.tilt._reference import (
    pareto_front,
    reference_beta,
    resolvable_beta,
    tilted_moments,
)


def test_quantile_budget_is_minus_log_rho():
    assert quantile_budget(0.01) == pytest.approx(4.60517, abs=1e-5)
    for bad in (0.0, 1.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="rho"):
            quantile_budget(bad)


def _steer(controller, kl_fn, var_fn, beta, n=60):
    seen = [beta]
    for _ in range(n):
        beta = controller.update(beta, kl_fn(beta), var_fn(beta))
        seen.append(beta)
    return beta, seen


def test_starting_beta_is_the_reference_root_in_the_gaussian_case():
    rng = np.random.default_rng(0)
    f = 1.5 * rng.standard_normal(200_000)  # KL(beta) = beta^2 1.5^2 / 2
    assert starting_beta(f, 1.8) == pytest.approx(math.sqrt(2 * 1.8) / 1.5, rel=0.02)


def test_controller_converges_in_the_gaussian_case():
    s, budget = 2.5, 1.8  # KL = beta^2 s / 2, Var f = s
    beta, _ = _steer(BetaController(budget), lambda b: b**2 * s / 2, lambda b: s, 0.3)
    assert beta == pytest.approx(math.sqrt(2 * budget / s), rel=1e-6)


def test_controller_does_not_overshoot_a_fast_growing_kl():
    # Heavy-tailed criterion: KL grows exponentially in beta; a raw Newton step on KL
    # from a small beta would jump far past the root. Steps are damped and capped.
    kl = lambda b: math.expm1(b) ** 2 / 2  # noqa: E731
    var = lambda b: math.expm1(b) * math.exp(b) / b  # Eq. 5  # noqa: E731
    budget = 1.8
    root = math.log1p(math.sqrt(2 * budget))
    beta, seen = _steer(BetaController(budget), kl, var, 0.5)
    assert beta == pytest.approx(root, rel=1e-4)
    assert max(seen) < 1.3 * root


def test_controller_uses_the_secant_when_var_f_understates_the_slope():
    # The flow's KL responds twice as fast as Var_q f says (a mode-seeking flow).
    s, budget = 4.0, 3.0
    beta, seen = _steer(BetaController(budget), lambda b: b**2 * s, lambda b: s / 2, 2.0)
    assert beta == pytest.approx(math.sqrt(budget / s), rel=1e-4)
    assert max(seen) <= 2.0


def test_controller_with_noisy_measurements_and_an_unreachable_budget():
    rng = np.random.default_rng(0)
    s, budget = 4.0, 3.0
    controller = BetaController(budget)
    beta = 1.5 * math.sqrt(2 * budget / s)
    for _ in range(40):
        beta = controller.update(beta, beta**2 * s / 2 * (1 + 0.01 * rng.standard_normal()), s)
    assert beta == pytest.approx(math.sqrt(2 * budget / s), rel=0.03)
    # f bounded: KL saturates at 1.0 < budget; beta climbs to its ceiling
    beta, _ = _steer(BetaController(2.0, beta_max=50.0), lambda b: 1.0 - math.exp(-b),
                     lambda b: math.exp(-b), 1.0)
    assert beta == 50.0


def test_tilted_moments_match_gaussian_closed_form():
    rng = np.random.default_rng(0)
    a = np.array([1.0, 2.0])
    f = rng.standard_normal((400_000, 2)) @ a  # f ~ N(0, |a|^2) under p
    beta = 0.6
    ref = tilted_moments(f, beta)
    norm2 = a @ a
    assert ref.criterion_mean == pytest.approx(beta * norm2, rel=0.02)
    assert ref.criterion_var == pytest.approx(norm2, rel=0.03)
    assert ref.kl == pytest.approx(beta**2 * norm2 / 2, rel=0.03)
    assert ref.log_partition == pytest.approx(beta**2 * norm2 / 2, rel=0.03)
    assert 0 < ref.ess < f.size
    b = reference_beta(f, 2.0)
    assert b == pytest.approx(math.sqrt(4.0 / norm2), rel=0.02)
    assert reference_beta(f, 50.0) is None  # beyond what the samples can resolve


def test_resolvable_beta_matches_lognormal_weights():
    # f ~ N(0, 1): weights exp(beta f) are lognormal, ESS / n = exp(-beta^2), so the
    # ESS falls to m at beta = sqrt(log(n / m)) (while m is not a vanishing fraction
    # of n: further out the sample's largest draws cap the weights).
    n = 400_000
    f = np.random.default_rng(2).standard_normal(n)
    for min_ess in (1000.0, 20_000.0):
        beta = resolvable_beta(f, min_ess=min_ess)
        assert beta == pytest.approx(math.sqrt(math.log(n / min_ess)), rel=0.05)
        assert tilted_moments(f, beta).ess == pytest.approx(min_ess, rel=0.01)
    # a budget the samples resolve has its root below the resolvable beta
    assert reference_beta(f, 2.0) < resolvable_beta(f)
    assert resolvable_beta(np.ones(100)) is None  # constant f: nothing to resolve


def test_pareto_front_keeps_non_dominated_points():
    kl = [0.0, 1.0, 2.0, 1.5, 3.0]
    crit = [0.0, 1.0, 2.0, 0.5, 1.9]
    k, c = pareto_front(kl, crit)
    np.testing.assert_array_equal(k, [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(c, [0.0, 1.0, 2.0])


def test_tilted_moments_with_a_proposal_match_closed_form():
    # Samples from r = N(m, I) reweighted by p / r give the same tilt of p = N(0, I)
    # as base samples, but resolve a far tail (beta |a| = 4) that base samples cannot.
    rng = np.random.default_rng(1)
    a = np.array([1.0, 0.0])
    m = np.array([3.5, 0.0])
    x = rng.standard_normal((200_000, 2)) + m
    log_ratio = -0.5 * (x**2).sum(1) + 0.5 * ((x - m) ** 2).sum(1)
    f = x @ a
    ref = tilted_moments(f, 4.0, log_ratio)
    assert ref.criterion_mean == pytest.approx(4.0, rel=0.01)
    assert ref.kl == pytest.approx(8.0, rel=0.02)
    assert reference_beta(f, 8.0, log_ratio=log_ratio) == pytest.approx(4.0, rel=0.01)


def test_meets_budget_within_tolerance_or_two_standard_errors():
    from sktilt.tilt._beta_search import meets_budget

    assert meets_budget(1.01, 0.001, 1.0, tol=0.02)
    assert not meets_budget(1.05, 0.001, 1.0, tol=0.02)
    assert meets_budget(1.05, 0.03, 1.0, tol=0.02)  # within 2 SE


def test_a_search_with_nothing_evaluated_names_its_owner():
    from sktilt.tilt._beta_search import BetaFit, SearchResult

    result = SearchResult(fits=[BetaFit(None, None, {})], diverged=True, divergence="NaN loss")
    with pytest.raises(FloatingPointError, match="BoltzmannPath could not fit any flow.*NaN"):
        result.kept(1.0, "BoltzmannPath")


def test_path_multipliers_move_only_when_stepped():
    # The loop evaluates a flow with the multipliers it was trained with, then steps
    # them: the path's knots measure first and move on step(), as a tuner's do.
    from sktilt.tilt._constraints import MultiplierPath, check_constraints

    constraints = check_constraints([(lambda x: x[:, 0], "<=", -0.5)])
    rng = np.random.default_rng(0)
    multipliers = MultiplierPath(constraints, lambda x: x[:, 0], np.zeros((4, 1)),
                                 np.ones(1), 0.02, rng.standard_normal((100, 1)))
    before = multipliers.nu.copy()
    ready = multipliers.measure(lambda beta, n: rng.standard_normal((n, 1)), 2.0)
    assert not ready  # E g = 0 > -0.5
    np.testing.assert_array_equal(multipliers.nu, before)
    multipliers.step()
    assert np.all(multipliers.nu[1:] < 0) and multipliers.nu[0] == multipliers.nu[1]
