"""Adversarial critics of :class:`~sktilt.AVOSimulatorFitter`: the module and its losses.

The critic ``d`` is a :class:`CriticModule` trained by a :class:`~sktilt._training.StepNet`
on :class:`CriticObjective`: mini-batches drawn from the observed data and from the
current batch of simulated data, both passed at each run as ``fit_params``.

Three losses:

* ``"wgan-gp"`` (AVO Eq. 5, Algorithm 1 lines 6-7, Gulrajani et al.):
  ``E[d(x_sim)] - E[d(x_obs)] + lambda E[(||grad d(x_hat)|| - 1)^2]`` on interpolates
  ``x_hat = eps x_obs + (1 - eps) x_sim``; the generator value is ``-d(x_sim)``
  (Eq. 6).
* ``"wgan-lp"`` (Petzka et al., 2018): the same with the one-sided penalty
  ``lambda E[max(0, ||grad d(x_hat)|| - 1)^2]``. With 1-D data the two-sided penalty
  puts a barrier (slope 0 costs ``lambda``) between a critic of slope -1 and one of
  slope +1, so a critic that learnt the wrong sign while the proposal was wide can
  stay stuck; the one-sided penalty has no such barrier.
* ``"r1"`` (Mescheder et al.): the logistic GAN loss
  ``E[softplus(d(x_sim))] + E[softplus(-d(x_obs))] + lambda/2 E[||grad d(x_obs)||^2]``,
  the penalty on observed data only. The Wasserstein loss is unbounded below without a
  penalty on simulated data, hence the logistic loss; the generator value is the
  non-saturating ``softplus(-d(x_sim))``.

Inputs are standardised with the mean and scale of the observed data (module
buffers), so the penalty's unit gradient norm is measured in units of the data's
spread whatever the simulator's units.
"""

from __future__ import annotations

__all__ = ["PENALTIES", "CriticModule", "CriticObjective", "critic_loss", "critic_net",
           "generator_values", "run_critic"]

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .._training import DivergenceError, StepNet
from .._utils import column_scale, warn_at_caller

PENALTIES = ("wgan-gp", "wgan-lp", "r1")
# Critic optimiser: Adam with the betas of WGAN-GP (Gulrajani et al.).
_CRITIC_BETAS = (0.5, 0.9)


class CriticModule(nn.Module):
    """MLP critic ``d(x)`` with built-in input standardisation.

    Parameters
    ----------
    n_features : int
    hidden_layer_sizes : tuple of int
    mean, scale : array-like of shape (n_features,)
        Standardisation statistics (of the observed data).
    """

    def __init__(self, n_features: int, hidden_layer_sizes=(64, 64), mean=None,
                 scale=None):
        super().__init__()
        mean = np.zeros(n_features) if mean is None else np.asarray(mean)
        scale = np.ones(n_features) if scale is None else np.asarray(scale)
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))
        layers, width = [], n_features
        for h in hidden_layer_sizes:
            # LeakyReLU keeps gradients everywhere, which the gradient penalty needs.
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2)]
            width = h
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x):
        return self.mlp((x - self.mean) / self.scale).squeeze(-1)


def _draw(X: torch.Tensor, m: int, generator: torch.Generator) -> torch.Tensor:
    return X[torch.randint(0, X.shape[0], (m,), generator=generator, device=X.device)]


def _wasserstein_penalised(d, x_obs, x_sim, generator, weight, one_sided):
    """Critic loss of WGAN-GP (two-sided) or WGAN-LP (one-sided) on interpolates."""
    d_sim, d_obs = d(x_sim), d(x_obs)
    eps = torch.rand((x_obs.shape[0], 1), generator=generator, device=x_obs.device)
    x_hat = (eps * x_obs + (1.0 - eps) * x_sim).requires_grad_(True)
    (grad,) = torch.autograd.grad(d(x_hat).sum(), x_hat, create_graph=True)
    excess = grad.norm(dim=1) - 1.0
    if one_sided:
        excess = excess.clamp(min=0.0)  # only slopes above 1 cost
    gp = (excess**2).mean()
    wasserstein = d_obs.mean() - d_sim.mean()
    return -wasserstein + weight * gp, wasserstein, gp


def _critic_loss_wgan_gp(d, x_obs, x_sim, generator, weight):
    return _wasserstein_penalised(d, x_obs, x_sim, generator, weight, one_sided=False)


def _critic_loss_wgan_lp(d, x_obs, x_sim, generator, weight):
    return _wasserstein_penalised(d, x_obs, x_sim, generator, weight, one_sided=True)


