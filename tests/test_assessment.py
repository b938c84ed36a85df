"""Ex-ante criteria assessment (BTGM Sec. 4.2)."""

import numpy as np
import pytest
import torch

from sktilt import LatentSampler
from sktilt.assessment import assess_criteria
from sktilt.tilt import ClassLogProbability, LinearCriterion


def _probability(logits_module, label):
    def h(x):
        return torch.softmax(logits_module(x), -1)[:, label]
    return h


def test_linear_criterion_has_constant_normalised_gradient():
    base = LatentSampler(torch.nn.Identity(), latent_dim=3)
    a = [3.0, 4.0, 0.0]  # f = a.z ~ N(0, 25): normalised gradient norm = |a| / 5 = 1
    res = assess_criteria(base, {"linear": LinearCriterion(a)}, random_state=0)
    np.testing.assert_allclose(res.gradient_norms["linear"], 1.0, rtol=0.02)
    assert res.location["linear"] == pytest.approx(0.0, abs=0.2)
    assert res.scale["linear"] == pytest.approx(5.0, rel=0.03)


def test_log_probability_is_preferred_to_probability():
    # A sharp logistic classifier in latent space: h saturates (plateaus + cliff),
    # log h keeps a useful gradient on the far side (paper Fig. 1).
    clf = torch.nn.Linear(2, 2)
    with torch.no_grad():
        clf.weight.copy_(torch.tensor([[0.0, 0.0], [6.0, 0.0]]))
        clf.bias.copy_(torch.tensor([0.0, -9.0]))
    base = LatentSampler(torch.nn.Identity(), latent_dim=2)
    res = assess_criteria(base, {"h": _probability(clf, 1),
                                 "log h": ClassLogProbability(clf, 1),
                                 "numpy": lambda x: x.detach().numpy()[:, 0]},
                          random_state=0)
    assert res.recommended == "log h"
    assert res.summary["h"]["zero_fraction"] > 0.3
    assert res.summary["log h"]["zero_fraction"] < 0.05
    assert res.summary["h"]["cv"] > 2 * res.summary["log h"]["cv"]
    assert res.summary["numpy"] is None
    text = res.report()
    assert "log h" in text and "recommended" in text and "not differentiable" in text


def test_assess_criteria_errors():
    base = LatentSampler(torch.nn.Identity(), latent_dim=2)
    with pytest.raises(ValueError, match="non-empty"):
        assess_criteria(base, {})
    with pytest.raises(TypeError, match="must be callable"):
        assess_criteria(base, {"x": 3})
