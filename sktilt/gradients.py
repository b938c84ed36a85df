"""Gradient estimators for fitting a distribution to a variational target.

Two families, shared by :class:`~sktilt.BoltzmannTuner` and
:class:`~sktilt.AVOSimulatorFitter`:

* **pathwise** (reparametrisation): the target is differentiable in the sample, so
  autograd goes through the sample itself;
* **score function** (REINFORCE, AVO Eq. 8 and 12):
  ``grad E_q[g] = E_q[(g - b) grad log q]`` for any baseline ``b`` independent of the
  sample, which only needs ``g`` evaluated, not differentiated.

The math functions accept numpy arrays or torch tensors. Baselines:

* ``"mean"``: leave-one-out mean of ``g`` (unbiased, cuts most variance when
  ``g`` has a large offset);
* ``"optimal"``: per-parameter ``b_k = sum_m s_mk^2 g_m / sum_m s_mk^2`` with
  ``s_mk = d_k log q(theta_m)``, the variance-minimising constant baseline for each
  gradient coordinate;
* ``None``: the raw estimator.
"""

from __future__ import annotations

__all__ = [
    "BASELINES",
    "is_differentiable_output",
    "linear_surrogate",
    "mean_baseline",
    "optimal_baseline",
    "per_sample_scores",
    "score_function_gradient",
    "score_function_surrogate",
]

from collections.abc import Callable

import torch
from torch import nn

from ._utils import call_with_parameters

#: Baselines accepted by :func:`score_function_gradient` (see the module docstring).
BASELINES = ("mean", "optimal", None)


def mean_baseline(values):
    """Leave-one-out mean of ``values`` (shape ``(m,)``), one baseline per sample.

    The sample's own value is left out so that the baseline stays independent of it
    and the estimator stays unbiased.
    """
    m = values.shape[0]
    if m < 2:
        return values * 0
    return (values.sum() - values) / (m - 1)


def optimal_baseline(scores, values, eps: float = 1e-12):
    """Per-coordinate variance-minimising baseline.

    Parameters
    ----------
    scores : array of shape (m, k)
        Score function ``d log q(theta_m) / d psi_k`` for each sample.
    values : array of shape (m,)
        Objective evaluated at each sample.

    Returns
    -------
    baseline : array of shape (k,)
        ``b_k = sum_m s_mk^2 g_m / sum_m s_mk^2``.
    """
    sq = scores**2
    return (sq * values[:, None]).sum(0) / (sq.sum(0) + eps)


def score_function_gradient(scores, values, baseline: str | None = "optimal"):
    """Score-function estimate of ``grad_psi E_{q_psi}[g]``.

    Parameters
    ----------
    scores : array of shape (m, k)
        Per-sample score ``grad_psi log q_psi(theta_m)``, e.g. from
        :func:`per_sample_scores`.
    values : array of shape (m,)
        ``g(theta_m)``, not differentiated.
    baseline : {"optimal", "mean"} or None
        Variance reduction, see the module docstring.

    Returns
    -------
    grad : array of shape (k,)
    """
    if baseline not in BASELINES:
        raise ValueError(f"baseline must be one of {BASELINES}, got {baseline!r}.")
    if baseline == "optimal":
        # Estimated from the same batch, this baseline carries an O(1/m) bias, far
        # below the Monte-Carlo noise at the batch sizes used here.
        b = optimal_baseline(scores, values)
        return (scores * (values[:, None] - b[None, :])).mean(0)
    if baseline == "mean":
        centred = values - mean_baseline(values)
        return (scores * centred[:, None]).mean(0)
    return (scores * values[:, None]).mean(0)


def score_function_surrogate(log_prob: torch.Tensor, values: torch.Tensor,
                             baseline: str | None = "mean") -> torch.Tensor:
    """Scalar whose autograd gradient is the score-function estimate of ``grad E_q[g]``.

    For models whose per-sample scores are not available in closed form (normalising
    flows): ``log_prob`` must be ``log q_psi`` evaluated at *detached* samples, so the
    gradient flows through the parameters only. ``values`` are detached here.

    Only the ``"mean"`` baseline and ``None`` are available: the per-parameter optimal
    baseline needs per-sample scores (use :func:`score_function_gradient`).
    """
    if baseline not in ("mean", None):
        raise ValueError(
            f"baseline must be 'mean' or None for a surrogate loss, got {baseline!r}."
        )
    values = values.detach()
    if baseline == "mean":
        values = values - mean_baseline(values)
    return (values * log_prob).mean()


def is_differentiable_output(out, inputs: torch.Tensor) -> bool:
    """Whether ``out`` (a criterion's output) carries a gradient path to ``inputs``."""
    return (
        isinstance(out, torch.Tensor)
        and inputs.requires_grad
        and out.requires_grad
        and out.grad_fn is not None
    )


def per_sample_scores(module: nn.Module, theta: torch.Tensor,
                      log_prob: Callable | None = None) -> dict[str, torch.Tensor]:
    """Per-sample scores ``grad_psi log q_psi(theta_m)`` of every parameter of ``module``.

    Computed by autograd, one gradient per sample vectorised with :func:`torch.func.vmap`
    over :func:`torch.func.functional_call`, so any torch proposal works (a Gaussian, a
    zuko flow) without a hand-written score.

    Parameters
    ----------
    module : torch.nn.Module
        Holds the parameters ``psi``.
    theta : tensor of shape (m, k)
        Samples, not differentiated.
    log_prob : callable or None, default=None
        ``log_prob(module, theta) -> (n,)``; ``None`` calls ``module.log_prob(theta)``.

    Returns
    -------
    scores : dict of str -> tensor of shape ``(m,) + param.shape``
        Keyed by parameter name (``module.named_parameters()``).
    """
    params = {k: v.detach() for k, v in module.named_parameters()}
    fn = log_prob or _module_log_prob

    def single(p, x):
        return call_with_parameters(module, fn, p, x[None])[0]

    return torch.func.vmap(torch.func.grad(single), in_dims=(None, 0))(params, theta.detach())


def _module_log_prob(module, x):
    return module.log_prob(x)


def linear_surrogate(module: nn.Module, gradients: dict[str, torch.Tensor]) -> torch.Tensor:
    """Scalar ``sum_k <g_k, psi_k>`` whose autograd gradient is the given ``g``.

    Lets an estimate computed outside autograd (e.g. :func:`score_function_gradient`
    with the per-parameter optimal baseline) drive a ``torch.optim`` optimiser through
    an ordinary ``loss.backward()``.
    """
    total = torch.zeros((), dtype=torch.float64)
    for name, p in module.named_parameters():
        if name in gradients:
            total = total + (gradients[name].detach().to(p.dtype) * p).sum()
    return total
