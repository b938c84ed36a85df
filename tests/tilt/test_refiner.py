"""AdversarialRefiner against closed forms: the log ratio of two known Gaussians, the
moments of the refined model, the share of a mode grid's mass near its modes."""

import pickle

import numpy as np
import pytest
import torch
from scipy.stats import norm
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures
from sklearn.utils._param_validation import InvalidParameterError

from sktilt import AdversarialRefiner, LatentSampler
from sktilt.tilt import LogDensityRatio, TiltQualityWarning

torch.set_num_threads(1)

FAST = {"max_iter": 150, "n_reference_samples": 20_000, "n_eval_samples": 4096}


def gaussian_case(n=4000, seed=0):
    """Data N(1, 1), base N(0, 1.5^2): log p_data / p_base is a known quadratic."""
    X = np.random.default_rng(seed).normal(1.0, 1.0, (n, 1))
    base = torch.distributions.MultivariateNormal(torch.zeros(1), 1.5**2 * torch.eye(1))
    return X, base


def true_log_ratio(x):
    return norm.logpdf(x, 1.0, 1.0) - norm.logpdf(x, 0.0, 1.5)


def quadratic_logistic():
    # The exact family of the true log ratio: the calibrated f can match it.
    return make_pipeline(PolynomialFeatures(2), LogisticRegression(C=100.0))


def test_calibrated_log_ratio_matches_closed_form():
    X, base = gaussian_case()
    refiner = AdversarialRefiner(base, classifier=quadratic_logistic(), tuner_params=FAST,
                                 random_state=0).fit(X)
    z = np.random.default_rng(1).normal(0.0, 1.5, (50_000, 1))
    f = refiner.log_density_ratio(z)
    # Self-normalised: E_p e^f = 1 on base samples the refiner did not see.
    assert np.mean(np.exp(f)) == pytest.approx(1.0, abs=0.05)
    # Close to the true log ratio over the bulk of both densities.
    grid = np.linspace(-1.0, 3.0, 21)[:, None]
    assert np.max(np.abs(refiner.log_density_ratio(grid) - true_log_ratio(grid[:, 0]))) < 0.2
    # The raw normaliser of a calibrated, class-balanced ratio is already near 1.
    assert refiner.density_ratio_normalizer_[0] == pytest.approx(1.0, abs=0.1)
    # The refined model has the data's moments (base: mean 0, sd 1.5).
    sample = refiner.sample(20_000, random_state=0)[:, 0]
    assert sample.mean() == pytest.approx(1.0, abs=0.1)
    assert sample.std() == pytest.approx(1.0, abs=0.1)
    assert refiner.tuner_.beta_ == 1.0
    assert refiner.tuner_.gradient_ == "score"


def test_default_classifier_and_judge_on_gaussians():
    X, base = gaussian_case()
    refiner = AdversarialRefiner(base, tuner_params=FAST, random_state=0).fit(X)
    sample = refiner.sample(20_000, random_state=0)[:, 0]
    assert sample.mean() == pytest.approx(1.0, abs=0.2)
    assert sample.std() == pytest.approx(1.0, abs=0.2)
    base_entry, refined = refiner.history_
    assert base_entry["round"] == 0 and refined["round"] == 1
    # The held-out judge tells the base from the data, less so the refined model.
    assert base_entry["two_sample_accuracy"] > 0.6
    assert refined["two_sample_accuracy"] < base_entry["two_sample_accuracy"] - 0.07
    assert 0.8 < refined["density_ratio_normalizer"] < 1.25
    # KL(N(1, 1) || N(0, 1.5^2)) = log 1.5 + 2 / 4.5 - 1/2 = 0.35.
    assert refined["kl"] == pytest.approx(0.35, abs=0.12)
    # The held-out log-loss of the round's discriminator: it tells them apart a little.
    assert 0.3 < refined["discriminator_log_loss"] < 0.693


def mode_grid(k):
    """A k x k grid of Gaussians (sd 0.05, spacing 2) and a base that smears them (sd 0.3)."""
    centres = 2.0 * (np.arange(k) - (k - 1) / 2)
    means = np.array([(a, b) for a in centres for b in centres])
    X = means[np.random.default_rng(0).integers(len(means), size=3000)]
    X = X + 0.05 * np.random.default_rng(1).standard_normal(X.shape)
    base = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(torch.ones(len(means))),
        torch.distributions.Independent(torch.distributions.Normal(
            torch.tensor(means, dtype=torch.float32), 0.3 * torch.ones(len(means), 2)), 1))
    return X, base, means


def share_near_modes(x, means, radius=0.2):
    d = np.linalg.norm(x[:, None] - means[None], axis=-1)
    near = d.min(1) < radius
    return near.mean(), np.unique(d.argmin(1)[near]).size


