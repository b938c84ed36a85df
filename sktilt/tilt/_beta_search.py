"""Choosing beta so that KL(q_beta || p) meets a budget, while the flow trains.

This is the one beta loop of sktilt: :class:`~sktilt.BoltzmannTuner` steers the beta of
its flow with it, and :class:`~sktilt.BoltzmannPath` the largest beta of its
beta-conditioned flow (``beta_max_``). The module has two halves:

* the steering rule, pure math on measured numbers (:func:`starting_beta`,
  :class:`BetaController`, :func:`meets_budget`);
* the loop (:func:`run_budget_search`), the plumbing that trains, measures, evaluates
  and records (:class:`BetaFit`, :class:`SearchResult`), and the warnings on what it
  kept (:meth:`SearchResult.kept`, :meth:`SearchResult.warn`).

BTGM (Sec. 3.1, App. A) alternates fitting the flow at a beta and updating beta. Here
beta is updated *during* one training run, every few steps, like a Lagrange multiplier
(dual ascent on ``KL = C``): refitting from scratch at each beta is what made fits
slow, and a flow follows a slowly moving beta in a few steps. Each update is a damped
Newton step on ``g(beta) = sqrt(KL) - sqrt(C)`` (linear in beta for a Gaussian base and a
linear criterion, where one step from beta = 0 is exact), whose slope is the larger of
the one from ``dKL/dbeta = beta Var_q f`` (Eq. 5) and the secant through the last two
measurements: a flow's KL responds faster than ``Var_q f`` of the flow says. When the
running KL is within tolerance, a fresh evaluation of the flow decides: it is accepted
when its KL meets the budget and its ``E_q f`` is not below the mean of the base
samples' top ``exp(-KL)`` fraction (the tilt's optimality guarantee; a flow below it is
still travelling).

What a caller supplies (the plumbing it owns):

* a :class:`~sktilt._training.StepNet` whose objective takes the steered beta as
  ``beta=`` and records ``kl_batch``, ``criterion_batch`` and ``criterion_sq_batch``
  (the KL and the moments of ``f`` at that beta) for every step;
* ``evaluate(beta)``, the flow's statistics on fresh draws at that beta;
* the reference base samples' ``f``;
* for a constrained fit, a :class:`Steering` of its multipliers.
"""

from __future__ import annotations

__all__ = ["BetaController", "BetaFit", "SearchResult", "Steering", "meets_budget",
           "quantile_budget", "run_budget_search", "starting_beta"]

import copy
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Protocol

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from .._training import DivergenceError, StepNet
from .._utils import warn_at_caller
from ._reference import (
    ImportanceDiagnostics,
    TiltQualityWarning,
    TiltReference,
    reference_beta,
    resolvable_beta,
    tilted_moments,
)
from ._constraints import ConstraintStatistics
from ._sampling import FlowStatistics

# Training steps between two beta updates.
CHUNK = 25
# Beta updates are damped by this factor and change beta by at most this factor.
_DAMPING, _MAX_FACTOR = 0.5, 1.25


# ------------------------------------------------------------------ the steering rule
def quantile_budget(rho: float) -> float:
    """KL budget ``-log(rho)`` that targets the top-``rho`` tail of the criterion.

    Restricting ``p`` to the fraction ``rho`` of its mass where ``f`` is largest (the
    top-``rho`` quantile set ``A``) gives ``p(. | A)`` with ``KL(p(.|A) || p) =
    -log(rho)``. With that budget the tuned ``q_beta`` maximises ``E_q f`` among all
    distributions at most that far from ``p``, so ``E_q f`` is at least the mean of
    ``f`` over the top-``rho`` tail: rejection sampling at acceptance rate ``rho``,
    without the rejections.

    Parameters
    ----------
    rho : float in (0, 1)
        Tail mass, e.g. 0.01 for the top 1 %.

    Returns
    -------
    budget : float
        ``-log(rho)`` (4.61 for ``rho = 0.01``).
    """
    rho = float(rho)
    if not (0.0 < rho < 1.0):
        raise ValueError(f"rho must be in the open interval (0, 1), got {rho!r}.")
    return -math.log(rho)


