"""BoltzmannTuner against closed forms (Gaussian base; linear and quadratic criteria)."""

import math

import numpy as np
import pytest
import torch

from sktilt import BoltzmannTuner, LatentSampler
from sktilt.tilt import LinearCriterion, QuadraticCriterion

A = np.array([1.0, -0.5, 0.5, 0.25])
FAST = dict(max_iter=150, n_eval_samples=16384, random_state=0)


def _beta_star(a, budget):
    return math.sqrt(2 * budget) / np.linalg.norm(a)


def _check_gaussian_tilt(tuner, samples, a, budget):
    beta_star = _beta_star(a, budget)
    assert tuner.beta_ == pytest.approx(beta_star, rel=0.03)
    assert tuner.kl_ == pytest.approx(budget, rel=0.05)
    n = samples.shape[0]
    # q_beta = N(beta a, I): the sample mean is within Monte-Carlo error of beta_ a.
    np.testing.assert_allclose(samples.mean(0), tuner.beta_ * a, atol=4.5 / math.sqrt(n))
    np.testing.assert_allclose(samples.std(0), 1.0, atol=0.03)
    # E_q f = beta |a|^2 exactly.
    assert tuner.criterion_mean_ == pytest.approx(tuner.beta_ * a @ a, rel=0.03)


def test_linear_criterion_latent_sampler_matches_closed_form():
    base = LatentSampler(torch.nn.Identity(), latent_dim=A.size)
    tuner = BoltzmannTuner(base, LinearCriterion(A), kl_budget=1.0, **FAST).fit()
    assert tuner.gradient_ == "pathwise"
    Z = tuner.sample_latent(20000, random_state=1)
    _check_gaussian_tilt(tuner, Z, A, 1.0)
    # identity decoder: instance samples are the latent samples
    np.testing.assert_array_equal(tuner.sample(50, random_state=1),
                                  tuner.sample_latent(50, random_state=1))


def test_linear_criterion_instance_space_multivariate_normal():
    d = A.size
    base = torch.distributions.MultivariateNormal(torch.zeros(d), torch.eye(d))
    tuner = BoltzmannTuner(base, LinearCriterion(A), kl_budget=1.5, **FAST).fit()
    X = tuner.sample(20000, random_state=2)
    _check_gaussian_tilt(tuner, X, A, 1.5)
    assert not hasattr(tuner, "sample_latent")


def _quadratic_kl(beta, c):
    # q_beta = N(beta c / (1 + beta), I / (1 + beta)) against p = N(0, I)
    d, s = c.size, 1.0 / (1.0 + beta)
    m = beta * c / (1.0 + beta)
    return 0.5 * (d * s + m @ m - d - d * math.log(s))


def test_quadratic_criterion_matches_closed_form():
    c = np.array([2.0, -1.0, 0.0])
    budget = 1.0
    lo, hi = 0.0, 10.0
    for _ in range(100):  # closed-form KL(beta) is increasing: bisection
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _quadratic_kl(mid, c) < budget else (lo, mid)
    beta_star = 0.5 * (lo + hi)
    base = LatentSampler(torch.nn.Identity(), latent_dim=c.size)
    tuner = BoltzmannTuner(base, QuadraticCriterion(c), kl_budget=budget, **FAST).fit()
    assert tuner.beta_ == pytest.approx(beta_star, rel=0.03)
    assert tuner.kl_ == pytest.approx(budget, rel=0.05)
    Z = tuner.sample_latent(20000, random_state=3)
    s = 1.0 / (1.0 + tuner.beta_)
    np.testing.assert_allclose(Z.mean(0), tuner.beta_ * c * s, atol=4.5 * math.sqrt(s / 20000))
    np.testing.assert_allclose(Z.var(0), s, rtol=0.05)


def numpy_linear(x):
    """Non-differentiable version of the linear criterion (numpy round trip)."""
    return x.detach().cpu().numpy() @ A


def test_non_differentiable_criterion_uses_score_function():
    base = LatentSampler(torch.nn.Identity(), latent_dim=A.size)
    tuner = BoltzmannTuner(base, numpy_linear, kl_budget=1.0, max_iter=300,
                           random_state=0).fit()
    assert tuner.gradient_ == "score"
    assert tuner.beta_ == pytest.approx(_beta_star(A, 1.0), rel=0.10)
    Z = tuner.sample_latent(20000, random_state=4)
    np.testing.assert_allclose(Z.mean(0), tuner.beta_ * A, atol=0.1)


def test_history_records_moments_per_beta_iteration():
    base = LatentSampler(torch.nn.Identity(), latent_dim=2)
    tuner = BoltzmannTuner(base, LinearCriterion([1.0, 1.0]), kl_budget=1.0,
                           **FAST).fit()
    assert tuner.n_iter_ == len(tuner.history_) >= 1
    keys = {"beta", "kl", "kl_se", "criterion_mean", "criterion_var", "criterion_third",
            "reference_kl", "reference_criterion_mean", "reference_ess"}
    for row in tuner.history_:
        assert keys <= set(row)
        # Var_q f = |a|^2 = 2 for q = N(beta a, I), third central moment 0.
        assert row["criterion_var"] == pytest.approx(2.0, rel=0.1)
        assert abs(row["criterion_third"]) < 0.2
    # reference (IS from base samples) agrees with the exact KL at the fitted beta.
    assert tuner.reference_.kl == pytest.approx(tuner.beta_**2, rel=0.05)
    assert tuner.converged_


def max_of_two_projections(x):
    """f(z) = max(3 z_0, 3 z_1): q_beta has two modes, along e_0 and along e_1."""
    return 3.0 * x[:, :2].max(dim=1).values


def _max_tilt(beta, norm=3.0):
    # With u_i iid N(0, 1) and b = beta |a|: E exp(b max(u_0, u_1)) = 2 e^{b^2/2}
    # Phi(b / sqrt 2). log Z, then E_q f = d log Z / d beta and KL = beta E_q f - log Z.
    b = beta * norm
    phi = math.exp(-b * b / 4) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1 + math.erf(b / 2))
    log_z = b * b / 2 + math.log(2 * cdf)
    mean = norm * (b + phi / (math.sqrt(2) * cdf))
    return beta * mean - log_z, mean


def test_two_mode_tilt_keeps_both_modes_and_matches_closed_form():
    budget = 4.0
    lo, hi = 0.0, 10.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _max_tilt(mid)[0] < budget else (lo, mid)
    beta_star = 0.5 * (lo + hi)
    base = LatentSampler(torch.nn.Identity(), latent_dim=4)
    tuner = BoltzmannTuner(base, max_of_two_projections, kl_budget=budget, **FAST).fit()
    assert tuner.init == "likelihood"
    assert tuner.beta_ == pytest.approx(beta_star, rel=0.03)
    assert tuner.kl_ == pytest.approx(budget, rel=0.05)
    assert tuner.criterion_mean_ == pytest.approx(_max_tilt(tuner.beta_)[1], rel=0.02)
    Z = tuner.sample_latent(20000, random_state=5)
    # by symmetry half of q_beta's mass is in each mode
    assert 0.45 < np.mean(Z[:, 0] > Z[:, 1]) < 0.55
