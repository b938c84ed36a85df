"""The pure pieces of one AVO update: the proposal objective, the gamma schedule, averaging.

* :class:`ProposalObjective` -- AVO Eq. 12 + 15: the score-function estimate of
  ``grad_psi E_q[L_g]`` plus ``gamma grad_psi H(q_psi)``, as a loss whose gradient it is,
  so a ``torch.optim`` optimiser takes the step;
* :func:`annealed_gamma` -- the entropy weight at an iteration;
* :func:`polynomial_average` -- the running-average rule of polynomial-decay averaging,
  used with :class:`torch.optim.swa_utils.AveragedModel` by :func:`average_iterate`;
* :class:`FitState`, :class:`SimulatedBatch` -- what one fit works on.
"""

from __future__ import annotations

__all__ = ["FitState", "ProposalObjective", "SimulatedBatch", "annealed_gamma",
           "average_iterate", "draw_and_simulate", "polynomial_average",
           "proposal_net_for", "tightening_fraction"]

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from .._training import CosineDecay, StepNet
from ..gradients import linear_surrogate, per_sample_scores, score_function_gradient
from ..simulation import FailureLog, SimulationResult
from ._polish import PolishSamples
from ._resolution import ScaleFloor

# The proposal's learning rate decays to this fraction of lr over the fit (cosine).
_FINAL_LR_FRACTION = 0.3
# Adam without momentum (RMSprop with bias correction): the critic already lags the
# proposal by about one update, and momentum on top made the location orbit the optimum.
_PROPOSAL_BETAS = (0.0, 0.99)
# The k-th averaged iterate weighs k^3 (polynomial-decay averaging).
_AVERAGING_POWER = 3.0
_GAMMA_POWER = 2.0  # gamma (t / max_iter)^2: a proposal tightened before it arrives freezes


@dataclass
class ProposalObjective:
    """``U_g = E_q[L_g] + gamma H(q_psi)`` at one batch (AVO Eq. 12 + 15).

    Call with ``theta`` (tensor of shape (m, k), the batch's parameters), ``values``
    (shape (m,), the generator loss ``L_g`` of each simulation) and ``gamma``.

    Parameters
    ----------
    baseline : {"optimal", "mean"} or None
        Variance reduction of the score-function gradient
        (:func:`sktilt.gradients.score_function_gradient`); ``"optimal"`` needs the
        per-sample scores, which come from autograd.
    """

    baseline: str | None = "optimal"

    def __call__(self, module: nn.Module, *, theta: torch.Tensor, values: torch.Tensor,
                 gamma: float) -> tuple[torch.Tensor, dict]:
        scores = per_sample_scores(module, theta)
        m = theta.shape[0]
        flat = torch.cat([s.reshape(m, -1) for s in scores.values()], dim=1)
        grad = score_function_gradient(flat, values.to(flat.dtype), self.baseline)
        grads, start = {}, 0
        for name, s in scores.items():
            size = s[0].numel()
            grads[name] = grad[start:start + size].reshape(s.shape[1:])
            start += size
        entropy = module.entropy()
        loss = linear_surrogate(module, grads) + gamma * entropy
        return loss, {"generator_value": values.mean().item(), "entropy": entropy.item()}


def annealed_gamma(gamma: float, iteration: int, n_iterations: int) -> float:
    """Entropy weight at ``iteration`` (0-based): ``gamma ((iteration + 1) / n)^2``.

    Annealed from 0: early on the location must travel, and a proposal tightened too
    soon would freeze on the way, since location steps shrink with its spread.
    """
    return gamma * ((iteration + 1) / n_iterations) ** _GAMMA_POWER


# With gamma > 0 the spread is driven to the floor between these fractions of the fit.
_TIGHTEN_FROM, _TIGHTEN_TO = 0.5, 0.75


def tightening_fraction(iteration: int, n_iterations: int) -> float:
    """Fraction of the log-gap between spread and floor to close at ``iteration``.

    With ``gamma > 0`` the fit is a point estimate whose final precision is the floor
    (``min_scale``). The entropy term alone tightens slowly and noisily: its pull is a
    constant against the score-function noise of the log-scales, and a spread left
    wide biases the median (for a log-parameter, by ``-s^2 / 2``). Between half and
    three quarters of the updates the gap is closed geometrically, ``1 / (updates
    left until 3/4)`` of it per update, so that the averaged iterates have the floor's
    spread; 0 before, 1 after.
    """
    start, end = _TIGHTEN_FROM * n_iterations, _TIGHTEN_TO * n_iterations
    if iteration < start:
        return 0.0
    return 1.0 / max(1.0, end - iteration)