def starting_beta(f_ref: np.ndarray, budget: float, beta_max: float = math.inf) -> float:
    """First beta of the search, from the reference base samples ``f_ref``.

    The reference's own root of ``KL(beta) = budget`` when the samples resolve it;
    otherwise the exact Gaussian step ``sqrt(2 C / Var f)``, capped at the largest beta
    the samples still resolve: an over-tilted flow relaxes slowly, so the search should
    approach the budget from below.
    """
    beta = reference_beta(f_ref, budget)
    if beta is None:
        var = float(np.var(f_ref))
        beta = math.sqrt(2.0 * budget / var) if np.isfinite(var) and var > 0 else 1.0
        resolvable = resolvable_beta(f_ref)
        if resolvable is not None:
            beta = min(beta, resolvable)
    return float(min(beta, beta_max))


@dataclass
class BetaController:
    """Damped Newton steps on ``sqrt(KL(beta)) = sqrt(C)`` from noisy measurements.

    Parameters
    ----------
    budget : float
        The target ``C > 0``.
    beta_max : float
        Ceiling on beta.
    """

    budget: float
    beta_max: float = 1e4
    _last: tuple | None = None

    def update(self, beta: float, kl: float, var_f: float) -> float:
        """The next beta after measuring ``KL`` and ``Var_q f`` of the flow at ``beta``."""
        root = math.sqrt(max(kl, 1e-12))
        slope = beta * max(var_f, 0.0) / (2.0 * root)  # d sqrt(KL) / d beta, Eq. 5
        if self._last is not None and abs(beta - self._last[0]) > 1e-6 * beta:
            secant = (root - self._last[1]) / (beta - self._last[0])
            slope = max(slope, secant)
        self._last = (beta, root)
        if not (slope > 0 and math.isfinite(slope)):
            return float(min(beta * _MAX_FACTOR, self.beta_max))
        new = beta - _DAMPING * (root - math.sqrt(self.budget)) / slope
        new = min(max(new, beta / _MAX_FACTOR), beta * _MAX_FACTOR)
        return float(min(new, self.beta_max))


def meets_budget(kl: float, kl_se: float, budget: float, tol: float) -> bool:
    """Whether a measured ``KL`` (standard error ``kl_se``) meets ``budget``:
    ``|KL - budget| <= max(tol * budget, 2 kl_se)``."""
    return abs(kl - budget) <= max(tol * budget, 2.0 * kl_se)


# ------------------------------------------------------------------ the loop
class Steering(Protocol):
    """The multipliers of a constrained fit, steered by the loop (see ``run_budget_search``).

    :class:`~sktilt.tilt._constraints.MultiplierSteering` (one fit) and the path's
    multipliers along beta implement it.
    """

    def measure(self, beta: float) -> bool:
        """Measure the flow at ``beta`` and prepare the next multipliers; whether every
        constraint looked met."""

    def step(self) -> None:
        """Apply what the last :meth:`measure` prepared."""

    def reference(self, f_ref: np.ndarray) -> np.ndarray:
        """``h`` at the reference base samples, at the current multipliers (at the
        steered beta)."""

    def satisfied(self, stats: ConstraintStatistics, beta: float) -> bool:
        """Whether an evaluation at ``beta`` meets every constraint."""

    def snapshot(self) -> np.ndarray:
        """A copy of the current multipliers (kept with each evaluation)."""


