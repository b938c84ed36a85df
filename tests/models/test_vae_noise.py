"""The log-normal likelihood and the observation-noise base model of the VAE."""

import numpy as np
import pytest
import torch

from sktilt import BoltzmannTuner, CurveMaximum
from sktilt.models import VAE

X = np.exp(np.random.default_rng(0).normal(1.0, 0.5, size=(600, 6))).astype(np.float32)


@pytest.fixture(scope="module")
def vae():
    return VAE(latent_dim=2, hidden_layer_sizes=(32,), likelihood="lognormal", max_iter=60,
               random_state=0).fit(X)


def test_lognormal_fits_log_data_and_samples_positive(vae):
    # iid log-normal features: the model's log-moments are those of the data
    S = vae.sample(20_000, observation_noise=True, random_state=1)
    assert (S > 0).all()
    np.testing.assert_allclose(np.log(S).mean(0), np.log(X).mean(0), atol=0.1)
    np.testing.assert_allclose(np.log(S).std(0), np.log(X).std(0), rtol=0.15)
    # without noise: the decoded medians, far narrower than the data
    M = vae.sample(5000, random_state=1)
    assert np.log(M).std(0).max() < 0.5 * np.log(X).std(0).min()


def test_noise_base_sampler_is_the_model_written_on_a_longer_latent(vae):
    base = vae.get_base_sampler(observation_noise=True)
    assert base.latent_dim == 2 + 6
    z = torch.zeros(3, 8)
    z[:, 2:] = 1.0  # one noise standard deviation above the median in every feature
    with torch.no_grad():
        x = base.decoder(z)
        median = vae.get_base_sampler().decoder(z[:, :2])
        std = vae.module_.noise_std() * vae.module_.scale
    np.testing.assert_allclose(torch.log(x / median).numpy(), std.expand(3, 6).numpy(),
                               rtol=1e-5)


def test_log_peak_tilt_of_the_noise_model():
    # f = log max x; the tilt of max x itself would not exist under a log-normal tail
    vae = VAE(latent_dim=2, hidden_layer_sizes=(32,), likelihood="lognormal", max_iter=30,
              random_state=0).fit(X)
    tuner = BoltzmannTuner(vae.get_base_sampler(observation_noise=True),
                           CurveMaximum(log=True), kl_budget=2.0, random_state=0).fit()
    assert tuner.kl_ == pytest.approx(2.0, rel=0.05)
    base = vae.sample(4000, observation_noise=True, random_state=2)
    tuned = tuner.sample(4000, random_state=3)
    assert np.log(tuned.max(1)).mean() == pytest.approx(tuner.criterion_mean_, abs=0.05)
    assert np.log(tuned.max(1)).mean() > np.log(base.max(1)).mean() + 0.3


def test_lognormal_needs_positive_data_and_noise_needs_a_continuous_model():
    with pytest.raises(ValueError, match="likelihood='lognormal' needs X > 0"):
        VAE(likelihood="lognormal", max_iter=1).fit(X - 10)
    binary = (X > np.median(X)).astype(np.float32)
    vae = VAE(likelihood="bernoulli", max_iter=1, random_state=0).fit(binary)
    with pytest.raises(ValueError, match="observation_noise=True needs a continuous"):
        vae.get_base_sampler(observation_noise=True)


def _level_data(n=3000, seed=0):
    # one latent level; the log-noise shrinks as the level grows (0.45 -> 0.1), as in
    # heating-dominated hours of a load curve
    rng = np.random.default_rng(seed)
    level = rng.standard_normal((n, 1))
    spread = 0.275 - 0.175 * np.tanh(level)
    return np.exp(level + spread * rng.standard_normal((n, 4))).astype(np.float32)


def test_level_noise_follows_the_level_and_fits_better_than_constant():
    X_level = _level_data()
    common = dict(latent_dim=1, hidden_layer_sizes=(32,), likelihood="lognormal",
                  max_iter=80, lr=3e-3, random_state=0)
    level = VAE(noise_model="level", **common).fit(X_level)
    constant = VAE(**common).fit(X_level)
    # a perfect model gains 0.67 nats per curve over the best constant scale
    held_out = _level_data(2000, seed=1)
    assert level.score(held_out) > constant.score(held_out) + 0.1
    # the model's log-noise at a high and a low level, against the generator's
    module = level.module_
    stds = {}
    with torch.no_grad():
        for z_level in (1.5, -1.5):
            t = (z_level - module.shift) / module.scale
            stds[z_level] = (module.noise_std(t.reshape(1, -1)) * module.scale).numpy()
    truth = {z: 0.275 - 0.175 * np.tanh(z) for z in stds}  # 0.117 and 0.433
    # the smooth high end is met; the low end also carries the latent's own error
    # (the ELBO's noise is the residual around q(z | x)), so only its order is asserted
    np.testing.assert_allclose(stds[1.5], truth[1.5], rtol=0.35)
    assert (stds[-1.5] > 0.8 * truth[-1.5]).all()
    assert (stds[-1.5] > 2.5 * stds[1.5]).all()  # the generator's ratio is 3.7
    # the tuned base: the scale at the decoded level, capped, so tails stay Gaussian
    base = level.get_base_sampler(observation_noise=True)
    assert base.latent_dim == 1 + 4
    with torch.no_grad():
        far = base.decoder(torch.tensor([[40.0, 30.0, 30.0, 30.0, 30.0]]))
    assert torch.isfinite(far).all()


def test_level_noise_scale_is_capped_and_starts_at_one():
    from sktilt.models._vae_module import NoiseScale

    scale = NoiseScale(3, 0.05, "level")
    np.testing.assert_allclose(scale().detach().numpy(), 1.0, rtol=1e-6)
    with torch.no_grad():
        scale.slope.fill_(5.0)
        big = scale(torch.full((2, 3), 1e6))
        small = scale(torch.full((2, 3), -1e6))
    assert (big <= NoiseScale.MAX_STD).all() and (small >= 0.05).all()
    with pytest.raises(ValueError, match="noise_model"):
        NoiseScale(3, 0.05, "free")
