"""Choosing beta so that KL(q_beta || p) meets a budget: the search and Algorithm 1's loop.

BTGM (Sec. 3.1, App. A): ``dKL/dbeta = beta Var_q f`` (Eq. 5) and
``d2KL/dbeta2 = Var_q f + beta E_q (f - E_q f)^3`` (Eq. 6). A raw Newton step on KL
overshoots at small beta, where ``KL ~ beta^2 Var_p f / 2`` is flat: the search works
on ``g(beta) = sqrt(KL) - sqrt(C)``, which is *linear* in beta for a Gaussian base and a
linear criterion, so one Newton step from beta = 0 is exact there. Each step is then

* a Halley step (second order, Eq. 6) when it agrees with the Newton step, else Newton;
* kept inside the bracket ``[lo, hi]`` of betas measured below / above the budget,
  falling back to interpolation of sqrt(KL) between the bracket ends;
* damped: beta grows by at most ``growth`` per iteration while no upper end is known.

:class:`BetaSearch` is the numpy-only root finder; :func:`run_beta_search` alternates
fitting the flow at a beta and updating beta (Algorithm 1).
"""

from __future__ import annotations

__all__ = ["BetaFit", "BetaSearch", "SearchResult", "quantile_budget", "run_beta_search",
           "starting_beta"]

import copy
import math
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from .._training import DivergenceError, StepNet
from ._reference import TiltReference, reference_beta, resolvable_beta, tilted_moments
from ._sampling import FlowStatistics

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


@dataclass
class BetaSearch:
    """Safeguarded second-order root finding of ``KL(beta) = budget``.

    Feed each measurement with :meth:`update`, which returns the next beta.

    Parameters
    ----------
    budget : float
        Target KL divergence ``C > 0``.
    growth : float
        Largest factor by which beta may grow in one step while unbracketed.
    beta_max : float
        Ceiling on beta; a budget not reached there is reported unreachable.
    """

    budget: float
    growth: float = 4.0
    beta_max: float = 1e4
    lo: float = 0.0
    hi: float = math.inf
    _lo_kl: float = 0.0
    _hi_kl: float = math.nan
    history: list = field(default_factory=list)

    def first_beta(self, var_f: float) -> float:
        """Exact step from beta = 0 in sqrt-KL space: ``sqrt(2 C / Var_p f)``."""
        if not np.isfinite(var_f) or var_f <= 0:
            return 1.0
        return min(math.sqrt(2.0 * self.budget / var_f), self.beta_max)

    def update(self, beta: float, kl: float, var_f: float, third: float) -> float:
        """Record ``KL(beta)`` and the moments of f under q_beta; return the next beta."""
        self.history.append((beta, kl))
        if kl < self.budget:
            if beta >= self.lo:
                self.lo, self._lo_kl = beta, max(kl, 0.0)
        elif beta <= self.hi:
            self.hi, self._hi_kl = beta, kl
        step = self._second_order(beta, kl, var_f, third)
        if step is not None and self.lo < step < self.hi:
            new = step
        elif math.isfinite(self.hi):
            new = self._interpolate()
        else:
            new = beta * self.growth if step is None else step
        if math.isfinite(self.hi):
            margin = 1e-3 * (self.hi - self.lo)  # stay strictly inside the bracket
            new = min(max(new, self.lo + margin), self.hi - margin)
        else:
            new = max(min(new, max(beta, self.lo) * self.growth), self.lo, 1e-8)
        return float(min(new, self.beta_max))

    def _second_order(self, beta, kl, var_f, third):
        if not (np.isfinite(kl) and np.isfinite(var_f)) or var_f <= 0 or beta <= 0:
            return None
        if kl <= 1e-12:
            return self.first_beta(var_f)
        root = math.sqrt(kl)
        g = root - math.sqrt(self.budget)
        d1 = beta * var_f                                   # Eq. 5
        d2 = var_f + beta * third if np.isfinite(third) else math.nan  # Eq. 6
        g1 = d1 / (2 * root)
        newton = beta - g / g1
        if np.isfinite(d2):
            g2 = d2 / (2 * root) - d1**2 / (4 * root**3)
            denom = 2 * g1**2 - g * g2
            if denom > 0:
                halley = beta - 2 * g * g1 / denom
                # Trust the third moment only when it agrees with first-order info.
                if halley > 0 and 0.5 <= (halley - beta) / (newton - beta + 1e-300) <= 2.0:
                    return halley
        return newton if newton > 0 else None

    def _interpolate(self):
        # Linear in sqrt(KL) between the bracket ends (exact in the Gaussian case).
        a, b = math.sqrt(self._lo_kl), math.sqrt(self._hi_kl)
        target = math.sqrt(self.budget)
        if not (b > a):
            return 0.5 * (self.lo + self.hi)
        t = min(max((target - a) / (b - a), 0.1), 0.9)
        return self.lo + t * (self.hi - self.lo)


