"""Choosing the temperature beta so that KL(q_beta || p) meets a budget (numpy only).

BTGM (Sec. 3.1, App. A): ``dKL/dbeta = beta Var_q f`` (Eq. 5) and
``d2KL/dbeta2 = Var_q f + beta E_q (f - E_q f)^3`` (Eq. 6). A raw Newton step on KL
overshoots at small beta, where ``KL ~ beta^2 Var_p f / 2`` is flat: the search works
on ``g(beta) = sqrt(KL) - sqrt(C)``, which is *linear* in beta for a Gaussian base and a
linear criterion, so one Newton step from beta = 0 is exact there. Each step is then

* a Halley step (second order, Eq. 6) when it agrees with the Newton step, else Newton;
* kept inside the bracket ``[lo, hi]`` of betas measured below / above the budget,
  falling back to interpolation of sqrt(KL) between the bracket ends;
* damped: beta grows by at most ``growth`` per iteration while no upper end is known.
"""

from __future__ import annotations

__all__ = ["BetaSearch", "quantile_budget"]

import math
from dataclasses import dataclass, field

import numpy as np



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
