"""GaussianProposal: closed forms checked against torch autograd, torch.distributions,
finite differences and Monte Carlo."""

import numpy as np
import pytest
import torch
from sklearn.base import clone

from sktilt import GaussianProposal

BOUNDED = [(None, None), (0.0, None), (-1.0, 2.0)]


def _torch_log_prob(psi, theta, k, full, bounds):
    """Independent log q(theta) in torch: MultivariateNormal + bijection Jacobian."""
    mu = psi[:k]
    C = torch.eye(k, dtype=torch.float64)
    if full:  # L = diag(s) C with C unit lower-triangular
        rows, cols = np.tril_indices(k, -1)
        C = C.index_put((torch.as_tensor(rows), torch.as_tensor(cols)), psi[2 * k:])
    L = torch.exp(psi[k:2 * k])[:, None] * C
    theta = torch.as_tensor(theta, dtype=torch.float64)
    z, logdet = theta.clone(), torch.zeros(theta.shape[0], dtype=torch.float64)
    for i, (low, high) in enumerate(bounds):
        if low is not None and high is not None:
            u = (theta[:, i] - low) / (high - low)
            z[:, i] = torch.logit(u)
            logdet += np.log(high - low) + torch.log(u) + torch.log1p(-u)
        elif low is not None:
            z[:, i] = torch.log(theta[:, i] - low)
            logdet += z[:, i]
    dist = torch.distributions.MultivariateNormal(mu, scale_tril=L)
    return dist.log_prob(z) - logdet, dist