def polynomial_average(power: float):
    """Averaging rule weighting the ``k``-th averaged iterate by ``k^power``.

    Polynomial-decay averaging (Shamir & Zhang, 2013): a uniform average over a long
    window keeps the bias of the iterates where the location was still arriving; these
    weights discount them while still averaging over many iterates. Returns the
    ``avg_fn(averaged, current, n_averaged)`` of
    :class:`torch.optim.swa_utils.AveragedModel`, which calls it with the number of
    iterates averaged so far.
    """
    def avg_fn(averaged: torch.Tensor, current: torch.Tensor, n_averaged) -> torch.Tensor:
        if not current.is_floating_point():
            return current  # e.g. a flow's boolean masks: buffers, not averaged
        k = int(n_averaged) + 1
        weights = torch.arange(1, k + 1, dtype=torch.float64) ** power
        return averaged + (current - averaged) * float(weights[-1] / weights.sum())
    return avg_fn


def average_iterate(averaged: AveragedModel | None, module: nn.Module) -> AveragedModel:
    """Add ``module``'s current parameters to the polynomial-decay average (start one)."""
    if averaged is None:
        averaged = AveragedModel(module, use_buffers=True,
                                 avg_fn=polynomial_average(_AVERAGING_POWER))
    averaged.update_parameters(module)
    return averaged


def proposal_net_for(module: nn.Module, objective: ProposalObjective, *, lr: float,
                     n_updates: int, callbacks: list) -> StepNet:
    """The skorch net of the proposal: Adam without momentum, lr decayed over the fit."""
    schedule = ("lr_decay", CosineDecay(_FINAL_LR_FRACTION, total_steps=n_updates))
    return StepNet(module, objective, optimizer=torch.optim.Adam, lr=lr,
                   optimizer__betas=_PROPOSAL_BETAS,
                   callbacks=[schedule, *callbacks]).initialize()


@dataclass
class SimulatedBatch:
    """One iteration's simulations: parameters, outcome and the critic's features."""

    theta: np.ndarray
    result: SimulationResult
    features: torch.Tensor | None


@dataclass
class FitState:
    """What one fit works on; assigned to the estimator only when the fit completes."""

    seed: int
    theta_rng: np.random.Generator
    sim_root: np.random.SeedSequence
    generator: torch.Generator
    X_obs: torch.Tensor
    proposal: torch.nn.Module
    proposal_net: StepNet
    critic: StepNet
    floor: ScaleFloor
    failures: FailureLog
    n_averaged: int
    averaged: AveragedModel | None = None
    history: list = field(default_factory=list)
    polish: PolishSamples | None = None
    polish_shift: np.ndarray | None = None
    moments: object = None  # the polish's MomentSolution: the standard errors
    plan: object = None  # the SimulationPlan: batches, check, budget

    def final_proposal(self) -> nn.Module:
        """The proposal the fit returns: the averaged iterate once there is one."""
        return self.proposal if self.averaged is None else self.averaged.module


def draw_and_simulate(proposal: nn.Module, n: int, rng: np.random.Generator,
                      seed: np.random.SeedSequence, simulate, *,
                      common_random_numbers: bool = False):
    """Draw one iteration's ``n`` parameters from ``proposal`` and ``simulate`` them.

    With ``common_random_numbers``, parameters come in mirrored pairs ``loc +- L eps``
    and both halves are simulated with the same seeds, so that a pair differs by its
    parameters, not by the simulator's noise: in the score-function gradient the pair
    acts as a finite difference, whose noise is far below that of independent draws.
    Each row is still distributed as ``q_psi`` (given ``theta``, ``x`` is a fresh
    simulation), so Eq. 12 stays unbiased.

    Returns
    -------
    thetas : ndarray of shape (n, k) (``n`` rounded down to even with pairs)
    result : SimulationResult
    """
    if not common_random_numbers:
        thetas = proposal.sample(n, rng).numpy()
        return thetas, simulate(thetas, seed)
    half = n // 2
    thetas = proposal.sample(2 * half, rng, antithetic=True).numpy()
    results = [simulate(part, np.random.SeedSequence(seed.entropy, spawn_key=seed.spawn_key))
               for part in (thetas[:half], thetas[half:])]
    return thetas, SimulationResult.concatenate(results)
