"""One fit for the whole beta path: a beta-conditioned flow and the fitted models along it.

:class:`BoltzmannPath` trains one flow ``q(z | beta)`` (zuko layers and mixture take beta
as context) on the tilt objective at every beta in ``[0, beta_max]`` at once, each batch
row at its own beta, while ``beta_max`` is steered to the largest budget by the tuner's
beta loop (:func:`~sktilt.tilt._beta_search.run_budget_search`, with its evaluation
records and warnings). The Pareto front
of ``E_q f`` against ``KL`` and a model at any budget up to the largest then cost no more
training: :meth:`BoltzmannPath.tuner_at` returns a :class:`TiltedModel` with the surface of
a fitted :class:`~sktilt.BoltzmannTuner`.
"""

from __future__ import annotations

__all__ = ["BoltzmannPath", "ConditionedFlow", "PathObjective", "TiltedModel"]

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, Literal

import numpy as np
import torch
from sklearn.base import BaseEstimator, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Hidden, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from torch import nn

from .._deprecation import DEPRECATED, renamed
from .._persistence import VersionedStateMixin
from .._random import draw_seed, resolve_seed, torch_seeded
from .._training import StepNet
from .._typing import ConstraintSpec, CriterionFunction, Device, RandomStateLike
from .._utils import check_device, check_hidden_units, warn_at_caller
from ._bases import Base, as_base
from ._beta_search import run_budget_search, starting_beta
from ._constraints import (
    ConstraintStatistics,
    Lagrangian,
    MultiplierPath,
    check_constraints,
    constraint_values_at,
    draw_components,
    flow_constraint_values,
)
from ._criteria import evaluate_criterion
from ._flows import TiltFlow, build_flow, components_for
from ._objective import _frozen_log_prob
from ._reference import importance_diagnostics, tilted_moments
from ._sampling import FlowStatistics, draw_base, draw_flow, init_mixture
from ._tilted import TiltedModelMixin

# Batch rows (betas) held at beta_max at every step, to steer it.
_TOP_FRACTION = 0.25


class ConditionedFlow(nn.Module):
    """A beta-conditioned :class:`~sktilt.tilt.TiltFlow` at one context.

    It has the ``draw(n)`` and ``log_prob(z)`` of an unconditional flow.
    """

    def __init__(self, flow: TiltFlow, context: float):
        super().__init__()
        self.flow = flow
        self.register_buffer("context", torch.tensor([[float(context)]]))

    def draw(self, n: int) -> torch.Tensor:
        return self.flow.draw(n, self.context)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return self.flow.log_prob(z, self.context)


@dataclass
class PathObjective:
    """The tilt objective averaged over betas in ``[0, beta_max]`` (call with ``beta=``,
    the steered ``beta_max``).

    Each of ``rows`` batch rows has its own beta (a jittered grid over ``[0, beta_max]``,
    a quarter of them at ``beta_max``) and one reparameterised sample per mixture
    component; the flow sees ``beta / scale`` as context. What it records of a step is
    what the beta loop steers by: ``kl_batch``, ``criterion_batch`` and
    ``criterion_sq_batch`` of the rows at ``beta_max`` (of ``h`` with constraints).
    """

    base: Base
    criterion: Callable
    rows: int
    scale: float
    multipliers: MultiplierPath | None = None

    def __call__(self, flow: TiltFlow, *, beta: float) -> tuple[torch.Tensor, dict]:
        beta_max = beta
        n_top = max(1, int(_TOP_FRACTION * self.rows))
        grid = (torch.arange(self.rows - n_top) + torch.rand(self.rows - n_top)) / (
            self.rows - n_top)
        betas = torch.cat([grid * beta_max, torch.full((n_top,), float(beta_max))])
        c = (betas / self.scale)[:, None]
        z, weights = flow.stratified(0, c)  # (rows, K, d), (rows, K)
        k = z.shape[1]
        zf, wf = z.reshape(-1, z.shape[-1]), weights.reshape(-1)
        cf, bf = c.repeat_interleave(k, 0), betas.repeat_interleave(k)
        log_ratio = _frozen_log_prob(flow, zf, cf) - self.base.log_prob(zf)
        x = self.base.to_instance(zf)
        f = evaluate_criterion(self.criterion, x)
        if self.multipliers is not None:  # each row's h = f + nu(beta) . g
            nu = self.multipliers.nu_rows(bf.to(f.dtype), beta_max)
            for j, c in enumerate(self.multipliers.constraints):
                f = f + nu[:, j] * evaluate_criterion(c.function, x)
        loss = (wf * (log_ratio - bf * f)).sum()
        top = slice((self.rows - n_top) * k, None)
        w_top = wf[top] / wf[top].sum()
        f_top = (w_top * f[top]).sum()
        return loss, {"kl_batch": (w_top * log_ratio[top]).sum().item(),
                      "criterion_batch": f_top.item(),
                      "criterion_sq_batch": (w_top * f[top].detach() ** 2).sum().item()}


