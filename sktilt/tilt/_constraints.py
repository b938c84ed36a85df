"""Constraints on a tilt: ``q ∝ p exp(beta f + sum_j lambda_j g_j)`` (BTGM Discussion).

Maximising ``E_q f`` subject to ``KL(q || p) <= C`` and ``E_q g_j (<=, >=, ==) c_j`` gives,
by the same Lagrangian argument as the unconstrained tilt, ``q ∝ p exp(beta f + lambda . g)``
with one multiplier per constraint: ``lambda_j <= 0`` for ``<=``, ``>= 0`` for ``>=``, free
for ``==``, and ``lambda_j = 0`` where a constraint is slack. Writing ``lambda = beta nu``,
``q`` is the ordinary tilt at ``beta`` of the *Lagrangian criterion*
``h = f + nu . g`` (:class:`Lagrangian`), so the flow, its objective, the beta search and
the optimality check all run on ``h`` unchanged; only ``nu`` is steered besides beta:

* :func:`solve_reference` -- ``(beta, nu)`` of the exact tilt on weighted base samples
  (convex dual in ``lambda`` for each beta, bisection in beta), and the feasibility check
  that names a constraint the budget cannot meet;
* :class:`MultiplierSteering` -- damped Newton steps on ``E_q g_j = c_j`` from fresh
  draws of the flow while it trains, as beta is steered (dual ascent), and the
  acceptance test of an evaluation.
"""

from __future__ import annotations

__all__ = ["Constraint", "ConstraintStatistics", "Lagrangian", "MultiplierPath",
           "MultiplierSteering",
           "check_constraints", "constraint_values_at", "draw_components",
           "flow_constraint_values", "solve_reference"]

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Real

import numpy as np
import torch
from scipy.optimize import minimize
from scipy.special import logsumexp

from .._utils import draw_in_chunks, to_numpy
from ._criteria import evaluate_criterion

#: The comparison operators a constraint may use.
OPS = ("<=", ">=", "==")
# Newton steps on nu are damped by this factor, and move the exponent by at most this
# many nats per standard deviation of g under q (a noisy variance must not fling nu).
_DAMPING, _MAX_NATS = 0.5, 1.0
# Draws of the flow per multiplier update (between two beta updates).
_STEER_DRAWS = 2048
# The reference solution is trusted while its weights keep this effective sample size.
_MIN_ESS = 100.0


@dataclass(frozen=True)
class Constraint:
    """One constraint ``E_q g (op) value``.

    Attributes
    ----------
    function : callable
        ``g``, called like a criterion: a batch ``(n, ...)`` to ``(n,)``.
    op : {"<=", ">=", "=="}
    value : float
    index : int
        Position in the ``constraints`` list (for messages).
    """

    function: Callable
    op: str
    value: float
    index: int

    @property
    def name(self) -> str:
        fname = getattr(self.function, "__name__", type(self.function).__name__)
        return f"constraints[{self.index}] (E_q {fname} {self.op} {self.value:.6g})"

    @property
    def bounds(self) -> tuple[float | None, float | None]:
        """The sign domain of the multiplier (scipy ``bounds`` form)."""
        return {"<=": (None, 0.0), ">=": (0.0, None), "==": (None, None)}[self.op]

    def project(self, nu: float) -> float:
        """``nu`` moved into the multiplier's sign domain."""
        lo, hi = self.bounds
        return float(min(max(nu, -math.inf if lo is None else lo),
                         math.inf if hi is None else hi))

    def violation(self, mean: float) -> float:
        """How far ``E_q g = mean`` is on the wrong side of ``value`` (0 if satisfied)."""
        gap = mean - self.value
        return {"<=": max(gap, 0.0), ">=": max(-gap, 0.0), "==": abs(gap)}[self.op]


