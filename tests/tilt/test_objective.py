"""The objectives the flow is trained on, at the identity flow where they are exact."""

import numpy as np
import pytest
import torch

from sktilt import LatentSampler, LinearCriterion
from sktilt.tilt._bases import as_base
from sktilt.tilt._flows import build_flow
from sktilt.tilt._objective import TiltObjective, WeightedLikelihood

A = np.array([1.0, -2.0, 0.5])
BASE = as_base(LatentSampler(torch.nn.Identity(), latent_dim=3))


def _shift_grad(objective, **kw):
    # q = a one-component mixture N(m, diag s^2) at N(0, I): the gradient wrt its mean
    flow = build_flow(3, components=1)
    loss, extras = objective(flow, **kw)
    loss.backward()
    return flow.base.phi[1].grad.numpy()[0], extras


def test_pathwise_tilt_gradient_is_exact_at_the_identity():
    # q = p: the sticking-the-landing KL gradient is 0 sample by sample, and the tilt's
    # pathwise gradient through z = m + s eps is -beta a, whatever the batch.
    torch.manual_seed(0)
    grad, extras = _shift_grad(TiltObjective(BASE, LinearCriterion(A), 64, pathwise=True),
                               beta=0.7)
    np.testing.assert_allclose(grad, -0.7 * A, rtol=1e-5, atol=1e-6)
    assert extras["kl_batch"] == pytest.approx(0.0, abs=1e-6)


def test_score_function_tilt_gradient_is_unbiased():
    torch.manual_seed(1)
    objective = TiltObjective(BASE, LinearCriterion(A), 256, pathwise=False)
    grads = np.array([_shift_grad(objective, beta=0.7)[0] for _ in range(200)])
    se = grads.std(0) / np.sqrt(len(grads))
    assert np.all(np.abs(grads.mean(0) + 0.7 * A) < 4 * se)


def test_weighted_likelihood_gradient_pulls_toward_the_weighted_mean():
    samples = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    probs = torch.tensor([0.25, 0.75], dtype=torch.float64)
    torch.manual_seed(2)
    grads = np.array([_shift_grad(WeightedLikelihood(512), samples=samples, probs=probs)[0]
                      for _ in range(20)])
    # d/d m of -log N(x; m, I) = -(x - m): at m = 0, -E_w[x]
    np.testing.assert_allclose(grads.mean(0), [-0.25, -1.5, 0.0], atol=0.03)