def _set(value) -> bool:
    """Whether a renamed parameter's old name was set."""
    return not (isinstance(value, str) and value == DEPRECATED)


@dataclass
class _PathSteering:
    """The path's multipliers ``nu(beta)`` as the beta loop's
    :class:`~sktilt.tilt._beta_search.Steering`: every knot is steered from draws of the
    flow at its beta, the knots spread over ``[0, beta]`` for the steered ``beta``.

    ``draw_at(beta, n, beta_max)`` returns ``g`` at ``n`` draws of the flow at ``beta``;
    an evaluation meets the constraints when every knot does on ``n_check`` draws.
    """

    multipliers: MultiplierPath
    draw_at: Callable[[float, int, float], np.ndarray]
    n_check: int

    def _at(self, beta_max: float) -> Callable[[float, int], np.ndarray]:
        return lambda beta, n: self.draw_at(beta, n, beta_max)

    def measure(self, beta: float) -> bool:
        return self.multipliers.measure(self._at(beta), beta)

    def step(self) -> None:
        self.multipliers.step()

    def reference(self, f_ref: np.ndarray) -> np.ndarray:
        return f_ref + self.multipliers.g_ref @ self.multipliers.nu[-1]

    def satisfied(self, stats: ConstraintStatistics, beta: float) -> bool:
        return self.multipliers.satisfied(self._at(beta), beta, self.n_check)

    def snapshot(self) -> np.ndarray:
        return self.multipliers.nu.copy()


class TiltedModel(TiltedModelMixin, BaseEstimator):
    """A fitted tilted model at one point of a :class:`BoltzmannPath` (see ``tuner_at``).

    It has the fitted surface of a :class:`~sktilt.BoltzmannTuner` (``beta_``, ``kl_``,
    ``criterion_mean_``, ``sample``, ``score_samples``, ``tail_probability``,
    ``sample_tail``, ...), and nothing to train: :meth:`fit` returns it as it is.
    """

    def __init__(self, criterion=None, kl_budget=None, n_reference_samples=100_000,
                 device="cpu", random_state=None):
        self.criterion = criterion
        self.kl_budget = kl_budget
        self.n_reference_samples = n_reference_samples
        self.device = device
        self.random_state = random_state

    def fit(self, X=None, y=None) -> TiltedModel:
        """Return ``self``: a point of a fitted path is fitted already."""
        check_is_fitted(self)
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "flow_")


