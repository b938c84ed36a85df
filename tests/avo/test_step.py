"""The pure pieces of an AVO update and the critic losses, against closed forms."""

import numpy as np
import pytest
import torch
from torch.optim.swa_utils import AveragedModel

from sktilt import GaussianProposal
from sktilt.avo._critics import CriticModule, critic_loss, generator_values
from sktilt.avo._step import (
    ProposalObjective,
    annealed_gamma,
    polynomial_average,
    proposal_net_for,
)
from sktilt.gradients import linear_surrogate, score_function_gradient


def test_proposal_objective_gradient_is_eq_12_plus_gamma_entropy():
    module = GaussianProposal([0.2, -1.0], [0.5, 2.0]).build()
    theta = torch.as_tensor(GaussianProposal([0.2, -1.0], [0.5, 2.0]).sample(64, 0))
    values = theta[:, 0] ** 2 - theta[:, 1]
    loss, extras = ProposalObjective("optimal")(module, theta=theta, values=values, gamma=0.7)
    loss.backward()
    # closed-form scores in local coordinates: d/d loc_step = sd * (theta - loc) / sd^2,
    # d/d log_scale_step = ((theta - loc)^2 / sd^2 - 1) / 3
    sd = np.array([0.5, 2.0])
    e = (theta.numpy() - [0.2, -1.0]) / sd
    scores = np.column_stack([e, (e**2 - 1) / 3])
    expected = score_function_gradient(scores, values.numpy(), "optimal")
    expected[2:] += 0.7 / 3  # gamma dH/d log_scale_step
    got = np.r_[module.loc_step.grad.numpy(), module.log_scale_step.grad.numpy()]
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    assert extras["generator_value"] == pytest.approx(values.mean().item())


def test_adam_steps_are_lr_proposal_spreads_on_a_steady_gradient():
    module = GaussianProposal([0.0, 0.0], [2.0, 1.0]).build()

    def steady(m):  # constant gradient (3, -0.01) on the location itself
        g = torch.tensor([3.0, -0.01], dtype=torch.float64) * m.loc_unit
        return linear_surrogate(m, {"loc_step": g}), {}

    net = proposal_net_for(module, steady, lr=0.1, n_updates=10**9, callbacks=[])
    for _ in range(10):
        net.run(1)
        module.recentre_()
    # RMSprop normalises the step to lr in local units: 10 steps of lr * sd, downhill
    np.testing.assert_allclose(module.loc().detach(), [-10 * 0.1 * 2.0, 10 * 0.1 * 1.0],
                               rtol=1e-6)


def test_annealed_gamma():
    assert annealed_gamma(2.0, 0, 10) == pytest.approx(0.02)
    assert annealed_gamma(2.0, 9, 10) == 2.0


def test_polynomial_average_equals_weighted_mean_of_iterates():
    p = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    module = torch.nn.ParameterList([p])
    averaged = AveragedModel(module, avg_fn=polynomial_average(3.0))
    iterates = np.random.default_rng(0).standard_normal((7, 3))
    for x in iterates:
        with torch.no_grad():
            p.copy_(torch.as_tensor(x))
        averaged.update_parameters(module)
    weights = np.arange(1, 8) ** 3.0
    np.testing.assert_allclose(averaged.module[0].detach(),
                               np.average(iterates, axis=0, weights=weights), rtol=1e-12)


def _linear_critic(w):
    critic = CriticModule(2, hidden_layer_sizes=())
    with torch.no_grad():
        critic.mlp[0].weight.copy_(torch.tensor([w]))
        critic.mlp[0].bias.zero_()
    return critic


@pytest.mark.parametrize("penalty", ["wgan-gp", "wgan-lp", "r1"])
def test_critic_losses_on_a_linear_critic(penalty):
    w = [1.5, 2.0]  # |grad d| = 2.5 everywhere
    d = _linear_critic(w)
    x_obs, x_sim = torch.randn(256, 2) + 1.0, torch.randn(256, 2)
    gen = torch.Generator().manual_seed(0)
    loss, wasserstein, gp = critic_loss(penalty, d, x_obs, x_sim, gen, 10.0)
    d_obs, d_sim = x_obs @ torch.tensor(w), x_sim @ torch.tensor(w)
    assert wasserstein.item() == pytest.approx((d_obs.mean() - d_sim.mean()).item(), rel=1e-5)
    if penalty == "r1":
        assert gp.item() == pytest.approx(2.5**2, rel=1e-5)
        expected = (torch.nn.functional.softplus(d_sim).mean()
                    + torch.nn.functional.softplus(-d_obs).mean() + 5.0 * 2.5**2)
    else:  # one- and two-sided penalties agree for slopes above 1
        assert gp.item() == pytest.approx((2.5 - 1) ** 2, rel=1e-5)
        expected = -wasserstein + 10.0 * (2.5 - 1) ** 2
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    values = generator_values(d, x_sim, penalty)
    ref = torch.nn.functional.softplus(-d_sim) if penalty == "r1" else -d_sim
    np.testing.assert_allclose(values.numpy(), ref.double().numpy(), rtol=1e-5)


def test_one_sided_penalty_ignores_slopes_below_one():
    d = _linear_critic([0.3, 0.4])  # |grad d| = 0.5
    x = torch.randn(64, 2)
    gen = torch.Generator().manual_seed(0)
    assert critic_loss("wgan-lp", d, x, x, gen, 10.0)[2].item() == 0.0
    assert critic_loss("wgan-gp", d, x, x, gen, 10.0)[2].item() == pytest.approx(0.25)
    with pytest.raises(ValueError, match="penalty must be one of"):
        critic_loss("hinge", d, x, x, gen, 10.0)


def test_tightening_closes_the_gap_to_the_floor_by_three_quarters():
    from sktilt.avo import GaussianProposal
    from sktilt.avo._step import tightening_fraction

    n = 200
    assert tightening_fraction(99, n) == 0.0 and tightening_fraction(160, n) == 1.0
    module = GaussianProposal([0.0, 0.0, 0.0], [1.0, 0.05, 1.0]).build()
    floor = np.array([0.1, 0.1, np.inf])
    for it in range(n // 2, 3 * n // 4 + 1):
        module.tighten_toward_(floor, tightening_fraction(it, n))
    spread = module.spread().detach().numpy()
    # reached the floor; never widened one already below it; an infinite floor is ignored
    np.testing.assert_allclose(spread, [0.1, 0.05, 1.0], rtol=1e-9)
