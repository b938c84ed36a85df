"""The objectives the tuner's flow is trained on, as :class:`~sktilt._training.StepNet` objectives.

* :class:`TiltObjective` -- for a fixed beta, BTGM (Eq. 7-9) fits ``q`` by minimising
  ``KL(q || p) - beta E_q f``. The KL part is differentiated pathwise
  through the flow; the criterion part is pathwise when ``f`` is differentiable and
  otherwise uses the score-function estimator of :mod:`sktilt.gradients`.
* :class:`WeightedLikelihood` -- minus the log-likelihood of base samples resampled in
  proportion to their tilt weights, i.e. the forward ``KL(q_beta || q)`` up to a
  constant: the mode-covering start of the search (see
  :func:`~sktilt.tilt._sampling.tilted_samples`).

Each is configured at construction; beta and the weighted samples, which change from
run to run, are keyword arguments of the call (skorch ``fit_params``).
"""

from __future__ import annotations

__all__ = ["TiltObjective", "WeightedLikelihood"]

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .._training import DivergenceError
from .._utils import call_with_parameters
from ..gradients import score_function_surrogate
from ._bases import Base
from ._criteria import evaluate_criterion
from ._flows import TiltFlow


# Mixture components below this weight are left out of the stratified averages.
_DEAD_WEIGHT = 1e-12


def _frozen_log_prob(flow: TiltFlow, z: torch.Tensor, c: torch.Tensor | None = None
                     ) -> torch.Tensor:
    """``log q(z)`` (given ``c``) with the flow's parameters treated as constants.

    Differentiable in ``z`` only: the "sticking the landing" estimator (Roeder et al.,
    2017), whose gradient vanishes sample by sample once ``q`` equals the target, so the
    flow settles exactly instead of jittering around it.
    """
    frozen = {k: v.detach() for k, v in flow.named_parameters()}
    return call_with_parameters(flow, _log_prob, frozen, z, c)


def _log_prob(flow: TiltFlow, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
    return flow.log_prob(z, c)


@dataclass
class TiltObjective:
    """``KL(q || p) - beta E_q f`` on one batch of ``q`` (call with ``beta=``).

    The batch is stratified over the mixture components of ``q``
    (:meth:`~sktilt.tilt._flows.TiltFlow.stratified`): about ``batch_size / K`` reparameterised
    samples per component, weighted so that the averages are exact expectations under
    ``q``, mixture weights included.

    Parameters
    ----------
    base : Base
        The model ``p``.
    criterion : callable
        ``f`` in instance space.
    batch_size : int
        Samples of ``q`` per step.
    pathwise : bool
        Differentiate ``f`` through the samples (else score-function gradients).
    sticking_the_landing : bool, default=True
        Use the "sticking the landing" gradient of the KL part.
    """

    base: Base
    criterion: Callable
    batch_size: int
    pathwise: bool
    sticking_the_landing: bool = True

    def __call__(self, flow: TiltFlow, *, beta: float) -> tuple[torch.Tensor, dict]:
        if not self.base.differentiable:
            return self._score_only(flow, beta)
        z, weights = flow.stratified(max(1, self.batch_size // flow.components))
        z, weights = z.reshape(-1, z.shape[-1]), weights.reshape(-1)
        # A component whose weight underflowed would multiply a -inf log-density by 0.
        keep = weights > _DEAD_WEIGHT
        z, weights = z[keep], weights[keep]
        # One density pass gives log q at the samples; "sticking the landing" takes it
        # with the parameters frozen (the gradient then flows through z only).
        log_q = _frozen_log_prob(flow, z) if self.sticking_the_landing else flow().log_prob(z)
        log_ratio = log_q - self.base.log_prob(z)
        kl = (weights * log_ratio).sum()
        if self.pathwise:
            f = _blamed_criterion(self.criterion, self.base, z)
            tilt = (weights * f).sum()
        else:
            with torch.no_grad():
                exact = flow.draw(self.batch_size)
                f = _blamed_criterion(self.criterion, self.base, exact)
            tilt = score_function_surrogate(flow().log_prob(exact), f)
            weights = torch.full_like(f, 1.0 / f.shape[0])
        loss = kl - beta * tilt
        return loss, {"kl_batch": kl.item(), "criterion_batch": (weights * f).sum().item(),
                      "criterion_sq_batch": (weights * f.detach() ** 2).sum().item()}


    def _score_only(self, flow: TiltFlow, beta: float) -> tuple[torch.Tensor, dict]:
        # log p has no gradient (a numpy base): the whole objective -E_q[g] with
        # g = beta f + log p - log q goes through the score function, using
        # grad E_q[g] = E_q[(g - b) grad log q] (the term E_q[grad log q] is zero).
        with torch.no_grad():
            z = flow.draw(self.batch_size)
            f = _blamed_criterion(self.criterion, self.base, z)
            log_p = self.base.log_prob(z)
        log_q = flow().log_prob(z)
        log_ratio = log_q.detach() - log_p
        if not torch.isfinite(log_ratio).all():
            raise DivergenceError("the base's score_samples returned -inf/NaN at points "
                                  "the flow drew")
        kl = log_ratio.mean()
        value = kl - beta * f.mean()
        surrogate = -score_function_surrogate(log_q, beta * f - log_ratio)
        # The value of the objective, the gradient of the surrogate.
        loss = value + surrogate - surrogate.detach()
        return loss, {"kl_batch": kl.item(), "criterion_batch": f.mean().item(),
                      "criterion_sq_batch": (f**2).mean().item()}


def _blamed_criterion(criterion, base: Base, z: torch.Tensor) -> torch.Tensor:
    """``f(decode(z))``; a non-finite value stops training and says who produced it."""
    x = base.to_instance(z)
    f = evaluate_criterion(criterion, x)
    if torch.isfinite(f).all():
        return f
    if x.is_floating_point():
        bad_x = ~torch.isfinite(x.detach().reshape(len(x), -1)).all(1)
        if bad_x.any():
            raise DivergenceError(
                f"the decoder returned NaN/inf at {int(bad_x.sum())} of {len(x)} latent "
                f"points the flow drew, e.g. z={_first(z, bad_x)}: the base model is broken "
                "where the tilt goes")
    bad = ~torch.isfinite(f.detach())
    raise DivergenceError(
        f"the criterion returned NaN/inf at {int(bad.sum())} of {len(f)} points the flow "
        f"drew, e.g. z={_first(z, bad)}")


def _first(z: torch.Tensor, mask: torch.Tensor) -> list[float]:
    return [round(float(v), 3) for v in z.detach()[mask][0]]


@dataclass
class WeightedLikelihood:
    """Minus the mean ``log q`` of a batch resampled from weighted samples.

    Call with ``samples`` (tensor of shape (n, d)) and ``probs`` (shape (n,), summing
    to one).

    Parameters
    ----------
    batch_size : int
        Samples drawn per step (with replacement, in proportion to ``probs``).
    """

    batch_size: int

    def __call__(self, flow: TiltFlow, *, samples: torch.Tensor, probs: torch.Tensor
                 ) -> tuple[torch.Tensor, dict]:
        idx = torch.multinomial(probs, self.batch_size, replacement=True)
        log_q = flow().log_prob(samples[idx])
        return -log_q.mean(), {"log_likelihood_batch": log_q.mean().item()}
