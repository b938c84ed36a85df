"""The beta search and the importance-sampling reference, against closed forms."""

import math

import numpy as np
import pytest

from sktilt import quantile_budget
from sktilt.tilt import BetaSearch
from sktilt.tilt import pareto_front, reference_beta, resolvable_beta, tilted_moments


def test_quantile_budget_is_minus_log_rho():
    assert quantile_budget(0.01) == pytest.approx(4.60517, abs=1e-5)
    for bad in (0.0, 1.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="rho"):
            quantile_budget(bad)


def _run(search, kl_fn, var_fn, third_fn, beta, n=30):
    for _ in range(n):
        kl = kl_fn(beta)
        if abs(kl - search.budget) < 1e-6 * search.budget:
            return beta
        beta = search.update(beta, kl, var_fn(beta), third_fn(beta))
    return beta


def test_gaussian_case_is_solved_by_first_step():
    s, budget = 2.5, 1.8  # KL = beta^2 s / 2, Var f = s
    search = BetaSearch(budget)
    beta = search.first_beta(s)
    assert beta == pytest.approx(math.sqrt(2 * budget / s), rel=1e-12)


def test_no_overshoot_from_small_beta():
    # Heavy-tailed criterion: KL grows fast (exponentially in beta). A raw Newton step
    # on KL from beta = 0.5 would jump far past the root; the search stays bracketed.
    kl = lambda b: math.expm1(b) ** 2 / 2  # noqa: E731
    dkl = lambda b: math.expm1(b) * math.exp(b)  # noqa: E731
    var = lambda b: dkl(b) / b  # Eq. 5: dKL/dbeta = beta Var  # noqa: E731
    budget = 1.8
    root = math.log1p(math.sqrt(2 * budget))
    search = BetaSearch(budget)
    seen = []
    beta = 0.5
    for _ in range(40):
        seen.append(beta)
        if abs(kl(beta) - budget) < 1e-8:
            break
        beta = search.update(beta, kl(beta), var(beta), math.nan)
    assert beta == pytest.approx(root, rel=1e-6)
    assert max(seen) < 2 * root  # never the 3.5-style overshoot


def test_search_converges_with_noisy_measurements():
    rng = np.random.default_rng(0)
    s, budget = 4.0, 3.0
    search = BetaSearch(budget)
    beta = search.first_beta(s) * 1.5
    for _ in range(12):
        kl = beta**2 * s / 2 * (1 + 0.01 * rng.standard_normal())
        beta = search.update(beta, kl, s, 0.0)
    assert beta == pytest.approx(math.sqrt(2 * budget / s), rel=0.03)


def test_unreachable_budget_stops_at_beta_max():
    # f bounded: KL saturates at 1.0 < budget
    search = BetaSearch(2.0, beta_max=50.0)
    beta = 1.0
    for _ in range(30):
        beta = search.update(beta, 1.0 - math.exp(-beta), math.exp(-beta), 0.0)
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
