"""BoltzmannPath: one beta-conditioned fit, exact along the Gaussian path."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.utils._param_validation import InvalidParameterError

from sktilt import BoltzmannPath, BoltzmannTuner, LatentSampler, LinearCriterion

A = np.array([1.0, 0.5, -0.5, 0.0, 0.3, 0.2, -0.1, 0.4])


@pytest.fixture(scope="module")
def path():
    base = LatentSampler(torch.nn.Identity(), latent_dim=A.size)
    return BoltzmannPath(base, LinearCriterion(A), max_kl_budget=4.0, random_state=0).fit()


def test_beta_along_the_path_is_exact_in_the_gaussian_case(path):
    # q_beta = N(beta a, I): KL = beta^2 |a|^2 / 2, so beta(C) = sqrt(2 C) / |a|
    assert path.converged_
    for budget in (0.25, 0.5, 1.0, 2.0, 3.0, 4.0):
        model = path.tuner_at(budget)
        assert model.beta_ == pytest.approx(np.sqrt(2 * budget) / np.linalg.norm(A), rel=0.03)
        assert model.kl_ == pytest.approx(budget, rel=0.05)
        np.testing.assert_allclose(model.sample_latent(20_000).mean(0), model.beta_ * A,
                                   atol=0.05)
    # the measured path follows KL = beta^2 |a|^2 / 2 where the reference is reliable too
    exact = path.path_["beta"] ** 2 * (A @ A) / 2
    assert np.all(np.abs(path.path_["kl"] - exact) <= 0.06 + 0.05 * exact)


def test_a_point_has_the_tuner_surface(path):
    model = path.tuner_at(1.0)
    assert model.fit() is model
    X = model.sample(1000, random_state=1)
    assert X.shape == (1000, A.size)
    np.testing.assert_array_equal(X, path.sample(1000, kl_budget=1.0, random_state=1))
    assert model.score_samples(X).shape == (1000,)
    est = model.tail_probability(3.0, n_samples=20_000)
    assert 0 < est.probability < 1 and est.std_error > 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert model.sample_tail(50, 2.0).shape == (50, A.size)


def test_budget_outside_the_path_is_a_clear_error(path):
    with pytest.raises(ValueError, match="Refit with a larger max_kl_budget"):
        path.tuner_at(10.0)
    with pytest.raises(ValueError, match="kl_budget must be in"):
        path.tuner_at(float("nan"))
    with pytest.raises(InvalidParameterError, match="max_kl_budget"):
        BoltzmannPath(LatentSampler(torch.nn.Identity(), latent_dim=2), LinearCriterion(),
                      max_kl_budget=-1.0).fit()


def test_path_agrees_with_separate_tuners_on_a_decoder():
    torch.manual_seed(0)
    decoder = torch.nn.Sequential(torch.nn.Linear(4, 32), torch.nn.Tanh(),
                                  torch.nn.Linear(32, 24))
    base = LatentSampler(decoder, latent_dim=4)
    crit = LinearCriterion()  # the sum of the curve
    path = BoltzmannPath(base, crit, max_kl_budget=3.0, random_state=0).fit()
    for budget in (1.0, 3.0):
        tuner = BoltzmannTuner(base, crit, kl_budget=budget, random_state=0).fit()
        model = path.tuner_at(budget)
        assert model.beta_ == pytest.approx(tuner.beta_, rel=0.1)
        gap = abs(model.criterion_mean_ - tuner.criterion_mean_)
        assert gap < 0.05 * (abs(tuner.criterion_mean_) + tuner.criterion_std_)