@dataclass(frozen=True)
class BetaFit:
    """The flow fitted at one beta of the search, measured against its reference.

    Attributes
    ----------
    stats : FlowStatistics or None
        Monte-Carlo statistics of the flow (``None`` for the start, not yet fitted).
    reference : TiltReference or None
        The importance-sampling reference at the same beta.
    state : dict
        The flow's ``state_dict``.
    """

    stats: FlowStatistics | None
    reference: TiltReference | None
    state: dict

    @property
    def beta(self) -> float:
        return 0.0 if self.stats is None else self.stats.beta

    def gap(self, budget: float) -> float:
        """``|KL - budget|`` (infinite for the start)."""
        return math.inf if self.stats is None else abs(self.stats.kl - budget)

    def record(self) -> dict:
        """One entry of ``BoltzmannTuner.history_``."""
        return {**asdict(self.stats), "reference_kl": self.reference.kl,
                "reference_criterion_mean": self.reference.criterion_mean,
                "reference_ess": self.reference.ess}


@dataclass
class SearchResult:
    """What :func:`run_beta_search` found: ``fits[0]`` is the start, then one per beta."""

    fits: list = field(default_factory=list)
    converged: bool = False
    diverged: bool = False

    def best(self, budget: float) -> BetaFit:
        """The fit to keep: the last one after a divergence, else the closest to budget."""
        fitted = self.fits[1:]
        if not fitted:
            return self.fits[0]
        if self.diverged:
            return fitted[-1]
        return min(fitted, key=lambda fit: fit.gap(budget))


def run_beta_search(net: StepNet, draw: Callable[[], tuple], f_ref: np.ndarray,
                    budget: float, beta: float, search: BetaSearch, *, steps: int,
                    first_steps: int, max_iter: int, tol: float,
                    log: Callable[[str], None] | None = None) -> SearchResult:
    """Alternate fitting ``net``'s flow at ``beta`` and updating ``beta`` (Algorithm 1).

    ``draw()`` returns ``(log q/p, f)`` at fresh samples of the flow. The search stops
    once ``|KL - budget| <= max(tol * budget, 2 SE)``, when the bracket collapses, on a
    diverged fit (the flows fitted before are kept, with a warning) or after
    ``max_iter`` iterations.
    """
    out = SearchResult(fits=[BetaFit(None, None, copy.deepcopy(net.module_.state_dict()))])
    for it in range(max_iter):
        n_steps = first_steps if it == 0 else steps
        if len(out.fits) > 1 and beta < out.fits[-1].beta:
            # Warm-start from the fit at the largest beta below this one: a flow tilted
            # too far keeps a too-high KL for hundreds of steps (seen: 15 % above its
            # value when approached from below), which misleads the search.
            below = max((fit for fit in out.fits if fit.beta <= beta), key=lambda f: f.beta)
            net.module_.load_state_dict(below.state)
            if below is out.fits[0]:
                n_steps = first_steps
        try:
            net.run(n_steps, beta=beta)
        except DivergenceError as exc:
            out.diverged = True
            last = out.fits[-1].beta
            warnings.warn(
                f"BoltzmannTuner diverged at beta={beta:.4g} ({exc}); restored the flow "
                f"fitted at beta={last:.4g}. Lower lr or check the criterion for NaN/inf.",
                RuntimeWarning, stacklevel=4,
            )
            break
        stats = FlowStatistics.from_draws(*draw(), beta)
        fit = BetaFit(stats, tilted_moments(f_ref, beta),
                      copy.deepcopy(net.module_.state_dict()))
        out.fits.append(fit)
        if log is not None:
            log(f"[BoltzmannTuner] iter {it}: beta={beta:.5g} "
                f"KL={stats.kl:.4f}±{stats.kl_se:.4f} (budget {budget:.4f}) "
                f"E_q f={stats.criterion_mean:.4g}")
        if fit.gap(budget) <= max(tol * budget, 2 * stats.kl_se):
            out.converged = True
            break
        new_beta = search.update(beta, stats.kl, stats.criterion_var, stats.criterion_third)
        if new_beta == beta:  # bracket collapsed or beta_max reached
            break
        beta = new_beta
    return out


def starting_beta(f_ref: np.ndarray, budget: float, search: BetaSearch) -> float:
    """First beta of the search, from the reference base samples ``f_ref``.

    The reference's own root of ``KL(beta) = budget`` when the samples resolve it;
    otherwise the exact Gaussian step ``sqrt(2 C / Var f)``, capped at the largest beta
    the samples still resolve: an over-tilted flow relaxes slowly, so the search should
    approach the budget from below.
    """
    beta = reference_beta(f_ref, budget)
    if beta is not None:
        return beta
    beta = search.first_beta(float(np.var(f_ref)))
    resolvable = resolvable_beta(f_ref)
    return beta if resolvable is None else min(beta, resolvable)