@pytest.mark.parametrize("covariance", ["diag", "full"])
@pytest.mark.parametrize("bounds", [None, BOUNDED])
def test_log_prob_and_score_match_autograd(covariance, bounds):
    q = GaussianProposal([0.3, -0.2, 0.5], [0.7, 1.3, 0.4], covariance=covariance,
                         bounds=bounds)
    if covariance == "full":  # a non-diagonal starting point
        q.set_flat_params(np.r_[q.get_flat_params()[:6], 0.3, -0.4, 0.2])
    theta = q.sample(7, random_state=0)
    psi = torch.tensor(q.get_flat_params(), requires_grad=True)
    lp, _ = _torch_log_prob(psi, theta, 3, covariance == "full", bounds or [(None, None)] * 3)
    np.testing.assert_allclose(q.log_prob(theta), lp.detach().numpy(), rtol=1e-10)
    rows = [torch.autograd.grad(lp[i], psi, retain_graph=True)[0].numpy() for i in range(7)]
    np.testing.assert_allclose(q.score(theta), np.stack(rows), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("covariance", ["diag", "full"])
def test_entropy_matches_torch_and_monte_carlo(covariance):
    q = GaussianProposal([1.0, 2.0], [0.5, 2.0], covariance=covariance)
    if covariance == "full":
        q.set_flat_params(np.r_[q.get_flat_params()[:4], 0.8])
    psi = torch.tensor(q.get_flat_params())
    _, dist = _torch_log_prob(psi, np.zeros((1, 2)), 2, covariance == "full",
                              [(None, None)] * 2)
    assert q.entropy() == pytest.approx(dist.entropy().item(), rel=1e-12)
    mc = -q.log_prob(q.sample(200_000, random_state=1)).mean()
    assert q.entropy() == pytest.approx(mc, abs=0.01)


@pytest.mark.parametrize("covariance", ["diag", "full"])
def test_entropy_grad_matches_finite_differences(covariance):
    q = GaussianProposal([0.0, 1.0], [0.5, 2.0], covariance=covariance)
    psi = q.get_flat_params()
    fd = []
    for j in range(len(psi)):
        e = np.zeros_like(psi)
        e[j] = 1e-6
        up = clone(q).set_flat_params(psi + e).entropy()
        down = clone(q).set_flat_params(psi - e).entropy()
        fd.append((up - down) / 2e-6)
    np.testing.assert_allclose(q.entropy_grad(), fd, atol=1e-6)


def test_score_has_zero_mean_and_fisher_information():
    """E_q[score] = 0 and, for (mean, log-scale), Cov = diag(1/sigma^2, 2)."""
    q = GaussianProposal([0.5], [0.25], bounds=[(0.0, None)])
    s = q.score(q.sample(400_000, random_state=2))
    assert np.all(np.abs(s.mean(0)) < 5 * np.sqrt(np.array([16.0, 2.0]) / len(s)))
    np.testing.assert_allclose(np.cov(s.T), np.diag([16.0, 2.0]), rtol=0.02, atol=0.05)


def test_flat_params_round_trip_and_state_in_params():
    q = GaussianProposal([1.0, -1.0], [0.5, 2.0], covariance="full")
    psi = np.array([0.1, 0.2, np.log(0.3), np.log(0.4), 0.5])
    q.set_flat_params(psi)
    np.testing.assert_allclose(q.get_flat_params(), psi, atol=1e-12)
    # The state lives in the parameters, so clones carry it.
    np.testing.assert_allclose(clone(q).get_flat_params(), psi, atol=1e-12)
    L = np.array([[0.3, 0.0], [0.5 * 0.4, 0.4]])  # L = diag(s) C
    np.testing.assert_allclose(q.get_params()["scale"], L @ L.T)
    np.testing.assert_allclose(q.covariance_matrix(), L @ L.T)


def test_bounds_keep_samples_in_range_and_median_is_transformed_loc():
    q = GaussianProposal([0.0, 0.0, 0.0], [3.0, 3.0, 3.0], bounds=BOUNDED)
    theta = q.sample(50_000, random_state=3)
    assert theta[:, 1].min() > 0.0
    assert theta[:, 2].min() > -1.0 and theta[:, 2].max() < 2.0
    np.testing.assert_allclose(np.median(theta, 0), q.median(), atol=0.05)
    np.testing.assert_allclose(q.median(), [0.0, 1.0, 0.5])
    np.testing.assert_allclose(q.inverse_transform(q.transform(theta[:5] * 0 + 0.3)), 0.3)
    assert np.isneginf(q.log_prob([[0.0, -1.0, 0.0]]))[0]
    assert GaussianProposal([0.0], [1.0], bounds="positive").median()[0] == 1.0


def test_antithetic_samples_are_mirrored():
    q = GaussianProposal([1.0, 2.0], [0.5, 0.1])
    theta = q.sample(6, random_state=0, antithetic=True)
    np.testing.assert_allclose(theta[:3] + theta[3:], np.tile([2.0, 4.0], (3, 1)))
    with pytest.raises(ValueError, match="even"):
        q.sample(5, antithetic=True)


def test_sample_accepts_int_and_generator_reproducibly():
    q = GaussianProposal([0.0], [1.0])
    np.testing.assert_array_equal(q.sample(4, 7), q.sample(4, 7))
    a = q.sample(4, np.random.default_rng(7))
    np.testing.assert_array_equal(a, q.sample(4, np.random.default_rng(7)))


@pytest.mark.parametrize("kwargs, match", [
    (dict(loc=[0.0, 1.0], scale=[1.0, 2.0, 3.0]), "scale has shape"),
    (dict(loc=[0.0], scale=[-1.0]), "positive"),
    (dict(loc=[np.nan], scale=[1.0]), "finite"),
    (dict(loc=[0.0], scale=[[1.0]]), "covariance='full'"),
    (dict(loc=[0.0, 0.0], scale=[[1.0, 2.0], [2.0, 1.0]], covariance="full"),
     "positive definite"),
    (dict(loc=[0.0], scale=[1.0], bounds=[(0, 1), (0, 1)]), "bounds has 2"),
    (dict(loc=[0.0], scale=[1.0], bounds=[(1, 0)]), "low must be < high"),
    (dict(loc=[0.0], scale=[1.0], covariance="banded"), "covariance must be"),
])
def test_invalid_proposals_raise_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GaussianProposal(**kwargs).sample(1)