class BoltzmannPath(VersionedStateMixin, BaseEstimator):
    """Tilt a generative model along the whole beta path with one fit.

    Trains one flow ``q(. | beta)`` conditioned on beta for every ``beta`` in
    ``[0, beta_max_]``, with ``beta_max_`` chosen so that ``KL(q(. | beta_max_) || p)``
    meets ``max_kl_budget``. ``path_`` then gives ``beta``, ``KL`` and ``E_q f`` along the
    path with their references, and :meth:`tuner_at` a fitted model at any budget up to
    ``max_kl_budget`` without training.

    ``beta_max_`` is steered by the same loop as the beta of a
    :class:`~sktilt.BoltzmannTuner` (every 25 steps, from the running KL of the batch
    rows at ``beta_max``; an evaluation on fresh draws accepts it), so the fit records
    its evaluations in ``history_`` and warns as the tuner does: a
    :class:`~sktilt.tilt.TiltQualityWarning` when the flow at ``beta_max_`` under-fits
    the tilt, a :class:`~sklearn.exceptions.ConvergenceWarning` when ``max_kl_budget``
    is not met within ``max_iter`` steps, a ``RuntimeWarning`` when training diverges.

    Parameters
    ----------
    base_sampler : LatentSampler or torch.distributions.Distribution
        The model ``p`` (as for :class:`~sktilt.BoltzmannTuner`, fitted).
    criterion : callable
        ``f``, differentiable.
    max_kl_budget : float, default=5.0
        The largest budget the path reaches.
    constraints : list of (callable, str, float) or None, default=None
        Constraints on ``E_q g_j``, as for :class:`~sktilt.BoltzmannTuner`. Every point
        of the path is then the constrained tilt ``p exp(beta (f + nu(beta) . g))``:
        the multipliers are steered at 8 knots of beta (linear in between), each from
        draws of the flow at its beta. Budgets below the distance from ``p`` to the
        nearest distribution meeting them cannot meet them (a warning says so).
    n_components : int or "auto", default="auto"
        Mixture components (see :class:`~sktilt.BoltzmannTuner`).
    n_transforms : int, default=0
        Coupling layers on top of the mixture.
    hidden_layer_sizes : tuple of int, default=(64, 64)
        Hidden sizes of the hyper-networks (the mixture's too: it depends on beta).

        .. versionadded:: 0.2
           Replaces ``hidden_features``.
    batch_size : int, default=512
        Samples per step, spread over ``batch_size // K`` betas.
    max_iter : int, default=2000
        Largest number of optimisation steps.

        .. versionadded:: 0.2
           Replaces ``n_steps``.
    lr : float, default=5e-3
        Adam learning rate.
    tol : float, default=0.02
        Relative tolerance on ``KL`` at ``beta_max_``.
    n_eval_samples : int, default=16384
        Samples per point of ``path_`` and per :meth:`tuner_at`.
    n_reference_samples : int, default=100_000
        Base samples of the importance-sampling reference.
    n_path_points : int, default=16
        Points of ``path_``.
    beta_max : float, default=1e4
        Ceiling on ``beta_max_``.
    device : str, default="cpu"
    verbose : int, default=0
        1 prints one line per evaluation of the flow at ``beta_max``; 2 adds skorch's
        per-epoch log.
    random_state : int, RandomState instance or None, default=None
    hidden_features : tuple of int
        Old name of ``hidden_layer_sizes``.

        .. deprecated:: 0.2
           ``hidden_features`` was renamed ``hidden_layer_sizes`` in 0.2 and will be
           removed in 0.3.
    n_steps : int
        Old name of ``max_iter``.

        .. deprecated:: 0.2
           ``n_steps`` was renamed ``max_iter`` in 0.2 and will be removed in 0.3.

    Attributes
    ----------
    path_ : dict of ndarray
        ``beta``, ``kl``, ``kl_se``, ``criterion_mean``, ``criterion_mean_se``, and the
        reference ``reference_kl``, ``reference_criterion_mean``, ``reference_ess``;
        with constraints also ``constraint_values`` of shape (n_path_points,
        n_constraints).
    multipliers_ : MultiplierPath or None
        The fitted multipliers ``nu(beta)`` (with ``constraints``).
    beta_max_ : float
        The largest beta of the path, the one kept by the beta loop.
    converged_ : bool
        Whether ``KL`` at ``beta_max_`` met ``max_kl_budget``.
    history_ : list of dict
        One entry per evaluation of the flow at the steered ``beta_max``, as the tuner's
        ``history_``: ``beta``, ``kl``, ``kl_se``, ``criterion_mean``, ``criterion_var``,
        ``criterion_third``, ``steps``, the reference ``reference_kl``,
        ``reference_criterion_mean``, ``reference_ess``, and the diagnostics
        ``pareto_k`` and ``reweighted_criterion_mean`` (with constraints also the
        ``constraint_values`` and ``constraint_multipliers`` at ``beta_max``).
    n_iter_ : int
        Number of evaluations (``len(history_)``), as the tuner's.
    flow_ : TiltFlow
        The beta-conditioned flow (context ``beta / context_scale_``).
    context_scale_ : float
    start_flow_ : TiltFlow
        The unconditional start, the defensive component of the rare-event methods.
    net_ : StepNet
    base_ : Base
    n_steps_ : int
        Optimisation steps run (at most ``max_iter``).

    Examples
    --------
    >>> import torch
    >>> from sktilt import BoltzmannPath, LatentSampler, LinearCriterion
    >>> base = LatentSampler(torch.nn.Identity(), latent_dim=2)
    >>> path = BoltzmannPath(base, LinearCriterion([1.0, 0.0]), max_kl_budget=2.0,
    ...                      random_state=0).fit()
    >>> round(path.tuner_at(0.5).beta_, 1)  # exact: sqrt(2 * 0.5) / |a| = 1
    1.0
    """

    _parameter_constraints: dict = {
        "base_sampler": "no_validation",
        "criterion": [callable],
        "max_kl_budget": [Interval(Real, 0, None, closed="neither")],
        "constraints": [list, None],
        "n_components": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "n_transforms": [Interval(Integral, 0, None, closed="left")],
        "hidden_layer_sizes": ["array-like", tuple],
        "batch_size": [Interval(Integral, 2, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_eval_samples": [Interval(Integral, 2, None, closed="left")],
        "n_reference_samples": [Interval(Integral, 2, None, closed="left")],
        "n_path_points": [Interval(Integral, 2, None, closed="left")],
        "beta_max": [Interval(Real, 0, None, closed="neither")],
        "device": [str, torch.device],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
        "hidden_features": ["array-like", tuple, Hidden(StrOptions({DEPRECATED}))],
        "n_steps": [Interval(Integral, 1, None, closed="left"),
                    Hidden(StrOptions({DEPRECATED}))],
    }

    def __init__(self, base_sampler: Any, criterion: CriterionFunction, *,
                 max_kl_budget: float = 5.0, constraints: list[ConstraintSpec] | None = None,
                 n_components: int | Literal["auto"] = "auto", n_transforms: int = 0,
                 hidden_layer_sizes: Sequence[int] = (64, 64), batch_size: int = 512,
                 max_iter: int = 2000, lr: float = 5e-3, tol: float = 0.02,
                 n_eval_samples: int = 16384, n_reference_samples: int = 100_000,
                 n_path_points: int = 16, beta_max: float = 1e4, device: Device = "cpu",
                 verbose: int = 0, random_state: RandomStateLike = None,
                 hidden_features: Sequence[int] | Literal["deprecated"] = DEPRECATED,
                 n_steps: int | Literal["deprecated"] = DEPRECATED) -> None:
        self.base_sampler = base_sampler
        self.criterion = criterion
        self.max_kl_budget = max_kl_budget
        self.constraints = constraints
        self.n_components = n_components
        self.n_transforms = n_transforms
        self.hidden_layer_sizes = hidden_layer_sizes
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.lr = lr
        self.tol = tol
        self.n_eval_samples = n_eval_samples
        self.n_reference_samples = n_reference_samples
        self.n_path_points = n_path_points
        self.beta_max = beta_max
        self.device = device
        self.verbose = verbose
        self.random_state = random_state
        self.hidden_features = hidden_features
        self.n_steps = n_steps

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X=None, y=None) -> BoltzmannPath:
        """Fit the beta-conditioned flow and measure the path.

        Parameters
        ----------
        X, y : None
            Ignored (the base must be fitted).

        Returns
        -------
        self : BoltzmannPath
        """
        hidden = renamed(self, "hidden_layer_sizes", "hidden_features")
        max_iter = renamed(self, "max_iter", "n_steps")
        check_hidden_units(hidden, "hidden_features" if _set(self.hidden_features)
                           else "hidden_layer_sizes")
        constraints = check_constraints(self.constraints)
        base = as_base(self.base_sampler).to(check_device(self.device))
        if not base.differentiable:  # the path's objective differentiates log p pathwise
            raise ValueError(
                f"BoltzmannPath needs a differentiable base log-density; base_sampler "
                f"{type(self.base_sampler).__name__} is evaluated in numpy. Use "
                "BoltzmannTuner (score-function gradients) or a base with a torch form "
                "(GaussianMixture, gaussian KernelDensity, a torch Distribution).")
        k = components_for(base.dim, self.n_components)
        seed = draw_seed(self.random_state)
        budget = float(self.max_kl_budget)
        with torch_seeded(seed):
            device = torch.device(self.device)
            eps_ref, f_ref = draw_base(base, self.criterion, self.n_reference_samples, device)
            multipliers, h_ref = None, f_ref
            if constraints:
                g_ref = constraint_values_at(
                    Lagrangian(self.criterion, constraints, np.zeros(len(constraints))),
                    base, eps_ref, device)
                multipliers, start = MultiplierPath.from_reference(
                    constraints, self.criterion, f_ref, g_ref, budget, self.tol,
                    float(self.beta_max))
                h_ref = f_ref + g_ref @ multipliers.nu[-1]
            beta_hi = (min(start.beta, float(self.beta_max)) if constraints and start.resolved
                       else starting_beta(h_ref, budget, float(self.beta_max)))
            rng = np.random.default_rng(seed)
            flow = build_flow(base.dim, components=k, context=1, transforms=self.n_transforms,
                              hidden_features=hidden).to(self.device)
            start_flow = build_flow(base.dim, components=k).to(self.device)
            init_mixture(start_flow, eps_ref, h_ref, beta_hi, rng)
            rows = max(2, self.batch_size // k)
            net = StepNet(flow, PathObjective(base, self.criterion, rows, beta_hi, multipliers),
                          optimizer=torch.optim.Adam, lr=self.lr, device=self.device,
                          verbose=int(self.verbose > 1)).initialize()
            self.multipliers_ = multipliers
            result = self._steer(net, base, f_ref, budget, beta_hi, max_iter)
            best = result.kept(budget, "BoltzmannPath")
            net.module_.load_state_dict(best.state)
            if multipliers is not None:  # the knots the kept flow was trained with
                multipliers.nu[:] = best.multipliers
            beta_hi = best.beta
            self.path_ = self._measure_path(flow, base, f_ref, beta_hi, net.objective.scale)
        self.base_, self.flow_, self.start_flow_, self.net_ = base, flow, start_flow, net
        self.context_scale_ = net.objective.scale
        self.beta_max_, self.n_steps_, self.converged_ = beta_hi, result.steps, result.converged
        self.history_ = result.records()
        self.n_iter_ = len(self.history_)
        self._reference_f = f_ref
        result.warn(budget, budget_name="max_kl_budget", limits=f"max_iter={max_iter} steps",
                    remedy="max_iter", underfit_fix=(
                        "Raise n_components (one per mode of the tilt) or n_transforms "
                        "(e.g. 2: non-Gaussian or curved modes)."))
        return self

    def _steer(self, net, base, f_ref, budget, beta_hi, max_iter):
        """Train while steering ``beta_max`` to ``KL = budget``: the tuner's beta loop, on
        the batch rows at ``beta_max`` and the flow evaluated there."""
        scale = net.objective.scale

        def evaluate(beta):
            stats, (log_ratio, h, cstats) = self._evaluate(net.module_, base, beta, scale,
                                                           beta)
            diagnostics = importance_diagnostics(log_ratio, h, beta,
                                                 self._h_ref(f_ref, beta, beta))
            return (stats, diagnostics) if cstats is None else (stats, diagnostics, cstats)

        steering = None
        if self.multipliers_ is not None:
            def draw_at(beta, n, beta_hi):
                return flow_constraint_values(
                    ConditionedFlow(net.module_, beta / scale), base,
                    self.multipliers_.lagrangian_at(beta, beta_hi), n)
            steering = _PathSteering(self.multipliers_, draw_at, self.n_eval_samples // 4)
        return run_budget_search(
            net, evaluate, f_ref, budget, beta_hi, max_steps=max_iter,
            max_evaluations=math.inf, tol=self.tol, beta_max=float(self.beta_max),
            start_beta=beta_hi, steering=steering, log=print if self.verbose else None,
            owner="BoltzmannPath")

    def _evaluate(self, flow, base, beta, scale, beta_hi):
        """Statistics of the flow at ``beta`` (of ``h`` with constraints), and its draws:
        ``log q/p``, ``h`` and, with constraints, their :class:`ConstraintStatistics`."""
        conditioned = ConditionedFlow(flow, beta / scale)
        if self.multipliers_ is None:
            log_ratio, f, _ = draw_flow(conditioned, base, self.criterion, self.n_eval_samples)
            return FlowStatistics.from_draws(log_ratio, f, beta), (log_ratio, f, None)
        lagrangian = self.multipliers_.lagrangian_at(beta, beta_hi)
        log_ratio, f, G = draw_components(conditioned, base, lagrangian, self.n_eval_samples)
        h = f + G @ lagrangian.nu
        return (FlowStatistics.from_draws(log_ratio, h, beta),
                (log_ratio, h, ConstraintStatistics.from_draws(f, G, lagrangian.nu)))

    def _h_ref(self, f_ref, beta, beta_hi):
        if self.multipliers_ is None:
            return f_ref
        return f_ref + self.multipliers_.g_ref @ self.multipliers_.nu_at(beta, beta_hi)

    def _measure_path(self, flow, base, f_ref, beta_hi, scale):
        rows, values = [], []
        for beta in np.linspace(0.0, beta_hi, self.n_path_points):
            stats, (_, _, cstats) = self._evaluate(flow, base, float(beta), scale, beta_hi)
            ref = tilted_moments(self._h_ref(f_ref, float(beta), beta_hi), float(beta))
            mean, mean_se = stats.criterion_mean, stats.criterion_mean_se
            if cstats is not None:  # f's own mean, not h's
                mean, mean_se = cstats.criterion_mean, cstats.criterion_mean_se
                values.append(cstats.means)
            rows.append((stats.beta, stats.kl, stats.kl_se, mean, mean_se, ref.kl,
                         ref.criterion_mean, ref.ess))
        keys = ("beta", "kl", "kl_se", "criterion_mean", "criterion_mean_se", "reference_kl",
                "reference_criterion_mean", "reference_ess")
        path = {k: np.array(v) for k, v in zip(keys, zip(*rows))}
        if values:
            path["constraint_values"] = np.array(values)
        return path

    def tuner_at(self, kl_budget: float) -> TiltedModel:
        """A fitted model at ``kl_budget`` (up to ``max_kl_budget``), without training.

        Beta is read off the measured path (``KL`` is increasing in beta; linear
        interpolation in ``sqrt(KL)``, exact for a Gaussian tilt), then the flow at that
        beta is evaluated afresh.

        Parameters
        ----------
        kl_budget : float
            In ``(0, max KL of path_]``.

        Returns
        -------
        TiltedModel
        """
        check_is_fitted(self)
        kl_budget = float(kl_budget)
        top = max(float(self.path_["kl"].max()), self.max_kl_budget if self.converged_ else 0)
        if not (math.isfinite(kl_budget) and 0 < kl_budget <= top * (1 + self.tol)):
            raise ValueError(f"kl_budget must be in (0, {top:.4g}], the largest KL of the "
                             f"fitted path (max_kl_budget={self.max_kl_budget}); got "
                             f"{kl_budget!r}. Refit with a larger max_kl_budget.")
        root = np.sqrt(np.maximum.accumulate(np.maximum(self.path_["kl"], 0.0)))
        beta = float(np.interp(math.sqrt(kl_budget), root, self.path_["beta"]))
        with torch_seeded(resolve_seed(self.random_state)):
            stats, (log_ratio, f, cstats) = self._evaluate(self.flow_, self.base_, beta,
                                                           self.context_scale_, self.beta_max_)
        model = TiltedModel(self.criterion, kl_budget, self.n_reference_samples, self.device,
                            self.random_state)
        model.base_, model.start_flow_ = self.base_, self.start_flow_
        model.flow_ = ConditionedFlow(self.flow_, beta / self.context_scale_)
        model.beta_, model.kl_, model.kl_se_ = beta, stats.kl, stats.kl_se
        model.criterion_mean_, model.criterion_mean_se_ = (stats.criterion_mean,
                                                           stats.criterion_mean_se)
        model.criterion_std_ = math.sqrt(max(stats.criterion_var, 0.0))
        h_ref = self._h_ref(self._reference_f, beta, self.beta_max_)
        model.reference_ = tilted_moments(h_ref, beta)
        model.log_partition_ = model.reference_.log_partition
        model.diagnostics_ = importance_diagnostics(log_ratio, f, beta, h_ref)
        model._reference_f = self._reference_f
        if cstats is not None:
            self._set_constraints_at(model, cstats)
        return model

    def _set_constraints_at(self, model: TiltedModel, cstats: ConstraintStatistics) -> None:
        model.criterion_mean_, model.criterion_mean_se_ = (cstats.criterion_mean,
                                                           cstats.criterion_mean_se)
        model.criterion_std_ = math.sqrt(max(cstats.criterion_var, 0.0))
        model.constraint_multipliers_ = model.beta_ * cstats.nu
        model.constraint_values_, model.constraint_values_se_ = cstats.means, cstats.ses
        multipliers = self.multipliers_
        model._exponent = Lagrangian(self.criterion, multipliers.constraints, cstats.nu)
        unmet = [f"{c.name}: E_q g = {cstats.means[j]:.4g}"
                 for j, c in enumerate(multipliers.constraints)
                 if c.violation(cstats.means[j]) > max(multipliers.tol * multipliers.scales[j],
                                                       2 * cstats.ses[j])]
        if unmet:
            warn_at_caller(
                f"At kl_budget={model.kl_budget:.4g} the path's tilt does not meet "
                + "; ".join(unmet) + ". Below the distance from the base to the nearest "
                "distribution that meets the constraints no budget can; otherwise refit "
                "with a larger max_iter.", ConvergenceWarning)

    def sample(self, n_samples=1, *, kl_budget, random_state=None) -> np.ndarray:
        """Draw from the tilted model at ``kl_budget`` (see :meth:`tuner_at`).

        Parameters
        ----------
        n_samples : int, default=1
        kl_budget : float
        random_state : int, RandomState instance or None, default=None

        Returns
        -------
        X : ndarray of shape (n_samples, ...)
        """
        return self.tuner_at(kl_budget).sample(n_samples, random_state=random_state)
