"""The beta iterations of BTGM Algorithm 1: fit the flow, measure it, update beta."""

from __future__ import annotations

__all__ = ["SearchResult", "run_beta_search"]

import copy
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .beta import BetaSearch
from .diagnostics import tilted_moments
from .nets import DivergenceError
from .tilting import TiltNet, flow_statistics


@dataclass
class SearchResult:
    """What :func:`run_beta_search` found.

    ``states[k + 1]`` is ``(beta, |KL - budget|, state_dict)`` of ``history[k]``;
    ``states[0]`` is the flow's start.
    """

    history: list = field(default_factory=list)
    states: list = field(default_factory=list)
    converged: bool = False
    diverged: bool = False


def run_beta_search(net: TiltNet, draw: Callable[[], tuple], f_ref: np.ndarray,
                    budget: float, beta: float, search: BetaSearch, *, max_iter: int,
                    tol: float, first_epochs: int = 1, verbose: int = 0) -> SearchResult:
    """Alternate fitting ``net``'s flow at ``beta`` and updating ``beta`` (Algorithm 1).

    ``draw()`` returns ``(log q/p, f)`` at fresh samples of the flow. The search stops
    once ``|KL - budget| <= max(tol * budget, 2 SE)``, when the bracket collapses, on
    a diverged fit (the previous flows are kept) or after ``max_iter`` iterations.
    """
    out = SearchResult(states=[(0.0, math.inf, copy.deepcopy(net.module_.state_dict()))])
    for it in range(max_iter):
        epochs = first_epochs if it == 0 else 1
        if out.history and beta < out.history[-1]["beta"]:
            # Warm-start from the fit at the largest beta below this one: a flow
            # tilted too far keeps a too-high KL for hundreds of steps (seen: 15 %
            # above its value when approached from below), which misleads the search.
            below = max((st for st in out.states if st[0] <= beta), key=lambda st: st[0])
            net.module_.load_state_dict(below[2])
            if below is out.states[0]:
                epochs = first_epochs
        net.beta = beta
        try:
            net.run_steps(epochs=epochs, anneal=True)
        except DivergenceError as exc:
            out.diverged = True
            last = out.history[-1]["beta"] if out.history else 0.0
            warnings.warn(
                f"BoltzmannTuner diverged at beta={beta:.4g} ({exc}); restored the flow "
                f"fitted at beta={last:.4g}. Lower lr or check the criterion for NaN/inf.",
                RuntimeWarning, stacklevel=4,
            )
            break
        log_ratio, f = draw()
        stats = flow_statistics(log_ratio, f, beta)
        ref = tilted_moments(f_ref, beta)
        stats.update(reference_kl=ref.kl, reference_criterion_mean=ref.criterion_mean,
                     reference_ess=ref.ess)
        out.history.append(stats)
        out.states.append((beta, abs(stats["kl"] - budget),
                           copy.deepcopy(net.module_.state_dict())))
        if verbose:
            print(f"[BoltzmannTuner] iter {it}: beta={beta:.5g} "
                  f"KL={stats['kl']:.4f}±{stats['kl_se']:.4f} (budget {budget:.4f}) "
                  f"E_q f={stats['criterion_mean']:.4g}")
        if abs(stats["kl"] - budget) <= max(tol * budget, 2 * stats["kl_se"]):
            out.converged = True
            break
        new_beta = search.update(beta, stats["kl"], stats["criterion_var"],
                                 stats["criterion_third"])
        if new_beta == beta:  # bracket collapsed or beta_max reached
            break
        beta = new_beta
    return out
