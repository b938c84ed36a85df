"""Adversarial critics for :class:`~sktilt.AVOSimulatorFitter`.

:class:`CriticNet` is a :class:`~sktilt.nets.StepNet` (a skorch net, so history,
callbacks and ``device`` come from skorch) whose objective is the critic loss of AVO
Algorithm 1 on mini-batches drawn from the observed data and from the current batch
of simulated data, which are stored on the net with :meth:`CriticNet.set_data` before
each :meth:`~sktilt.nets.StepNet.run_steps`.

Two losses:

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

__all__ = ["CriticModule", "CriticNet", "PENALTIES"]

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .nets import StepNet

PENALTIES = ("wgan-gp", "wgan-lp", "r1")


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


class CriticNet(StepNet):
    """Skorch net training a :class:`CriticModule` on observed vs simulated data.

    Parameters
    ----------
    module : CriticModule
    penalty : {"wgan-gp", "wgan-lp", "r1"}
    penalty_weight : float
        ``lambda`` of the gradient penalty.
    batch_size_obs : int
        Size of the observed (and simulated) mini-batches.
    **kwargs
        Passed to :class:`~sktilt.nets.StepNet` (``steps_per_epoch`` is the number of
        critic steps per AVO iteration, ``n_critic``).
    """

    def __init__(self, module, *args, penalty="wgan-gp", penalty_weight=1.0,
                 batch_size_obs=256, **kwargs):
        super().__init__(module, *args, **kwargs)
        self.penalty = penalty
        self.penalty_weight = penalty_weight
        self.batch_size_obs = batch_size_obs

    def set_data(self, X_obs: torch.Tensor, X_sim: torch.Tensor,
                 generator: torch.Generator) -> "CriticNet":
        """Store the tensors the next steps draw their mini-batches from."""
        self.X_obs_, self.X_sim_, self.generator_ = X_obs, X_sim, generator
        return self

    def clear_data(self) -> "CriticNet":
        """Drop the stored tensors and generator (they are not needed after fitting, and
        a ``torch.Generator`` does not pickle)."""
        for name in ("X_obs_", "X_sim_", "generator_"):
            self.__dict__.pop(name, None)
        return self

    def _draw(self, X: torch.Tensor, m: int) -> torch.Tensor:
        idx = torch.randint(0, X.shape[0], (m,), generator=self.generator_,
                            device=X.device)
        return X[idx]

    def objective(self):
        m = min(self.batch_size_obs, self.X_sim_.shape[0])
        x_sim = self._draw(self.X_sim_, m)
        x_obs = self._draw(self.X_obs_, m)
        if self.penalty in ("wgan-gp", "wgan-lp"):
            d_sim, d_obs = self.module_(x_sim), self.module_(x_obs)
            eps = torch.rand((m, 1), generator=self.generator_, device=x_obs.device)
            x_hat = (eps * x_obs + (1.0 - eps) * x_sim).requires_grad_(True)
            (grad,) = torch.autograd.grad(self.module_(x_hat).sum(), x_hat,
                                          create_graph=True)
            excess = grad.norm(dim=1) - 1.0
            if self.penalty == "wgan-lp":
                excess = excess.clamp(min=0.0)  # one-sided: only slopes above 1 cost
            gp = (excess**2).mean()
            wasserstein = d_obs.mean() - d_sim.mean()
            loss = -wasserstein + self.penalty_weight * gp
        elif self.penalty == "r1":
            x_obs = x_obs.clone().requires_grad_(True)
            d_sim, d_obs = self.module_(x_sim), self.module_(x_obs)
            (grad,) = torch.autograd.grad(d_obs.sum(), x_obs, create_graph=True)
            gp = (grad**2).sum(1).mean()
            wasserstein = d_obs.mean() - d_sim.mean()
            loss = (F.softplus(d_sim).mean() + F.softplus(-d_obs).mean()
                    + 0.5 * self.penalty_weight * gp)
        else:
            raise ValueError(f"penalty must be one of {PENALTIES}, got {self.penalty!r}.")
        return loss, {"critic_estimate": wasserstein.item(), "gradient_penalty": gp.item()}

    def generator_values(self, X_sim: torch.Tensor) -> np.ndarray:
        """Per-sample generator loss ``L_g(x_sim)`` (Eq. 6 / non-saturating for R1)."""
        self.module_.eval()
        with torch.no_grad():
            d = self.module_(X_sim)
        values = F.softplus(-d) if self.penalty == "r1" else -d
        return values.cpu().double().numpy()