def check_constraints(constraints) -> tuple[Constraint, ...]:
    """Validate ``constraints`` (a list of ``(g, op, value)``) with errors that name it."""
    if constraints is None:
        return ()
    if isinstance(constraints, tuple) and len(constraints) == 3 and callable(constraints[0]):
        raise TypeError("constraints must be a list of (g, op, value) tuples; got a single "
                        "tuple: wrap it in a list, constraints=[(g, op, value)].")
    out = []
    for i, item in enumerate(constraints):
        if not (isinstance(item, (tuple, list)) and len(item) == 3):
            raise TypeError(f"constraints[{i}] must be a tuple (g, op, value), e.g. "
                            f"(weekly_energy, '<=', 120.0); got {item!r}.")
        g, op, value = item
        if not callable(g):
            raise TypeError(f"constraints[{i}][0] must be a callable g mapping a batch "
                            f"(n, ...) to (n,), like the criterion; got {type(g).__name__}.")
        if op not in OPS:
            raise ValueError(f"constraints[{i}][1] must be one of {OPS}, got {op!r}.")
        if isinstance(value, bool) or not isinstance(value, (Real, np.floating, np.integer)) \
                or not math.isfinite(value):
            raise ValueError(f"constraints[{i}][2] must be a finite number, got {value!r}.")
        out.append(Constraint(g, op, float(value), i))
    return tuple(out)


