"""The tuned flow q = T_# p (zuko): identity start, one-pass sampling, exact affine cases."""

import numpy as np
import pytest
import torch

from sktilt import LatentSampler
from sktilt.tilt import FLOWS, as_base, build_flow
from sktilt.tilt._sampling import draw_flow, moment_match_init

BASE = as_base(LatentSampler(torch.nn.Identity(), latent_dim=4))


@pytest.mark.parametrize("family", FLOWS)
def test_flows_start_at_the_identity(family):
    flow = build_flow(BASE.lazy(), 4, flow=family, transforms=2, hidden_features=(16,))
    torch.manual_seed(0)
    z, log_q = flow().rsample_and_log_prob((256,))
    torch.manual_seed(0)
    eps = flow.base().sample((256,))
    torch.testing.assert_close(z, eps)
    torch.testing.assert_close(log_q, BASE.log_prob(z))


@pytest.mark.parametrize("family", FLOWS)
def test_sampled_log_density_matches_the_inverse_pass(family):
    torch.manual_seed(1)
    flow = build_flow(BASE.lazy(), 4, flow=family, transforms=2, hidden_features=(16,))
    with torch.no_grad():  # leave the identity: random weights everywhere
        for p in flow.parameters():
            p.add_(0.3 * torch.randn_like(p))
        z, log_q = flow().rsample_and_log_prob((128,))
        # float32 spline inversion (nsf) agrees to a few 1e-3 nats
        torch.testing.assert_close(flow().log_prob(z), log_q, rtol=1e-3, atol=5e-3)


def test_global_affine_gives_the_closed_form_kl():
    flow = build_flow(BASE.lazy(), 4, transforms=0)
    shift, scale = np.array([1.0, -0.5, 0.0, 2.0]), np.array([0.5, 1.0, 2.0, 1.5])
    flow.global_affine().set_(shift, scale)
    torch.manual_seed(2)
    log_ratio, f, x = draw_flow(flow, BASE, lambda x: x[:, 0], 200_000, keep_x=True)
    np.testing.assert_allclose(x.mean(0), shift, atol=0.02)
    np.testing.assert_allclose(x.std(0), scale, rtol=0.01)
    # KL(N(m, s^2) || N(0, 1)) = sum (s^2 + m^2 - 1) / 2 - log s
    kl = np.sum(0.5 * (scale**2 + shift**2 - 1) - np.log(scale))
    assert log_ratio.mean() == pytest.approx(kl, abs=4 * log_ratio.std() / np.sqrt(2e5))


def test_moment_matching_puts_the_affine_map_at_the_weighted_moments():
    rng = np.random.default_rng(3)
    eps = rng.standard_normal((100_000, 4))
    f = eps @ np.array([1.0, 0.0, -0.5, 0.0])
    flow = build_flow(BASE.lazy(), 4, transforms=1, hidden_features=(8,))
    moment_match_init(flow, eps, f, beta=1.2)
    torch.manual_seed(3)
    _, _, x = draw_flow(flow, BASE, lambda x: x[:, 0], 50_000, keep_x=True)
    # exact tilt of N(0, I) by exp(beta a.z): N(beta a, I)
    np.testing.assert_allclose(x.mean(0), [1.2, 0.0, -0.6, 0.0], atol=0.04)
    np.testing.assert_allclose(x.std(0), 1.0, atol=0.03)


def test_unknown_family_is_an_error():
    with pytest.raises(ValueError, match="flow must be one of"):
        build_flow(BASE.lazy(), 4, flow="glow")
