"""The tuned model q = T_# M (a Gaussian mixture through zuko layers): its start, its
samplers and densities, against closed forms."""

import math

import numpy as np
import pytest
import torch

from sktilt import LatentSampler
from sktilt.tilt._bases import as_base
from sktilt.tilt._flows import FLOWS, build_flow
from sktilt.tilt._sampling import draw_flow, init_mixture

BASE = as_base(LatentSampler(torch.nn.Identity(), latent_dim=4))


def _perturb_(flow, scale=0.3, seed=1):
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(scale * torch.randn_like(p))


@pytest.mark.parametrize("family", FLOWS)
def test_flows_start_at_the_base(family):
    flow = build_flow(4, components=3, flow=family, transforms=2, hidden_features=(16,))
    z = flow.draw(512)
    torch.testing.assert_close(flow().log_prob(z), BASE.log_prob(z), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("family", FLOWS)
def test_sampled_log_density_matches_the_inverse_pass(family):
    flow = build_flow(4, components=1, flow=family, transforms=2, hidden_features=(16,))
    _perturb_(flow)
    with torch.no_grad():
        z, log_q = flow().rsample_and_log_prob((128,))
        # float32 spline inversion (nsf) agrees to about 1e-2 nats
        torch.testing.assert_close(flow().log_prob(z), log_q, rtol=1e-2, atol=2e-2)


def _mixture_params(flow):
    mixture = flow.base()
    w = torch.softmax(mixture.logits, 0).detach().numpy()
    return w, mixture.base.mean.detach().numpy(), mixture.base.stddev.detach().numpy()


def test_exact_draws_and_stratified_averages_follow_the_mixture():
    flow = build_flow(2, components=3)
    _perturb_(flow, scale=1.0)
    w, mean, std = _mixture_params(flow)
    torch.manual_seed(0)
    with torch.no_grad():
        x = flow.draw(400_000).numpy()
        z, weights = flow.stratified(50_000)
    np.testing.assert_allclose(x.mean(0), w @ mean, atol=0.02)
    second = w @ (std**2 + mean**2)
    np.testing.assert_allclose((x**2).mean(0), second, rtol=0.02)
    # the stratified average is an exact expectation: weights are w_k / m per sample
    np.testing.assert_allclose(weights.sum().item(), 1.0, rtol=1e-6)
    avg = (weights[..., None] * z).sum((0, 1)).numpy()
    np.testing.assert_allclose(avg, w @ mean, atol=0.02)


def test_mixture_density_is_the_closed_form():
    flow = build_flow(2, components=2)
    _perturb_(flow, scale=0.5)
    w, mean, std = _mixture_params(flow)
    x = np.array([[0.3, -0.2], [1.0, 2.0]])
    dens = sum(w[k] * np.prod(np.exp(-0.5 * ((x - mean[k]) / std[k]) ** 2)
                              / (std[k] * math.sqrt(2 * math.pi)), axis=1) for k in range(2))
    got = flow().log_prob(torch.as_tensor(x, dtype=torch.float32)).detach().numpy()
    np.testing.assert_allclose(got, np.log(dens), rtol=1e-5)


def test_context_gives_one_sample_per_row_and_component():
    flow = build_flow(3, components=4, context=1, transforms=1, hidden_features=(8,))
    c = torch.rand(5, 1)
    z, weights = flow.stratified(0, c)
    assert z.shape == (5, 4, 3) and weights.shape == (5, 4)
    np.testing.assert_allclose(weights.sum().item(), 1.0, rtol=1e-6)
    assert flow.draw(5, c).shape == (5, 3)
    assert flow(c).log_prob(flow.draw(5, c)).shape == (5,)


def test_mixture_start_covers_the_modes_of_the_weighted_samples():
    # p = N(0, I_2), f = |z_0|: the tilt has two symmetric modes on the z_0 axis.
    rng = np.random.default_rng(3)
    eps = rng.standard_normal((100_000, 2))
    f = np.abs(eps[:, 0])
    flow = build_flow(2, components=2)
    torch.manual_seed(3)
    init_mixture(flow, eps, f, beta=3.0, rng=rng)
    _, mean, _ = _mixture_params(flow)
    assert sorted(np.sign(mean[:, 0])) == [-1.0, 1.0]  # one component per mode
    torch.manual_seed(3)
    _, _, x = draw_flow(flow, as_base(LatentSampler(torch.nn.Identity(), latent_dim=2)),
                        lambda x: x[:, 0], 50_000, keep_x=True)
    # it reproduces the importance-weighted mean of the samples it started on
    w = np.exp(3.0 * (f - f.max()))
    assert np.abs(x[:, 0]).mean() == pytest.approx(w @ f / w.sum(), rel=0.03)


def test_unknown_family_is_an_error():
    with pytest.raises(ValueError, match="flow must be one of"):
        build_flow(4, flow="glow", transforms=1)
