"""Honesty: the reliability diagnostics of the tuner's estimates, against exact cases."""

import math
import warnings

import numpy as np
import pytest
import torch
from scipy.stats import norm

from sktilt import BoltzmannTuner, LatentSampler, LinearCriterion, TiltQualityWarning
from sktilt.tilt._reference import importance_diagnostics, pareto_k


def test_pareto_k_of_gaussian_importance_weights():
    # target N(0, 1), proposal N(0, s^2): weights ~ exp(x^2 (1/s^2 - 1) / 2), whose tail
    # index is k = 1 - s^2 for s < 1 (bounded weights, k < 0, for s > 1)
    rng = np.random.default_rng(0)
    for s, k in ((0.6, 0.64), (0.8, 0.36)):
        x = rng.normal(0, s, 200_000)
        assert pareto_k(-0.5 * x**2 + 0.5 * (x / s) ** 2) == pytest.approx(k, abs=0.12)
    x = rng.normal(0, 2.0, 200_000)
    assert pareto_k(-0.5 * x**2 + 0.5 * (x / 2.0) ** 2) < 0
    assert math.isnan(pareto_k(np.zeros(10)))


def _gaussian_draws(rng, beta, a, shift_factor=1.0, scale=1.0, n=100_000):
    z = rng.standard_normal((n, a.size)) * scale + shift_factor * beta * a
    log_q = (-0.5 * (((z - shift_factor * beta * a) / scale) ** 2).sum(1)
             - a.size * math.log(scale))
    log_p = -0.5 * (z**2).sum(1)
    return log_q - log_p, z @ a


def test_importance_diagnostics_tell_a_good_fit_from_an_under_fit():
    rng = np.random.default_rng(1)
    a, beta = np.array([1.0, -0.5]), 1.5
    f_ref = rng.standard_normal((200_000, 2)) @ a
    # the exact tilt N(beta a, I): weights constant, E_q f above the top-exp(-KL) mean
    log_ratio, f = _gaussian_draws(rng, beta, a)
    good = importance_diagnostics(log_ratio, f, beta, f_ref)
    assert good.pareto_k < 0.5 and good.ess_fraction > 0.99
    assert good.criterion_mean == pytest.approx(beta * a @ a, rel=0.01)
    assert good.optimality_margin > 0 and not good.under_fits(f.std() / math.sqrt(f.size))
    # a flow that spent its KL on shrinking instead of moving: below the guarantee
    log_ratio, f = _gaussian_draws(rng, beta, a, shift_factor=0.7, scale=0.5)
    bad = importance_diagnostics(log_ratio, f, beta, f_ref)
    assert bad.under_fits(f.std() / math.sqrt(f.size))
    assert bad.pareto_k > 0.7  # lighter-tailed than the tilt


def test_a_converged_fit_passes_its_own_checks():
    base = LatentSampler(torch.nn.Identity(), latent_dim=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TiltQualityWarning)
        tuner = BoltzmannTuner(base, LinearCriterion([1.0, 0.0, 0.0]), kl_budget=3.0,
                               random_state=0).fit()
    d = tuner.diagnostics_
    assert tuner.converged_ and d.optimality_margin > 0
    assert tuner.history_[-1]["pareto_k"] == d.pareto_k


def test_tail_probability_widens_its_error_when_it_disagrees_with_the_reference():
    base = LatentSampler(torch.nn.Identity(), latent_dim=2)
    tuner = BoltzmannTuner(base, LinearCriterion([1.0, 0.0]), kl_budget=3.0,
                           random_state=0).fit()
    t = 2.5
    honest = tuner.tail_probability(t, n_samples=50_000)
    assert abs(honest.probability - norm.sf(t)) < 3 * honest.std_error
    assert abs(honest.reference_z) < 3
    tuner._reference_f = tuner._reference_f + 1.0  # a reference the proposal contradicts
    with pytest.warns(TiltQualityWarning, match="standard error is widened"):
        widened = tuner.tail_probability(t, n_samples=50_000)
    assert widened.probability == honest.probability
    assert widened.std_error >= abs(widened.probability - widened.reference_probability)


def test_sample_tail_draws_until_it_has_enough_effective_candidates():
    base = LatentSampler(torch.nn.Identity(), latent_dim=2)
    tuner = BoltzmannTuner(base, LinearCriterion([1.0, 0.0]), kl_budget=4.6,
                           random_state=0).fit()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no "only N effective" warning
        Z = tuner.sample_tail(2000, 2.5, random_state=3)
    # exact: z_0 | z_0 > 2.5 is a truncated normal
    from scipy.stats import kstest, truncnorm
    assert kstest(Z[:, 0], truncnorm(2.5, np.inf).cdf).statistic < 0.05
    with pytest.warns(RuntimeWarning, match="effective candidates"):
        tuner.sample_tail(2000, 2.5, oversample=1, random_state=3)