def test_mode_grid_share_near_modes_rises():
    X, base, means = mode_grid(3)
    # A shallow boosted discriminator keeps the test fast (each flow step predicts).
    refiner = AdversarialRefiner(base, n_model_samples=6000, random_state=0,
                                 classifier=HistGradientBoostingClassifier(max_iter=30),
                                 tuner_params={**FAST, "max_iter": 300, "n_components": 18})
    refiner.fit(X)
    base_share, _ = share_near_modes(base.sample((20_000,)).numpy(), means)
    share, covered = share_near_modes(refiner.sample(20_000, random_state=0), means)
    assert base_share < 0.25  # 1 - exp(-0.2^2 / (2 0.3^2)) = 0.20
    assert share > 0.75
    assert covered == len(means)


def test_two_rounds_tilt_the_base_by_the_summed_ratio():
    X, base = gaussian_case(n=2000)
    refiner = AdversarialRefiner(base, n_rounds=2, classifier=quadratic_logistic(),
                                 tuner_params=FAST, random_state=0).fit(X)
    assert len(refiner.history_) == 3 and len(refiner.discriminators_) == 2
    assert refiner.density_ratio_normalizer_.shape == (2,)
    z = torch.randn(5, 1)
    per_round = refiner.criterion_.log_ratios(z)
    assert per_round.shape == (2, 5)
    np.testing.assert_allclose(refiner.criterion_(z), per_round.sum(0))
    # The second round sees a model already close to the data: a smaller correction.
    assert np.abs(per_round[1]).mean() < np.abs(per_round[0]).mean()


def test_latent_base_criterion_gets_decoded_tensors():
    X, _ = gaussian_case(n=2000)
    decoder = torch.nn.Linear(1, 1)
    with torch.no_grad():
        decoder.weight.fill_(1.5)
        decoder.bias.zero_()
    refiner = AdversarialRefiner(LatentSampler(decoder, latent_dim=1), tuner_params=FAST,
                                 classifier=quadratic_logistic(), validation_fraction=0,
                                 random_state=0).fit(X)
    sample = refiner.sample(10_000, random_state=0)[:, 0]
    assert sample.mean() == pytest.approx(1.0, abs=0.2)
    assert np.isnan(refiner.history_[1]["two_sample_accuracy"])
    assert isinstance(pickle.loads(pickle.dumps(refiner.criterion_)), LogDensityRatio)


def test_same_random_state_same_fit():
    X, base = gaussian_case(n=1000)
    params = dict(tuner_params={**FAST, "max_iter": 50}, random_state=3,
                  classifier=HistGradientBoostingClassifier(max_iter=10))
    a = AdversarialRefiner(base, **params).fit(X)
    b = AdversarialRefiner(base, **params).fit(X)
    np.testing.assert_array_equal(a.sample(100), b.sample(100))
    assert a.history_ == b.history_


def test_sklearn_conventions_and_errors():
    X, base = gaussian_case(n=200)
    refiner = AdversarialRefiner(base, n_rounds=2, random_state=0)
    assert clone(refiner).get_params()["n_rounds"] == 2
    assert "tuner_params" in refiner.get_params()
    with pytest.raises(InvalidParameterError, match="n_rounds"):
        AdversarialRefiner(base, n_rounds=0).fit(X)
    with pytest.raises(InvalidParameterError, match="calibration"):
        AdversarialRefiner(base, calibration="beta").fit(X)
    with pytest.raises(InvalidParameterError, match="classifier"):
        AdversarialRefiner(base, classifier=object()).fit(X)
    with pytest.raises(ValueError, match="tuner_params.*n_step"):
        AdversarialRefiner(base, tuner_params={"n_step": 10}).fit(X)
    with pytest.raises(ValueError, match="base_sampler draws samples with 1 features"):
        AdversarialRefiner(base).fit(np.zeros((200, 2)))
    with pytest.raises(TypeError, match="base_sampler"):
        AdversarialRefiner("not a model").fit(X)
    with pytest.raises(TypeError):
        AdversarialRefiner(base, 2)  # keyword-only after base_sampler


def test_separated_data_and_model_warn():
    # The data lie where the base has (almost) no mass: no density ratio to estimate.
    X = np.random.default_rng(0).normal(8.0, 0.5, (600, 1))
    base = torch.distributions.MultivariateNormal(torch.zeros(1), torch.eye(1))
    with pytest.warns(TiltQualityWarning, match="separates held-out data"):
        refiner = AdversarialRefiner(base, classifier=quadratic_logistic(), random_state=0,
                                     tuner_params={**FAST, "max_iter": 20}).fit(X)
    assert refiner.history_[1]["discriminator_log_loss"] < 0.05
