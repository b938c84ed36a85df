"""A decoder or criterion that is NaN where the tilt goes: consistent state, the right blame."""

import warnings

import numpy as np
import pytest
import torch

from sktilt import BoltzmannTuner, LatentSampler, LinearCriterion


class NaNBeyond(torch.nn.Module):
    """Identity decoder that returns NaN where z[0] > edge."""

    def __init__(self, edge):
        super().__init__()
        self.edge = edge

    def forward(self, z):
        return torch.where(z[:, :1] > self.edge, torch.full_like(z, float("nan")), z)


def nan_criterion(x):
    return torch.where(x[:, 0] > 5.0, torch.full_like(x[:, 0], float("nan")), x[:, 0])


CASES = {"decoder": (NaNBeyond(5.0), LinearCriterion([1.0, 0.0])),
         "criterion": (torch.nn.Identity(), nan_criterion)}


@pytest.mark.parametrize("culprit", list(CASES))
def test_nan_in_the_bulk_of_p_is_blamed_before_training(culprit):
    decoder = NaNBeyond(2.0) if culprit == "decoder" else torch.nn.Identity()
    criterion = (LinearCriterion([1.0, 0.0]) if culprit == "decoder" else
                 lambda x: torch.where(x[:, 0] > 2.0, np.nan, x[:, 0]))
    with pytest.raises(ValueError, match=culprit):
        BoltzmannTuner(LatentSampler(decoder, latent_dim=2), criterion, random_state=0).fit()


@pytest.mark.parametrize("culprit", list(CASES))
def test_divergence_keeps_a_consistent_flow_and_names_the_culprit(culprit):
    decoder, criterion = CASES[culprit]
    tuner = BoltzmannTuner(LatentSampler(decoder, latent_dim=2), criterion, kl_budget=1.0,
                           random_state=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tuner.fit()
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert any(f"the {culprit} returned NaN/inf" in m for m in messages), messages
    # what is reported describes what is kept: KL near the budget, samples finite and
    # tilted by the reported beta (closed form for a linear tilt of N(0, I): mean beta a)
    assert tuner.kl_ == pytest.approx(1.0, rel=0.1)
    sample = tuner.sample(4000, random_state=0)
    assert np.isfinite(sample).all()
    assert sample[:, 0].mean() == pytest.approx(tuner.beta_, abs=0.1)
    assert tuner.criterion_mean_ == pytest.approx(tuner.beta_, abs=0.05)


@pytest.mark.parametrize("culprit", list(CASES))
def test_no_model_to_keep_is_an_error_naming_the_culprit(culprit):
    decoder, criterion = CASES[culprit]
    tuner = BoltzmannTuner(LatentSampler(decoder, latent_dim=2), criterion, kl_budget=6.0,
                           random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(FloatingPointError, match=f"the {culprit} returned NaN/inf"):
            tuner.fit()
    assert not hasattr(tuner, "beta_")