def _critic_loss_r1(d, x_obs, x_sim, generator, weight):
    x_obs = x_obs.clone().requires_grad_(True)
    d_sim, d_obs = d(x_sim), d(x_obs)
    (grad,) = torch.autograd.grad(d_obs.sum(), x_obs, create_graph=True)
    gp = (grad**2).sum(1).mean()
    loss = F.softplus(d_sim).mean() + F.softplus(-d_obs).mean() + 0.5 * weight * gp
    return loss, d_obs.mean() - d_sim.mean(), gp


_CRITIC_LOSSES = {"wgan-gp": _critic_loss_wgan_gp, "wgan-lp": _critic_loss_wgan_lp,
                  "r1": _critic_loss_r1}


def critic_loss(penalty: str, d: nn.Module, x_obs: torch.Tensor, x_sim: torch.Tensor,
                generator: torch.Generator, weight: float):
    """Critic loss of ``penalty`` on one pair of mini-batches, dispatched by name.

    Parameters
    ----------
    penalty : {"wgan-gp", "wgan-lp", "r1"}
    d : CriticModule
    x_obs, x_sim : tensors of shape (m, n_features)
        Observed and simulated mini-batches of equal size.
    generator : torch.Generator
        Draws the interpolation weights (WGAN penalties).
    weight : float
        The penalty weight ``lambda``.

    Returns
    -------
    loss, wasserstein, penalty : scalar tensors
        The loss to minimise, the estimate ``E d(x_obs) - E d(x_sim)`` and the penalty.
    """
    if penalty not in _CRITIC_LOSSES:
        raise ValueError(f"penalty must be one of {PENALTIES}, got {penalty!r}.")
    return _CRITIC_LOSSES[penalty](d, x_obs, x_sim, generator, weight)


@dataclass
class CriticObjective:
    """The critic's objective at one step (call with ``X_obs``, ``X_sim``, ``generator``).

    Parameters
    ----------
    penalty : {"wgan-gp", "wgan-lp", "r1"}
    penalty_weight : float
        ``lambda`` of the gradient penalty.
    batch_size : int
        Size of the observed (and simulated) mini-batches.
    """

    penalty: str
    penalty_weight: float
    batch_size: int

    def __call__(self, d: nn.Module, *, X_obs: torch.Tensor, X_sim: torch.Tensor,
                 generator: torch.Generator) -> tuple[torch.Tensor, dict]:
        m = min(self.batch_size, X_sim.shape[0])
        x_sim, x_obs = _draw(X_sim, m, generator), _draw(X_obs, m, generator)
        loss, wasserstein, gp = critic_loss(self.penalty, d, x_obs, x_sim, generator,
                                            self.penalty_weight)
        return loss, {"critic_estimate": wasserstein.item(), "gradient_penalty": gp.item()}


def generator_values(d: nn.Module, X_sim: torch.Tensor, penalty: str) -> torch.Tensor:
    """Per-sample generator loss ``L_g(x_sim)``: ``-d`` (Eq. 6), or ``softplus(-d)`` for R1.

    The R1 critic is trained with the logistic loss, whose generator counterpart is the
    non-saturating ``softplus(-d(x_sim))``.
    """
    d.eval()
    with torch.no_grad():
        values = d(X_sim)
    return (F.softplus(-values) if penalty == "r1" else -values).double()


def critic_net(X_obs: torch.Tensor, hidden_layer_sizes, objective: CriticObjective, *,
               lr: float, device) -> StepNet:
    """The skorch net of a critic standardising its inputs with ``X_obs``'s statistics."""
    module = CriticModule(X_obs.shape[1], tuple(hidden_layer_sizes),
                          X_obs.mean(0).cpu().numpy(), column_scale(X_obs.cpu().numpy()))
    return StepNet(module, objective, optimizer=torch.optim.Adam, lr=lr,
                   optimizer__betas=_CRITIC_BETAS, device=device).initialize()

def run_critic(critic: StepNet, n_steps: int, **data) -> dict:
    """Run ``n_steps`` critic steps on ``data`` (``X_obs``, ``X_sim``, ``generator``).

    A non-finite loss restores the critic's last good weights and warns; the fit goes
    on. Returns the run's mean critic loss and Wasserstein estimate.
    """
    try:
        critic.run(n_steps, **data)
    except DivergenceError as exc:
        warn_at_caller(f"The critic diverged ({exc}); "
                       + ("restored its last good state." if exc.restored
                         else "no good state to restore yet; continuing."),
                       RuntimeWarning)
        return {"critic_loss": np.nan, "critic_estimate": np.nan}
    row = critic.history[-1]
    estimates = [b["critic_estimate"] for b in row["batches"] if "critic_estimate" in b]
    return {"critic_loss": float(row["train_loss"]),
            "critic_estimate": float(np.mean(estimates)) if estimates else np.nan}
