"""GaussianProposal and its torch module: autograd scores, log-densities and entropies
checked against closed forms, torch.distributions and Monte Carlo."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.utils._param_validation import InvalidParameterError

from sktilt import GaussianProposal
from sktilt.gradients import per_sample_scores

BOUNDED = [(None, None), (0.0, None), (-1.0, 2.0)]


def _closed_form(loc, L, theta, bounds):
    """Independent references: log q, and the closed-form scores d/d loc, d/d L of log q.

    With ``r = z - loc``, ``e = L^{-1} r`` and ``a = L^{-T} e``: ``d/d loc = a`` and
    ``d/d L = tril(a e^T) - diag(1/L_ii)``; the bijection does not depend on psi.
    """
    z = theta.copy()
    logdet = np.zeros(len(theta))
    for i, (low, high) in enumerate(bounds):
        if low is not None and high is not None:
            u = (theta[:, i] - low) / (high - low)
            z[:, i] = np.log(u) - np.log1p(-u)
            logdet += np.log(high - low) + np.log(u) + np.log1p(-u)
        elif low is not None:
            z[:, i] = np.log(theta[:, i] - low)
            logdet += z[:, i]
    k = len(loc)
    r = z - loc
    e = np.linalg.solve(L, r.T).T
    lp = (-0.5 * (e**2).sum(1) - np.log(np.diag(L)).sum() - 0.5 * k * np.log(2 * np.pi)
          - logdet)
    a = np.linalg.solve(L.T, e.T).T
    d_L = np.tril(a[:, :, None] * e[:, None, :]) - np.diag(1 / np.diag(L))[None]
    return lp, a, d_L


def _module(q):
    module = q.build()
    loc = module.loc().detach().numpy()
    L = module.scale_tril().detach().numpy()
    return module, loc, L


@pytest.mark.parametrize("covariance", ["diag", "full"])
@pytest.mark.parametrize("bounds", [None, BOUNDED])
def test_log_prob_and_autograd_scores_match_closed_forms(covariance, bounds):
    scale = ([0.7, 1.3, 0.4] if covariance == "diag" else
             np.array([[0.49, 0.2, -0.1], [0.2, 1.69, 0.3], [-0.1, 0.3, 0.16]]))
    q = GaussianProposal([0.3, 0.8, 0.5], scale, covariance=covariance, bounds=bounds)
    module, loc, L = _module(q)
    theta = q.sample(7, random_state=0)
    lp, d_loc, d_L = _closed_form(loc, L, theta, bounds or [(None, None)] * 3)
    np.testing.assert_allclose(q.log_prob(theta), lp, rtol=1e-10)
    scores = per_sample_scores(module, torch.as_tensor(theta))
    # loc = anchor + unit * step: d/d step = unit * d/d loc
    np.testing.assert_allclose(scores["loc_step"].numpy(),
                               d_loc * module.loc_unit.numpy(), rtol=1e-8, atol=1e-10)
    # log s_i scales row i of L: d/d log s_i = sum_j L_ij d/d L_ij, times the step unit
    d_log_s = (d_L * L[None]).sum(2)
    np.testing.assert_allclose(scores["log_scale_step"].numpy(), d_log_s / 3, rtol=1e-8,
                               atol=1e-10)
    if covariance == "full":  # C_ij (i > j) enters L_ij = s_i C_ij
        rows, cols = np.tril_indices(3, -1)
        expected = d_L[:, rows, cols] * np.diag(L)[rows] / 3
        np.testing.assert_allclose(scores["tril_step"].numpy(), expected, rtol=1e-8,
                                   atol=1e-10)


@pytest.mark.parametrize("covariance", ["diag", "full"])
def test_entropy_matches_torch_and_monte_carlo_and_its_gradient(covariance):
    scale = [0.5, 2.0] if covariance == "diag" else np.array([[0.25, 0.4], [0.4, 4.0]])
    q = GaussianProposal([1.0, 2.0], scale, covariance=covariance)
    module, loc, L = _module(q)
    dist = torch.distributions.MultivariateNormal(torch.as_tensor(loc),
                                                  scale_tril=torch.as_tensor(L))
    assert q.entropy() == pytest.approx(dist.entropy().item(), rel=1e-12)
    mc = -q.log_prob(q.sample(200_000, random_state=1)).mean()
    assert q.entropy() == pytest.approx(mc, abs=0.01)
    # H = const + sum log s: dH/d log_scale_step = 1/3 (the step unit), 0 elsewhere
    module.entropy().backward()
    np.testing.assert_allclose(module.log_scale_step.grad.numpy(), [1 / 3, 1 / 3])
    assert module.loc_step.grad is None  # the entropy does not depend on the location


def test_scores_have_zero_mean_and_the_fisher_information():
    """E_q[score] = 0 and, for (mean, log-scale), Cov = diag(1/sigma^2, 2) (in loc units)."""
    # median exp(0.5), spread 0.25 exp(0.5) in theta: z = log theta ~ N(0.5, 0.25^2)
    q = GaussianProposal([np.exp(0.5)], [0.25 * np.exp(0.5)], bounds=[(0.0, None)])
    module = q.build()
    s = per_sample_scores(module, torch.as_tensor(q.sample(400_000, random_state=2)))
    s = np.column_stack([s["loc_step"].numpy() / 0.25, s["log_scale_step"].numpy() * 3])
    assert np.all(np.abs(s.mean(0)) < 5 * np.sqrt(np.array([16.0, 2.0]) / len(s)))
    np.testing.assert_allclose(np.cov(s.T), np.diag([16.0, 2.0]), rtol=0.02, atol=0.05)


def test_local_coordinates_and_fitted_spec_describe_the_module():
    q = GaussianProposal([1.0, -1.0], [0.5, 2.0], covariance="full")
    module = q.build()
    with torch.no_grad():  # one optimiser-like step in local coordinates
        module.loc_step.copy_(torch.tensor([2.0, -1.0]))
        module.log_scale_step.copy_(torch.tensor([3.0 * np.log(0.6), 0.0]))
        module.tril_step.copy_(torch.tensor([1.5]))
    # a location step is measured in the current standard deviations
    np.testing.assert_allclose(module.loc().detach(), [1.0 + 2 * 0.5, -1.0 - 2.0])
    before = module.scale_tril().detach().clone()
    module.recentre_()  # moves the anchor, keeps the distribution
    np.testing.assert_allclose(module.scale_tril().detach(), before)
    assert torch.all(module.loc_step == 0)
    L = before.numpy()
    np.testing.assert_allclose(L, [[0.3, 0.0], [0.5 * 2.0, 2.0]])  # L = diag(s) C
    fitted = q.fitted(module)
    np.testing.assert_allclose(fitted.get_params()["loc"], [2.0, -3.0])
    np.testing.assert_allclose(fitted.get_params()["scale"], L @ L.T)
    np.testing.assert_allclose(clone(fitted).covariance_matrix(), L @ L.T)
    np.testing.assert_allclose(module.spread().detach(), np.sqrt(np.diag(L @ L.T)))


def test_floor_spread_stops_shrinking_at_the_floor_and_never_widens():
    module = GaussianProposal([0.0, 0.0], [0.5, 0.01]).build()
    previous = module.log_scale().detach().clone()
    with torch.no_grad():
        module.log_scale_step.copy_(3 * torch.log(torch.tensor([0.1 / 0.5, 0.5])))
    module.floor_spread_(np.array([0.2, 0.2]), previous)
    s = module.log_scale().exp().detach().numpy()
    np.testing.assert_allclose(s, [0.2, 0.01])  # stopped at the floor; below it: kept
    np.testing.assert_allclose(module.loc_unit.numpy(), s)  # units follow the spread
    module.floor_spread_(np.array([np.inf, np.inf]), module.log_scale().detach().clone())
    np.testing.assert_allclose(module.log_scale().exp().detach().numpy(), s)


def test_bounds_keep_samples_in_range_and_median_is_transformed_loc():
    # medians (0, 1, 0.5); spreads in theta units: z ~ N(0, 3^2) in every coordinate
    q = GaussianProposal([0.0, 1.0, 0.5], [3.0, 3.0, 2.25], bounds=BOUNDED)
    theta = q.sample(50_000, random_state=3)
    assert theta[:, 1].min() > 0.0
    assert theta[:, 2].min() > -1.0 and theta[:, 2].max() < 2.0
    np.testing.assert_allclose(np.median(theta, 0), q.median(), atol=0.05)
    np.testing.assert_allclose(q.median(), [0.0, 1.0, 0.5])
    np.testing.assert_allclose(q.inverse_transform(q.transform(theta[:5] * 0 + 0.3)), 0.3)
    assert np.isneginf(q.log_prob([[0.0, -1.0, 0.0]]))[0]
    assert GaussianProposal([1.0], [1.0], bounds="positive").median()[0] == 1.0
    np.testing.assert_allclose(q.build().spread().detach().numpy(), 3.0)


def test_loc_and_scale_are_in_the_parameters_own_units():
    q = GaussianProposal([3.0, 1.0], [0.5, 0.02], bounds=[(0, 10), (0, None)])
    theta = q.sample(200_000, random_state=0)
    np.testing.assert_allclose(np.median(theta, 0), [3.0, 1.0], rtol=0.01)
    np.testing.assert_allclose(theta.std(0), [0.5, 0.02], rtol=0.05)  # local spread
    fitted = q.fitted(q.build())  # a round trip through the module
    np.testing.assert_allclose(fitted.loc, [3.0, 1.0])
    np.testing.assert_allclose(fitted.scale, [0.5, 0.02])
    with pytest.raises(ValueError, match="strictly inside bounds"):
        GaussianProposal([0.0], [1.0], bounds="positive").build()


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
    (dict(loc=[], scale=[1.0]), "non-empty"),
])
def test_invalid_proposals_raise_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GaussianProposal(**kwargs).sample(1)


def test_invalid_covariance_option_is_a_parameter_error():
    with pytest.raises(InvalidParameterError, match="covariance"):
        GaussianProposal([0.0], [1.0], covariance="banded").build()
