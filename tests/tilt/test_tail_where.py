"""``tail_probability`` / ``sample_tail`` with a further condition ``where`` on the event.

Base ``N(0, I_2)``, ``f = x_1``: ``P(x_1 > t, x_2 <= 0) = Phi(-t) / 2`` exactly, and
``p`` given that event has ``x_2`` a half-normal on ``(-inf, 0]``.
"""

import math

import pytest
import torch
from scipy.stats import norm

from sktilt import BoltzmannTuner, LatentSampler, LinearCriterion


def below_zero(x):
    return x[:, 1] <= 0.0


@pytest.fixture(scope="module")
def tuner():
    base = LatentSampler(torch.nn.Identity(), latent_dim=2)
    return BoltzmannTuner(base, LinearCriterion([1.0, 0.0]), kl_budget=-math.log(0.01),
                          random_state=0).fit()


def test_tail_probability_with_where_matches_the_closed_form(tuner):
    t = 2.326  # the top 1 % of x_1
    estimate = tuner.tail_probability(t, where=below_zero, n_samples=200_000)
    exact = norm.sf(t) / 2
    assert abs(estimate.probability - exact) <= 3 * estimate.std_error
    assert estimate.std_error < 0.05 * exact


def test_sample_tail_with_where_draws_p_given_the_whole_event(tuner):
    x = tuner.sample_tail(4000, 2.326, where=below_zero, random_state=1)
    assert (x[:, 0] > 2.326).all() and (x[:, 1] <= 0).all()
    # x_2 given x_2 <= 0 is minus a half-normal: mean -sqrt(2 / pi).
    assert x[:, 1].mean() == pytest.approx(-math.sqrt(2 / math.pi), abs=0.06)


def test_where_must_return_a_boolean_mask(tuner):
    with pytest.raises(ValueError, match="where must return a boolean mask"):
        tuner.tail_probability(1.0, where=lambda x: x[:, 1], n_samples=1000)
    with pytest.raises(TypeError, match="where must be a callable"):
        tuner.sample_tail(10, 1.0, where=0.5)
