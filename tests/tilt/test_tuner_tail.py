"""Tail optimality: with budget -log(rho), E_q f reaches the top-rho mean of f under p."""

import numpy as np
import torch

from sktilt import BoltzmannTuner, LatentSampler, quantile_budget
from sktilt.tilt import CurveMaximum


def _mlp_decoder(latent_dim=3, out=24, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(latent_dim, 32), torch.nn.Tanh(),
                               torch.nn.Linear(32, out))


def test_tuned_mean_reaches_top_quantile_mean_of_rejection_sampling():
    rho = 0.01
    base = LatentSampler(_mlp_decoder(), latent_dim=3)
    f = base.sample(200_000, random_state=1).max(1)
    top = np.sort(f)[-int(rho * f.size):]
    tuner = BoltzmannTuner(base, CurveMaximum(), kl_budget=quantile_budget(rho),
                           max_iter=200, random_state=0).fit()
    assert abs(tuner.kl_ - quantile_budget(rho)) < 0.1 * quantile_budget(rho)
    # q_beta is KL-optimal: E_q f >= mean over the top-rho tail (minus MC tolerance:
    # SE of both means).
    tol = 3 * (top.std() / np.sqrt(top.size) + tuner.criterion_mean_se_)
    assert tuner.criterion_mean_ >= top.mean() - tol
    # and the samples really are tail samples: most exceed the (1 - rho) quantile of p
    fq = tuner.sample(5000, random_state=2).max(1)
    assert np.mean(fq >= np.quantile(f, 1 - rho)) > 0.3
    # the importance-sampling reference agrees with the fitted E_q f
    assert abs(tuner.reference_.criterion_mean - tuner.criterion_mean_) < 0.05 * abs(top.mean())