@dataclass(frozen=True)
class BetaFit:
    """An evaluation of the flow at one beta, with the reference there.

    Attributes
    ----------
    stats : FlowStatistics or None
        Monte-Carlo statistics of the flow (``None`` for the start, not evaluated).
    reference : TiltReference or None
        The importance-sampling reference at the same beta, from base samples.
    diagnostics : ImportanceDiagnostics or None
        The flow's draws as an importance sample of the exact tilt at that beta.
    constraints : ConstraintStatistics or None
        ``E_q f``, ``E_q g_j`` and the multipliers of a constrained fit (there ``stats``
        describe the Lagrangian criterion ``h``).
    constraints_met : bool
        Whether every constraint was met at this evaluation.
    state : dict
        The flow's ``state_dict``.
    steps : int
        Training steps run before this evaluation.
    multipliers : ndarray or None
        The steering's multipliers the flow was trained with (:meth:`Steering.snapshot`).
    """

    stats: FlowStatistics | None
    reference: TiltReference | None
    state: dict
    steps: int = 0
    diagnostics: ImportanceDiagnostics | None = None
    constraints: ConstraintStatistics | None = None
    constraints_met: bool = True
    multipliers: np.ndarray | None = None

    @property
    def beta(self) -> float:
        return 0.0 if self.stats is None else self.stats.beta

    def gap(self, budget: float) -> float:
        """``|KL - budget|`` (infinite for the start)."""
        return math.inf if self.stats is None else abs(self.stats.kl - budget)

    def under_fits(self) -> bool:
        """Whether ``E_q f`` is below what any distribution within this KL reaches."""
        return self.diagnostics.under_fits(self.stats.criterion_mean_se)

    def record(self) -> dict:
        """One entry of ``history_`` (of a tuner or a path)."""
        record = {**asdict(self.stats), "steps": self.steps,
                  "reference_kl": self.reference.kl,
                  "reference_criterion_mean": self.reference.criterion_mean,
                  "reference_ess": self.reference.ess,
                  "pareto_k": self.diagnostics.pareto_k,
                  "reweighted_criterion_mean": self.diagnostics.criterion_mean}
        if self.constraints is not None:  # stats are of h = f + nu . g: f's own moments
            c = self.constraints
            record.update(lagrangian_mean=record["criterion_mean"],
                          criterion_mean=c.criterion_mean,
                          criterion_mean_se=c.criterion_mean_se,
                          constraint_values=c.means.tolist(),
                          constraint_multipliers=(self.beta * c.nu).tolist(),
                          constraints_met=self.constraints_met)
        return record


@dataclass
class SearchResult:
    """What :func:`run_budget_search` found: ``fits[0]`` is the start, then the evaluations."""

    fits: list = field(default_factory=list)
    converged: bool = False
    diverged: bool = False
    divergence: str = ""
    steps: int = 0

    def best(self, budget: float) -> BetaFit:
        """The fit to keep: the accepted one, the last one after a divergence, else the
        closest to budget among those that do not under-fit (if any)."""
        fitted = self.fits[1:]
        if not fitted:
            return self.fits[0]
        if self.converged or self.diverged:
            return fitted[-1]
        sound = [fit for fit in fitted if not fit.under_fits()]
        met = [fit for fit in sound or fitted if fit.constraints_met]
        return min(met or sound or fitted, key=lambda fit: fit.gap(budget))

    def records(self) -> list[dict]:
        """``history_``: one record per evaluation."""
        return [fit.record() for fit in self.fits[1:]]

    def kept(self, budget: float, owner: str) -> BetaFit:
        """:meth:`best`, which must have been evaluated: else ``FloatingPointError``."""
        best = self.best(budget)
        if best.stats is None:
            raise FloatingPointError(
                f"{owner} could not fit any flow: training diverged "
                f"({self.divergence or 'non-finite statistics'}) and even the "
                "flow's start gives non-finite statistics, so there is no model to keep. "
                "Make it finite near the base model's tail, or lower lr.")
        return best

    def warn(self, budget: float, *, budget_name: str, limits: str, remedy: str,
             underfit_fix: str) -> None:
        """The warnings on the fit :meth:`kept`, attributed to the user's line.

        A :class:`~sktilt.tilt.TiltQualityWarning` when it under-fits ``q_beta`` (its
        ``E_q f`` below the optimality guarantee; ``underfit_fix`` says what helps), and a
        :class:`~sklearn.exceptions.ConvergenceWarning` when the budget (the caller's
        parameter ``budget_name``) was not met within ``limits`` (``remedy``: what to
        raise).
        """
        best = self.best(budget)
        stats, d = best.stats, best.diagnostics
        if best.under_fits():
            warn_at_caller(
                f"The fitted flow under-fits q_beta: E_q f = {stats.criterion_mean:.4g} is "
                f"below {d.tail_mean:.4g}, the mean of the top exp(-KL) of the base samples "
                "that any distribution within this KL can reach (the tilt's optimality "
                f"guarantee). {underfit_fix}", TiltQualityWarning)
        if not self.converged and not self.diverged:
            reached = max(fit.stats.kl for fit in self.fits[1:])
            warn_at_caller(
                f"{budget_name}={budget:.4g} was not met within {limits} (largest KL "
                f"reached {reached:.4g}); keeping the closest fit, beta={stats.beta:.4g}, "
                f"KL={stats.kl:.4g}. The budget may be unreachable for this criterion "
                f"(f bounded above), or raise {remedy}.",
                ConvergenceWarning,
            )