class Lagrangian:
    """``h(x) = f(x) + nu . g(x)``: the criterion whose plain tilt is the constrained one.

    Differentiable when ``f`` and every ``g_j`` are (torch outputs with a gradient path);
    otherwise ``h`` carries no gradient, so the tuner uses score-function gradients.

    Parameters
    ----------
    criterion : callable
    constraints : sequence of Constraint
    nu : array of shape (n_constraints,)
        Multipliers per unit beta (``lambda = beta nu``); steered in place during a fit.
    """

    def __init__(self, criterion: Callable, constraints: Sequence[Constraint],
                 nu: np.ndarray):
        self.criterion = criterion
        self.constraints = tuple(constraints)
        self.nu = np.asarray(nu, dtype=np.float64)

    def components(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``f(x)`` and every ``g_j(x)``, each of shape (n,)."""
        f = self.criterion(x)
        return f, [c.function(x) for c in self.constraints]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        f, gs = self.components(x)
        outs = [f, *gs]
        if not all(isinstance(o, torch.Tensor) for o in outs):
            # A numpy part has no gradient: the whole of h must not pretend to have one.
            outs = [evaluate_criterion(lambda _, o=o: o, x).detach() for o in outs]
        h = outs[0].reshape(-1).to(torch.float32)
        for nu, g in zip(self.nu, outs[1:]):
            h = h + float(nu) * g.reshape(-1).to(torch.float32)
        return h

    def frozen(self) -> Lagrangian:
        """A copy whose ``nu`` no longer follows the steering."""
        return Lagrangian(self.criterion, self.constraints, self.nu.copy())


def evaluate_components(lagrangian: Lagrangian, x: torch.Tensor, *, check: bool = False
                        ) -> tuple[np.ndarray, np.ndarray]:
    """``f`` (n,) and ``G`` (n, m) at a batch, float64 numpy; checked like a criterion."""
    f, gs = lagrangian.components(x)
    f = to_numpy(evaluate_criterion(lambda _: f, x, check=check), np.float64)
    cols = []
    for c, g in zip(lagrangian.constraints, gs):
        try:
            cols.append(to_numpy(evaluate_criterion(lambda _, g=g: g, x, check=check),
                                 np.float64))
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{c.name}: {str(exc).replace('criterion', 'g')}") from exc
    return f, np.stack(cols, axis=1) if cols else np.zeros((len(f), 0))


# ------------------------------------------------------------------ reference
def _dual(f: np.ndarray, G: np.ndarray, beta: float, constraints, lam0: np.ndarray):
    """``lambda`` minimising ``log E_p exp(beta f + lambda . g) - lambda . c`` (convex)."""
    c = np.array([k.value for k in constraints])
    scale = G.std(0)
    scale[scale == 0] = 1.0

    def objective(u):  # lambda = u / scale: a well-conditioned problem
        lam = u / scale
        a = beta * f + G @ lam
        log_z = logsumexp(a) - math.log(len(a))
        w = np.exp(a - a.max())
        w /= w.sum()
        return log_z - lam @ c, (w @ G - c) / scale

    bounds = [k.bounds for k in constraints]
    res = minimize(objective, lam0 * scale, jac=True, method="L-BFGS-B", bounds=bounds)
    return res.x / scale


@dataclass(frozen=True)
class ReferenceSolution:
    """``(beta, nu)`` of the exact constrained tilt from weighted base samples."""

    beta: float
    nu: np.ndarray
    kl: float
    ess: float
    resolved: bool


def _reference_at(f, G, beta, constraints, lam0):
    lam = _dual(f, G, beta, constraints, lam0)
    a = beta * f + G @ lam
    w = np.exp(a - a.max())
    w /= w.sum()
    kl = float(w @ a - (logsumexp(a) - math.log(len(a))))
    return lam, max(kl, 0.0), float(1.0 / (w @ w)), w


def solve_reference(f: np.ndarray, G: np.ndarray, budget: float,
                    constraints: Sequence[Constraint], tol: float = 0.02
                    ) -> ReferenceSolution:
    """The constrained tilt meeting ``budget`` on base samples, or an error naming the
    constraint that cannot be met.

    At ``beta = 0`` the dual gives the distribution closest to ``p`` that meets every
    constraint (the I-projection); its KL above the budget means no distribution within
    the budget meets them all, and the constraint whose own I-projection is furthest is
    named. Otherwise beta is bisected so that the KL meets the budget, the multipliers
    solved for at each beta. ``resolved`` is false when the weights' effective sample
    size falls below 100 there: the search then starts from the last resolved point.
    """
    m = len(constraints)
    lam0, kl0, ess0, w0 = _reference_at(f, G, 0.0, constraints, np.zeros(m))
    violations = [k.violation(float(w0 @ G[:, j])) for j, k in enumerate(constraints)]
    scales = [max(float(G[:, j].std()), 1e-12) for j in range(m)]
    if kl0 > budget * (1 + tol) or any(v > tol * s for v, s in zip(violations, scales)):
        alone = [_reference_at(f, G[:, [j]], 0.0, [k], np.zeros(1)) for j, k in
                 enumerate(constraints)]
        worst = int(np.argmax([a[1] if a[2] > 1 else math.inf for a in alone]))
        k = constraints[worst]
        mean_p = float(G[:, worst].mean())
        raise ValueError(
            f"{k.name} cannot be met within kl_budget={budget:.4g}: the closest "
            f"distribution to the base that meets "
            f"{'it' if m == 1 else 'all constraints'} is {kl0:.4g} nats away (E_p g = "
            f"{mean_p:.4g} under the base model). Relax the constraint's value or raise "
            "kl_budget.")
    sd = float(np.std(f))
    if not np.isfinite(sd) or sd == 0:
        return ReferenceSolution(1.0, lam0, kl0, ess0, False)
    lo, hi = 0.0, 1.0 / sd
    lam_lo, lam_hi = lam0, lam0
    while True:  # bracket: KL grows with beta once f pulls harder than the constraints
        lam_hi, kl, ess, _ = _reference_at(f, G, hi, constraints, lam_hi)
        if kl >= budget or hi > 1e3 / sd:
            break
        if ess < _MIN_ESS:  # the samples cannot resolve the budget: start below it
            beta, lam = (lo, lam_lo) if lo > 0 else (hi, lam_hi)
            return ReferenceSolution(beta, lam / beta, kl, ess, False)
        lo, lam_lo, hi = hi, lam_hi, 2 * hi
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lam_mid, kl, ess, _ = _reference_at(f, G, mid, constraints, lam_hi)
        if kl < budget:
            lo, lam_lo = mid, lam_mid
        else:
            hi, lam_hi = mid, lam_mid
        if hi - lo <= 1e-4 * hi:
            break
    lam_hi, kl, ess, _ = _reference_at(f, G, hi, constraints, lam_hi)
    if ess < _MIN_ESS or kl < budget * (1 - tol):
        beta = lo if lo > 0 else hi
        return ReferenceSolution(beta, lam_lo / max(beta, 1e-12), kl, ess, False)
    return ReferenceSolution(hi, lam_hi / hi, kl, ess, True)


# ------------------------------------------------------------------ steering
@dataclass(frozen=True)
class ConstraintStatistics:
    """``E_q f`` and ``E_q g_j`` of one evaluation, with standard errors and ``nu`` then."""

    criterion_mean: float
    criterion_mean_se: float
    criterion_var: float
    means: np.ndarray
    ses: np.ndarray
    nu: np.ndarray

    @classmethod
    def from_draws(cls, f: np.ndarray, G: np.ndarray, nu: np.ndarray) -> ConstraintStatistics:
        n = len(f)
        return cls(float(f.mean()), float(f.std(ddof=1) / math.sqrt(n)), float(f.var()),
                   G.mean(0), G.std(0, ddof=1) / math.sqrt(n), nu.copy())


class MultiplierSteering:
    """Steers ``nu`` so that ``E_q g_j`` meets each constraint while the flow trains.

    Parameters
    ----------
    lagrangian : Lagrangian
        Its ``nu`` is updated in place.
    scales : array of shape (n_constraints,)
        ``sd_p g_j``, the spread of ``g_j`` under the base: the unit of the tolerance
        ``tol`` (a spread, not ``|c_j|``, so that shifting ``g`` by a constant changes
        nothing).
    tol : float
        A constraint is met when its violation is at most
        ``max(tol * scale, 2 standard errors)``.
    draw : callable
        ``draw(n) -> G``: ``g`` at ``n`` fresh draws of the flow, shape (n, m).
    g_ref : array of shape (n_reference, n_constraints)
        ``g`` at the reference base samples.
    start : ReferenceSolution or None
        Where the multipliers started (:func:`solve_reference`).
    """

    def __init__(self, lagrangian: Lagrangian, scales: np.ndarray, tol: float,
                 draw: Callable[[int], np.ndarray] | None, g_ref: np.ndarray,
                 start: ReferenceSolution | None):
        self.lagrangian, self.scales, self.tol, self.draw = lagrangian, scales, tol, draw
        self.g_ref, self.start = g_ref, start
        self._pending = lagrangian.nu.copy()

    @property
    def constraints(self) -> tuple[Constraint, ...]:
        return self.lagrangian.constraints

    def measure(self, beta: float, n_draws: int = _STEER_DRAWS) -> bool:
        """Measure ``E_q g`` on ``n_draws`` fresh draws and prepare one damped Newton step
        of every multiplier (applied by :meth:`step`); whether every constraint looked
        met."""
        G = self.draw(n_draws)
        means, sds = G.mean(0), G.std(0)
        ready, pending = True, self.lagrangian.nu.copy()
        for j, k in enumerate(self.constraints):
            se = sds[j] / math.sqrt(len(G))
            ready &= self._met(k, means[j], se, self.lagrangian.nu[j], j)
            var = max(sds[j] ** 2, 1e-12 * self.scales[j] ** 2)
            step = -_DAMPING * (means[j] - k.value) / (beta * var)
            limit = _MAX_NATS / (beta * max(sds[j], 1e-12 * self.scales[j]))
            pending[j] = k.project(pending[j] + float(np.clip(step, -limit, limit)))
        self._pending = pending
        return bool(ready)

    def step(self) -> None:
        """Apply the step prepared by the last :meth:`measure`."""
        self.lagrangian.nu[:] = self._pending

    def reference(self, f_ref: np.ndarray) -> np.ndarray:
        """``h`` at the reference base samples, at the current multipliers."""
        return f_ref + self.g_ref @ self.lagrangian.nu

    def _met(self, k: Constraint, mean: float, se: float, nu: float, j: int) -> bool:
        slack = max(self.tol * self.scales[j], 2 * se)
        if k.violation(mean) > slack:
            return False
        # An inequality whose multiplier is not zero must be active (complementary
        # slackness): far inside it, the tilt gives up E f for nothing.
        return nu == 0.0 or k.op == "==" or abs(mean - k.value) <= slack

    def satisfied(self, stats: ConstraintStatistics, beta: float | None = None) -> bool:
        """Whether an evaluation (at ``beta``, which does not matter here) meets every
        constraint."""
        return all(self._met(k, stats.means[j], stats.ses[j], stats.nu[j], j)
                   for j, k in enumerate(self.constraints))

    def snapshot(self) -> np.ndarray:
        """A copy of the current multipliers."""
        return self.lagrangian.nu.copy()

    def unmet(self, stats: ConstraintStatistics) -> list[str]:
        """Messages for the constraints an evaluation does not meet."""
        return [f"{k.name}: E_q g = {stats.means[j]:.4g} ± {stats.ses[j]:.2g}"
                for j, k in enumerate(self.constraints)
                if k.violation(stats.means[j]) > max(self.tol * self.scales[j],
                                                     2 * stats.ses[j])]


# ------------------------------------------------------------------ draws
_CHUNK = 8192


def constraint_values_at(lagrangian: Lagrangian, base, z: np.ndarray, device) -> np.ndarray:
    """``G`` (n, m) at flow-space points ``z`` (the reference base samples), checked."""
    def evaluate(m, offset=[0]):  # noqa: B006 - a cursor over z across chunks
        zc = torch.as_tensor(z[offset[0]:offset[0] + m], dtype=torch.float32,
                             device=device)
        offset[0] += m
        return (evaluate_components(lagrangian, base.to_instance(zc), check=True)[1],)

    with torch.no_grad():
        return draw_in_chunks(len(z), 65536, evaluate)[0]


def draw_components(flow, base, lagrangian: Lagrangian, n: int):
    """``n`` draws of the flow: ``log q/p``, ``f`` and ``G``, float64 numpy."""
    def draw(m):
        z = flow.draw(m)
        f, G = evaluate_components(lagrangian, base.to_instance(z))
        return to_numpy(flow.log_prob(z) - base.log_prob(z), np.float64), f, G

    with torch.no_grad():
        return draw_in_chunks(n, _CHUNK, draw)


def flow_constraint_values(flow, base, lagrangian: Lagrangian, n: int) -> np.ndarray:
    """``G`` (n, m) at ``n`` fresh draws of the flow (the steering's measurements)."""
    with torch.no_grad():
        return evaluate_components(lagrangian, base.to_instance(flow.draw(n)))[1]


# ------------------------------------------------------------------ a whole path
#: Knots of the multipliers along a path, as fractions of ``beta_max``.
PATH_KNOTS = 16
_PATH_DRAWS = 512


class MultiplierPath:
    """Multipliers ``nu(beta)`` along a beta path: one per knot, linear in between.

    A constrained path's flow at ``beta`` is the plain tilt of ``h = f + nu(beta) . g``,
    so ``nu`` is a function of beta alone and the flow, conditioned on beta, needs no
    other context. Each knot ``beta_k = k / (K - 1) beta_max`` (``k >= 1``) is steered
    like a single fit's multipliers (:class:`MultiplierSteering`) from draws of the flow
    at that beta; ``nu(0)`` copies the first knot (at ``beta = 0`` the tilt is ``p``
    whatever ``nu``).

    Parameters
    ----------
    constraints : sequence of Constraint
    criterion : callable
    nu : array of shape (n_knots, n_constraints)
    scales : array of shape (n_constraints,)
    tol : float
    g_ref : array of shape (n_reference, n_constraints)
    """

    def __init__(self, constraints, criterion, nu: np.ndarray, scales, tol: float,
                 g_ref: np.ndarray):
        self.constraints, self.criterion = tuple(constraints), criterion
        self.nu = np.asarray(nu, np.float64)
        self.scales, self.tol, self.g_ref = scales, tol, g_ref
        self.fractions = np.linspace(0.0, 1.0, len(self.nu))

    @classmethod
    def from_reference(cls, constraints, criterion, f_ref, g_ref, budget: float, tol: float,
                       beta_max: float) -> tuple[MultiplierPath, ReferenceSolution]:
        """Knots started at the exact constrained tilts of the reference samples."""
        start = solve_reference(f_ref, g_ref, budget, constraints, tol)
        beta_hi = min(start.beta, beta_max)
        nu = np.empty((PATH_KNOTS, len(constraints)))
        lam = start.beta * start.nu
        for k in range(PATH_KNOTS - 1, 0, -1):
            beta = beta_hi * k / (PATH_KNOTS - 1)
            lam = _dual(f_ref, g_ref, beta, constraints, lam)
            nu[k] = lam / beta
        nu[0] = nu[1]
        scales = np.maximum(g_ref.std(0), 1e-12)
        return cls(constraints, criterion, nu, scales, tol, g_ref), start

    def nu_at(self, beta: float, beta_max: float) -> np.ndarray:
        """``nu(beta)`` (n_constraints,), by linear interpolation between the knots."""
        t = 0.0 if beta_max <= 0 else min(max(beta / beta_max, 0.0), 1.0)
        return np.array([np.interp(t, self.fractions, col) for col in self.nu.T])

    def nu_rows(self, betas: torch.Tensor, beta_max: float) -> torch.Tensor:
        """``nu(beta)`` for a batch of betas, shape (n, n_constraints)."""
        t = (betas / max(beta_max, 1e-12)).clamp(0.0, 1.0) * (len(self.nu) - 1)
        low = t.floor().long().clamp(max=len(self.nu) - 2)
        frac = (t - low)[:, None]
        nu = torch.as_tensor(self.nu, dtype=betas.dtype, device=betas.device)
        return (1 - frac) * nu[low] + frac * nu[low + 1]

    def lagrangian_at(self, beta: float, beta_max: float) -> Lagrangian:
        return Lagrangian(self.criterion, self.constraints, self.nu_at(beta, beta_max))

    def measure(self, draw_at: Callable[[float, int], np.ndarray], beta_max: float) -> bool:
        """Prepare one damped Newton step at every knot (applied by :meth:`step`); whether
        every knot looked met.

        ``draw_at(beta, n)`` returns ``g`` at ``n`` draws of the flow at ``beta``.
        """
        ready, pending = True, self.nu.copy()
        for k in range(1, len(self.nu)):
            beta = beta_max * self.fractions[k]
            lagrangian = Lagrangian(self.criterion, self.constraints, self.nu[k].copy())
            steering = MultiplierSteering(lagrangian, self.scales, self.tol,
                                          lambda n, b=beta: draw_at(b, n), self.g_ref, None)
            ready &= steering.measure(beta, n_draws=_PATH_DRAWS)
            steering.step()
            pending[k] = lagrangian.nu
        pending[0] = pending[1]
        self._pending = pending
        return ready

    def step(self) -> None:
        """Apply the steps prepared by the last :meth:`measure`."""
        pending = getattr(self, "_pending", None)
        if pending is not None:
            self.nu[:] = pending
            self._pending = None

    def steer(self, draw_at: Callable[[float, int], np.ndarray], beta_max: float) -> bool:
        """:meth:`measure` then :meth:`step`."""
        ready = self.measure(draw_at, beta_max)
        self.step()
        return ready

    def satisfied(self, draw_at: Callable[[float, int], np.ndarray], beta_max: float,
                  n: int) -> bool:
        """Whether every knot meets every constraint on ``n`` fresh draws (the final
        check before a path is accepted; the steering's draws are too few to decide)."""
        for k in range(1, len(self.nu)):
            beta = beta_max * self.fractions[k]
            G = draw_at(beta, n)
            stats = ConstraintStatistics(0.0, 0.0, 0.0, G.mean(0),
                                         G.std(0, ddof=1) / math.sqrt(n), self.nu[k])
            steering = MultiplierSteering(Lagrangian(self.criterion, self.constraints,
                                                     self.nu[k]),
                                          self.scales, self.tol, None, self.g_ref, None)
            if not steering.satisfied(stats):
                return False
        return True
