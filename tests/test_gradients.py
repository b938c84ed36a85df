"""Gradient estimators: baselines, score-function estimates and autograd per-sample scores,
checked against closed forms and Monte Carlo."""

import numpy as np
import pytest
import torch

from sktilt.gradients import (
    linear_surrogate,
    mean_baseline,
    optimal_baseline,
    per_sample_scores,
    score_function_gradient,
    score_function_surrogate,
)


class _Normal(torch.nn.Module):
    """N(mu, exp(log_sd)^2) in 1-D: the textbook case with closed-form scores."""

    def __init__(self, mu=0.5, log_sd=-0.3):
        super().__init__()
        self.mu = torch.nn.Parameter(torch.tensor(mu, dtype=torch.float64))
        self.log_sd = torch.nn.Parameter(torch.tensor(log_sd, dtype=torch.float64))

    def log_prob(self, x):
        sd = self.log_sd.exp()
        return (-0.5 * ((x[:, 0] - self.mu) / sd) ** 2 - self.log_sd
                - 0.5 * np.log(2 * np.pi))


def test_per_sample_scores_match_the_closed_form():
    q = _Normal()
    x = torch.randn(6, 1, dtype=torch.float64)
    scores = per_sample_scores(q, x)
    sd = np.exp(-0.3)
    e = (x[:, 0].numpy() - 0.5) / sd
    np.testing.assert_allclose(scores["mu"].numpy(), e / sd, rtol=1e-12)
    np.testing.assert_allclose(scores["log_sd"].numpy(), e**2 - 1, rtol=1e-12)


def test_baselines():
    v = np.array([1.0, 2.0, 6.0])
    np.testing.assert_allclose(mean_baseline(v), [4.0, 3.5, 1.5])  # leave-one-out
    s = np.array([[1.0, 0.0], [2.0, 1.0], [0.0, 3.0]])
    np.testing.assert_allclose(optimal_baseline(s, v), [(1 + 8) / 5, (2 + 54) / 10])


@pytest.mark.parametrize("baseline", ["optimal", "mean", None])
def test_score_function_gradient_is_unbiased_for_a_gaussian_mean(baseline):
    # d/d mu E_{N(mu, 1)}[x^2] = 2 mu, whatever the baseline
    rng = np.random.default_rng(0)
    mu, n = 0.7, 200_000
    x = mu + rng.standard_normal(n)
    scores = (x - mu)[:, None]
    grad = score_function_gradient(scores, x**2, baseline)
    se = np.std(scores[:, 0] * x**2) / np.sqrt(n)
    assert abs(grad[0] - 2 * mu) < 4 * se


def test_optimal_baseline_reduces_variance_over_raw():
    rng = np.random.default_rng(1)
    est = {b: [] for b in ("optimal", None)}
    for _ in range(200):
        x = 0.3 + rng.standard_normal(64)
        for b in est:
            est[b].append(score_function_gradient((x - 0.3)[:, None], 10 + x, b)[0])
    assert np.var(est["optimal"]) < 0.1 * np.var(est[None])


def test_surrogates_have_the_estimates_as_gradients():
    q = _Normal(mu=0.0, log_sd=0.0)
    x = torch.randn(4096, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    values = x[:, 0] ** 2
    score_function_surrogate(q.log_prob(x), values, "mean").backward()
    expected = score_function_gradient(per_sample_scores(q, x)["mu"][:, None], values, "mean")
    assert q.mu.grad.item() == pytest.approx(expected.item(), rel=1e-6)
    q.zero_grad()
    linear_surrogate(q, {"mu": torch.tensor(3.0), "log_sd": torch.tensor(-2.0)}).backward()
    assert (q.mu.grad.item(), q.log_sd.grad.item()) == (3.0, -2.0)
