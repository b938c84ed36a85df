"""Rare events with the tuned model as proposal, against exact Gaussian tails."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

from sktilt import BoltzmannTuner, LatentSampler, quantile_budget
from sktilt.tilt import LinearCriterion
from sktilt.tilt._rare_events import importance_tail_probability


@pytest.fixture(scope="module")
def tail_tuner():
    base = LatentSampler(torch.nn.Identity(), latent_dim=3)
    return BoltzmannTuner(base, LinearCriterion([1.0, 0.0, 0.0]),
                          kl_budget=quantile_budget(1e-4), max_iter=150,
                          random_state=0).fit()


def test_tail_probability_matches_exact_gaussian_tail(tail_tuner):
    t = norm.isf(1e-4)  # P(z_1 > t) = 1e-4 exactly
    est = tail_tuner.tail_probability(t, n_samples=20_000, random_state=1)
    p, se = est
    assert abs(p - 1e-4) < 4 * se
    # far fewer samples than crude Monte Carlo for the same error: crude MC with
    # 20 000 samples has relative error sqrt((1 - p) / (n p)) = 71 %
    assert est.relative_error < 0.05
    crude_rel = math.sqrt((1 - 1e-4) / (20_000 * 1e-4))
    assert est.relative_error < crude_rel / 10


def test_tail_probability_at_other_thresholds(tail_tuner):
    for t in (3.0, 4.0):
        p, se = tail_tuner.tail_probability(t, n_samples=50_000, random_state=2)
        assert abs(p - norm.sf(t)) < 4 * se + 1e-3 * norm.sf(t)


def test_sample_tail_draws_from_the_truncated_base(tail_tuner):
    t = 3.5
    X = tail_tuner.sample_tail(2000, t, oversample=20, random_state=3)
    assert X.shape == (2000, 3) and (X[:, 0] > t).all()
    # p(. | z_1 > t): z_1 is a truncated normal, the other coordinates stay N(0, 1)
    exact_mean = norm.pdf(t) / norm.sf(t)
    assert X[:, 0].mean() == pytest.approx(exact_mean, abs=0.05)
    np.testing.assert_allclose(X[:, 1:].mean(0), 0.0, atol=0.15)
    np.testing.assert_allclose(X[:, 1:].std(0), 1.0, atol=0.1)


def test_sample_tail_errors(tail_tuner):
    with pytest.raises(ValueError, match="no candidate"):
        tail_tuner.sample_tail(10, 50.0)
    with pytest.raises(ValueError, match="n_samples must be a positive int"):
        tail_tuner.tail_probability(1.0, n_samples=0)


def test_importance_estimate_is_unbiased_with_exact_weights():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(200_000) + 3.0          # proposal N(3, 1)
    log_w = -0.5 * x**2 + 0.5 * (x - 3.0) ** 2      # log N(0,1) / N(3,1)
    est = importance_tail_probability(x, log_w, 3.0)
    assert abs(est.probability - norm.sf(3.0)) < 4 * est.std_error


def test_defensive_mixture_recovers_a_mode_the_tuned_flow_misses():
    # p = N(0, I_2), event max(z_0, z_1) > t: P = 1 - Phi(t)^2 exactly, half of it
    # along each axis. The "tuned" flow N((4, 0), I) covers only the z_0 branch; the
    # start flow N(0, 4 I) reaches both, as a start fitted to tilted base samples does.
    from sktilt.tilt._bases import as_base
    from sktilt.tilt._flows import build_flow
    from sktilt.tilt._sampling import draw_defensive

    base = as_base(LatentSampler(torch.nn.Identity(), latent_dim=2))
    tuned, start = build_flow(2), build_flow(2)
    with torch.no_grad():  # one-component mixtures: phi = (logits, means, log-scales)
        tuned.base.phi[1].copy_(torch.tensor([[4.0, 0.0]]))
        start.base.phi[2].fill_(math.log(2.0))

    def crit(x):
        return x.max(dim=1).values

    t, n, alpha = 3.5, 100_000, 0.3
    exact = 1 - norm.cdf(t) ** 2
    torch.manual_seed(0)
    log_w, f, x = draw_defensive(tuned, start, (1 - alpha, alpha, 0.0), base, crit, n,
                                 keep_x=True)
    est = importance_tail_probability(f, log_w, t)
    assert abs(est.probability - exact) < 4 * est.std_error
    assert est.relative_error < 0.05
    # each branch carries half the probability, also the one the tuned flow misses
    z1_branch = importance_tail_probability(np.where(x[:, 1] > x[:, 0], f, -np.inf), log_w, t)
    assert z1_branch.probability == pytest.approx(exact / 2, rel=0.15)
    # the weights p / r are bounded by p / (alpha q_start) <= 4 / alpha (q_start's
    # density is at least p / 4 everywhere)
    assert np.exp(log_w).max() <= 4 / alpha


def test_base_component_keeps_the_estimate_honest_where_both_flows_miss():
    # Both flows sit on the z_0 branch of the event max(z_0, z_1) > t; only the base
    # component reaches the z_1 branch. Weights are bounded by 1 / c, the estimate is
    # unbiased and its standard error covers the truth.
    from sktilt.tilt._bases import as_base
    from sktilt.tilt._flows import build_flow
    from sktilt.tilt._sampling import draw_defensive

    base = as_base(LatentSampler(torch.nn.Identity(), latent_dim=2))
    tuned, start = build_flow(2), build_flow(2)
    with torch.no_grad():
        tuned.base.phi[1].copy_(torch.tensor([[3.0, -1.0]]))
        start.base.phi[1].copy_(torch.tensor([[2.5, -1.0]]))

    def crit(x):
        return x.max(dim=1).values

    t, exact = 2.0, 1 - norm.cdf(2.0) ** 2
    z_scores = []
    for seed in range(20):
        torch.manual_seed(seed)
        log_w, f, _ = draw_defensive(tuned, start, (0.7, 0.2, 0.1), base, crit, 20_000)
        assert np.exp(log_w).max() <= 1 / 0.1 + 1e-9
        est = importance_tail_probability(f, log_w, t)
        z_scores.append((est.probability - exact) / est.std_error)
    z_scores = np.array(z_scores)
    assert np.mean(np.abs(z_scores) < 2) >= 0.8  # honest standard errors
    assert abs(z_scores.mean()) < 3 / np.sqrt(len(z_scores))  # unbiased