def _chunk_moments(net: StepNet, n: int) -> tuple[float, float]:
    """KL and ``Var f`` over the second half of the last run's ``n`` steps."""
    batches = net.history[-1]["batches"][-max(1, n // 2):]
    kl = float(np.mean([b["kl_batch"] for b in batches]))
    mean = np.mean([b["criterion_batch"] for b in batches])
    var = float(np.mean([b["criterion_sq_batch"] for b in batches]) - mean**2)
    return kl, var


def run_budget_search(net: StepNet, evaluate: Callable[[float], tuple],
                      f_ref: np.ndarray, budget: float, beta: float, *, max_steps: int,
                      max_evaluations: float, tol: float, beta_max: float = 1e4,
                      min_steps: int = 0,
                      start_beta: float = 0.0,
                      steering: Steering | None = None,
                      log: Callable[[str], None] | None = None,
                      owner: str = "BoltzmannTuner") -> SearchResult:
    """Train ``net``'s flow while steering beta to ``KL = budget`` (see the module docstring).

    ``net.run(n, beta=beta)`` trains ``n`` steps at ``beta`` and records the running KL
    and moments of ``f`` there (``kl_batch``, ``criterion_batch``,
    ``criterion_sq_batch``); ``evaluate(beta)`` measures the flow on fresh samples (a
    :class:`FlowStatistics` and its :class:`ImportanceDiagnostics`); ``start_beta`` is
    the beta the flow's start was fitted at; no evaluation happens before
    ``min_steps``. The search stops once an evaluation has
    ``|KL - budget| <= max(tol * budget, 2 SE)`` (and does not under-fit), after
    ``max_evaluations`` evaluations (``math.inf``: no limit), after ``max_steps`` steps,
    or on a diverged fit (the flows evaluated before are kept, with a warning that
    names ``owner``).

    With ``steering`` (a constrained tilt), the flow trains on the Lagrangian criterion
    whose multipliers ``steering`` moves after every chunk, an evaluation is due only
    once the constraints look met, and it is accepted only when they are met; ``f_ref``
    then holds ``f`` at the reference samples and the reference uses ``h``.
    """
    out = SearchResult(fits=[BetaFit(None, None, copy.deepcopy(net.module_.state_dict()),
                                     multipliers=_snapshot(steering))])
    controller = BetaController(budget, beta_max)
    last_good_beta = None  # beta of the last run that ended finite
    chunks_since, wait = 0, 1  # chunks since the last evaluation, and chunks to wait
    while out.steps < max_steps and len(out.fits) <= max_evaluations:
        n = min(CHUNK, max_steps - out.steps)
        try:
            net.run(n, beta=beta)
        except DivergenceError as exc:
            out.diverged, out.divergence = True, str(exc)
            if not (exc.restored and last_good_beta is not None):
                # Diverged in the first run: go back to the start, fitted at start_beta.
                net.module_.load_state_dict(out.fits[0].state)
                last_good_beta = start_beta
            # Evaluate what is back, so that what is kept is described by its own
            # statistics (nothing is kept if they are not finite: the caller raises).
            kept = _evaluate_into(out, evaluate, f_ref, last_good_beta, net, log, budget,
                                  steering, owner)
            if kept is not None or any(f.stats is not None for f in out.fits):
                warn_at_caller(
                    f"{owner} diverged at beta={beta:.4g} ({exc}); kept the flow "
                    f"evaluated at beta={out.best(budget).beta:.4g}. Make the criterion "
                    "and the decoder finite where the tilt goes, or lower lr.",
                    RuntimeWarning)
            break
        last_good_beta = beta
        out.steps += n
        kl, var = _chunk_moments(net, n)
        new_beta = controller.update(beta, kl, var)
        chunks_since += 1
        ready = steering.measure(beta) if steering is not None else True
        due = (abs(kl - budget) <= tol * budget and chunks_since >= wait
               and out.steps >= min_steps and ready)
        if due or out.steps >= max_steps:
            chunks_since = 0
            fit = _evaluate_into(out, evaluate, f_ref, beta, net, log, budget, steering,
                                 owner)
            if fit is None:
                out.diverged = True
                warn_at_caller(
                    f"{owner} diverged at beta={beta:.4g} (non-finite KL or criterion "
                    f"on the flow's samples); kept the flow evaluated at "
                    f"beta={out.fits[-1].beta:.4g}. The criterion (or the decoder) returns "
                    "NaN/inf where the tilt goes: make it finite there.", RuntimeWarning)
                break
            if meets_budget(fit.stats.kl, fit.stats.kl_se, budget, tol) \
                    and fit.constraints_met:
                # The budget is met; accept unless E_q f shows the flow is still in transit
                # (below what any distribution within this KL reaches: keep training).
                if not fit.under_fits():
                    out.converged = True
                    break
                wait *= 2  # still travelling: train longer before the next evaluation
            new_beta = controller.update(beta, fit.stats.kl, fit.stats.criterion_var)
        if steering is not None:
            steering.step()
        beta = new_beta
    return out


def _snapshot(steering: Steering | None) -> np.ndarray | None:
    return None if steering is None else steering.snapshot()


def _evaluate_into(out: SearchResult, evaluate, f_ref, beta, net, log, budget,
                   steering: Steering | None = None, owner: str = "BoltzmannTuner"):
    """Evaluate the flow at ``beta`` and append it to ``out``; ``None`` if non-finite.

    ``evaluate(beta)`` returns the flow's statistics and diagnostics, and for a
    constrained fit its :class:`ConstraintStatistics` third.
    """
    stats, diagnostics, *rest = evaluate(beta)
    if not (np.isfinite(stats.kl) and np.isfinite(stats.criterion_mean)):
        return None
    constraints = rest[0] if rest else None
    met = True if steering is None else steering.satisfied(constraints, beta)
    reference = tilted_moments(f_ref if steering is None else steering.reference(f_ref), beta)
    fit = BetaFit(stats, reference, copy.deepcopy(net.module_.state_dict()),
                  out.steps, diagnostics, constraints, met, _snapshot(steering))
    out.fits.append(fit)
    if log is not None:
        log(f"[{owner}] step {out.steps}: beta={beta:.5g} "
            f"KL={stats.kl:.4f}±{stats.kl_se:.4f} (budget {budget:.4f}) "
            f"E_q f={stats.criterion_mean:.4g} Pareto k={diagnostics.pareto_k:.2f}")
    return fit
