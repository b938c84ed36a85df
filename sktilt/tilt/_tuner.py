"""Boltzmann tuning of generative models (BTGM): the :class:`BoltzmannTuner` estimator.

``fit`` is a short sequence of named steps (reference draws, starting beta, flow start,
beta search, selection); the math lives in the sibling private modules.
"""

from __future__ import annotations

__all__ = ["BoltzmannTuner"]

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from numbers import Integral, Real
from typing import Any, Literal

import numpy as np
import torch
from sklearn.base import BaseEstimator, _fit_context, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Hidden, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from .._config import torch_threads
from .._deprecation import DEPRECATED, renamed
from .._persistence import VersionedStateMixin
from .._random import draw_seed, torch_seeded
from .._training import CosineDecay, EpochProgress, StepNet
from .._typing import ConstraintSpec, CriterionFunction, Device, RandomStateLike
from .._utils import check_device, check_hidden_units, warn_at_caller
from ._bases import Base, WhitenedBase, as_base
from ._beta_search import CHUNK, SearchResult, run_budget_search, starting_beta
from ._constraints import (
    ConstraintStatistics,
    Lagrangian,
    MultiplierSteering,
    check_constraints,
    constraint_values_at,
    draw_components,
    flow_constraint_values,
    solve_reference,
)
from ._criteria import detect_gradient
from ._flows import FLOWS, TiltFlow, build_flow, components_for
from ._objective import TiltObjective, WeightedLikelihood
from ._reference import (
    importance_diagnostics,
    resolvable_beta,
    tilted_moments,
)
from ._sampling import FlowStatistics, draw_base, draw_flow, init_mixture, tilted_samples
from ._tilted import TiltedModelMixin

# The likelihood start: its steps, and the fraction its learning rate decays to.
_LIKELIHOOD_STEPS = 50
_FINAL_LR_FRACTION = 0.1
# max_iter="auto": the largest number of steps of the search, a base plus per dimension;
# no fit is accepted before _MIN_STEPS_PER_DIM steps per dimension (a mixture in a large
# latent space settles slowly, and the optimality check cannot always tell).
_AUTO_STEPS, _AUTO_STEPS_PER_DIM, _MIN_STEPS_PER_DIM = 1000, 20, 10
# n_reference_samples="auto": this many per 32 dimensions.
_AUTO_REFERENCE = 100_000
# A full-covariance mixture in instance space: no fit is accepted before this many steps
# per dimension: with fewer, the budget can be met while the mixture is still travelling
# (benchmarks/bench_tuner_sklearn_bases.py).
_MIN_STEPS_PER_DIM_FULL = 100
# n_components="auto" on a K-component mixture base in d dimensions: up to K d, at most this.
_MAX_MIXTURE_COMPONENTS = 32
# The likelihood start fits the weighted reference samples at a beta they resolve with
# at least this effective sample size, so that it does not memorise a handful of them.
_START_MIN_ESS = 500.0


def _evaluate(flow: TiltFlow, base: Base, criterion, n: int, f_ref, beta: float):
    log_ratio, f, _ = draw_flow(flow, base, criterion, n)
    return (FlowStatistics.from_draws(log_ratio, f, beta),
            importance_diagnostics(log_ratio, f, beta, f_ref))


def _evaluate_constrained(flow: TiltFlow, base: Base, steering: MultiplierSteering, n: int,
                          f_ref, beta: float):
    # The flow's statistics are those of h = f + nu . g (what it is a plain tilt of),
    # besides f's and g's own.
    lagrangian = steering.lagrangian
    log_ratio, f, G = draw_components(flow, base, lagrangian, n)
    h = f + G @ lagrangian.nu
    return (FlowStatistics.from_draws(log_ratio, h, beta),
            importance_diagnostics(log_ratio, h, beta, steering.reference(f_ref)),
            ConstraintStatistics.from_draws(f, G, lagrangian.nu))


def _is_estimator_base(base_sampler) -> bool:
    # Estimators the tuner fits on X when unfitted: sktilt's own (get_base_sampler) and
    # scikit-learn density models (sample / score_samples, or a Pipeline ending in one).
    return any(hasattr(base_sampler, a) for a in ("get_base_sampler", "score_samples",
                                                  "sample", "steps"))


@dataclass
class _Fitted:
    """Everything ``fit`` computes, assigned to the estimator in one piece at the end."""

    gradient: str
    net: StepNet
    start_flow: TiltFlow
    result: SearchResult
    f_ref: np.ndarray
    steering: MultiplierSteering | None = None


class BoltzmannTuner(VersionedStateMixin, TiltedModelMixin, BaseEstimator):
    r"""Tilt a generative model toward high values of a criterion (BTGM).

    Learns ``q_beta(x) ∝ p(x) exp(beta f(x))`` with a normalising flow applied to the
    samples of ``p`` (its latent space for decoder-based models), choosing ``beta`` so
    that ``KL(q_beta || p)`` meets ``kl_budget``. Among all distributions within that
    KL of ``p``, ``q_beta`` has the largest ``E_q f``; with
    ``kl_budget = quantile_budget(rho) = -log(rho)`` it samples (at least as high as)
    the top-``rho`` tail of ``f``, without rejection sampling.

    Parameters
    ----------
    base_sampler : LatentSampler, torch.distributions.Distribution or estimator
        The model ``p``. A :class:`~sktilt.LatentSampler` is tuned in its ``N(0, I)``
        latent space with its decoder frozen; a torch ``Distribution`` over vectors is
        tuned in instance space; so is a scikit-learn density estimator with ``sample``
        and ``score_samples``: Gaussian mixtures (any covariance type), gaussian
        ``KernelDensity`` and either behind ``StandardScaler`` steps in a ``Pipeline``
        are rewritten exactly in torch (pathwise gradients), any other one is called in
        numpy (score-function gradients; see :mod:`sktilt.tilt`). An unfitted
        estimator (with ``get_base_sampler`` or ``score_samples``) is cloned and fitted
        on ``X``; a fitted one is used as is. Never modified.
    criterion : callable
        ``f``: maps a torch batch in instance space ``(n, ...)`` to ``(n,)``. If it is
        differentiable, pathwise gradients are used; otherwise (numpy output or no
        gradient path) score-function gradients. See :mod:`sktilt.tilt`.
    kl_budget : float, default=1.0
        Target ``KL(q || p)`` in nats; ``quantile_budget(rho)`` gives ``-log(rho)``.
    constraints : list of (callable, str, float) or None, default=None
        Further criteria ``g_j`` whose means under ``q`` are constrained:
        ``[(g, "<=", c), (g2, ">=", c2), (g3, "==", c3)]``, each ``g`` called like
        ``criterion``. The fit then learns ``q ∝ p exp(beta f + sum_j lambda_j g_j)``,
        the distribution with the largest ``E_q f`` within the budget that meets them:
        beta meets the budget and one Lagrange multiplier per constraint its
        constraint, both steered while the flow trains. A constraint counts as met when
        ``E_q g`` is within ``tol * sd_p g`` (or 2 standard errors) of it; one
        that no distribution within the budget meets raises a ``ValueError`` naming it.
    n_components : int or "auto", default="auto"
        Number ``K`` of components of the Gaussian mixture the flow starts from: a tilt
        that is a union of regions (the peak of a curve reached at one of many hours)
        needs one per region it keeps.
        ``"auto"`` is ``min(32, 8 + d // 4)`` for a ``d``-dimensional flow space, and
        for a mixture base with ``K`` components (a Gaussian mixture, a KDE) at least
        ``min(32, K d)``.
    covariance_type : {"auto", "full", "diagonal"}, default="auto"
        Covariances of the mixture's components. A tilt of a correlated base in
        instance space (a full-covariance ``GaussianMixture``) has correlated
        components that diagonal ones approximate poorly (``E_q f`` too low, and more
        steps do not help); a latent space is ``N(0, I)``.
        ``"auto"`` is ``"full"`` for bases tuned in instance space, which the flow then
        sees whitened by the base's mean and covariance (``base_``), and
        ``"diagonal"`` for latent ones.
    flow : {"realnvp", "nsf", "maf"}, default="realnvp"
        Family of the layers on top of the mixture (see :mod:`sktilt.tilt`).
    n_transforms : int, default=0
        Number of coupling / autoregressive layers on top of the mixture (0: ``q`` is the
        mixture). Layers reshape components beyond Gaussians, at a cost per step and per
        sample.
    hidden_layer_sizes : tuple of int, default=(64, 64)
        Hidden sizes of the layers' hyper-networks.
    init : {"likelihood", "moments"}, default="likelihood"
        Start of the flow. ``"moments"`` clusters the reference base samples, resampled
        in proportion to their tilt weights, into the mixture's components.
        ``"likelihood"`` then also fits the flow to those weighted samples by maximum
        likelihood for a few steps (forward KL, which covers every mode the samples see)
        before the reverse-KL steps, which seek modes.
    gradient : {"auto", "pathwise", "score"}, default="auto"
        Estimator of the criterion's gradient; ``"auto"`` detects differentiability.
    batch_size : int, default=256
        Samples of ``q`` per optimisation step (spread over the mixture's components).
    max_iter : int or "auto", default="auto"
        Largest number of optimisation steps of the search. Beta is updated every 25
        steps while the flow trains (see :mod:`sktilt.tilt`), and the search stops as
        soon as an evaluation meets the budget, so fits usually take far fewer.
        ``"auto"`` is ``1000 + 20 d``.
    lr : float, default=1e-2
        Adam learning rate of the flow.
    max_beta_iter : int, default=8
        Largest number of evaluations of the flow (each decides whether the budget is
        met).
    tol : float, default=0.02
        Relative tolerance on KL; the search stops once an evaluation has
        ``|KL - budget| <= max(tol * budget, 2 * standard error)``. Where ``KL`` grows
        as ``beta^2`` this pins beta within ``tol / 2``.
    n_eval_samples : int, default=32768
        Samples of ``q`` for each evaluation (KL and the moments of f).
    n_reference_samples : int or "auto", default="auto"
        Samples of ``p`` for the importance-sampling reference (BTGM App. C), which
        gives the starting beta, the mixture's start and the optimality check of the
        fit. ``"auto"`` is ``100_000 (1 + d // 32)``: the check needs the top
        ``exp(-kl_budget)`` of them, and larger latents need it more.
    beta_max : float, default=1e4
        Largest beta tried; a budget not reached there is reported unreachable.
    callbacks : list of skorch callbacks or None, default=None
        Extra callbacks of the flow's skorch net, e.g.
        ``skorch.callbacks.Checkpoint(monitor="train_loss_best", ...)`` (the net has no
        validation split) or ``EarlyStopping(monitor="train_loss")``.
    device : str, default="cpu"
        Torch device of the flow and the frozen decoder copy.
    verbose : int, default=0
        0 is silent; 1 prints one line per beta iteration with a progress bar over
        the optimisation steps; 2 adds skorch's per-epoch log.
    random_state : int, RandomState instance or None, default=None
        Seeds the flow's initialisation and all sampling during ``fit``, and the
        default sampling of :meth:`sample`.
    hidden_features : tuple of int
        .. deprecated:: 0.2
           Use ``hidden_layer_sizes``; removed in 0.3.
    n_steps : int or "auto"
        .. deprecated:: 0.2
           Use ``max_iter``; removed in 0.3.

    Attributes
    ----------
    beta_ : float
        Selected inverse temperature.
    kl_ : float
        Monte-Carlo estimate of ``KL(q_beta || p)`` (latent space for latent bases, an
        upper bound on the instance-space KL, BTGM App. B).
    kl_se_ : float
        Its standard error.
    criterion_mean_, criterion_std_ : float
        ``E_q f`` and the standard deviation of ``f`` under ``q``.
    criterion_mean_se_ : float
        Standard error of ``criterion_mean_``.
    history_ : list of dict
        One entry per beta iteration: ``beta``, ``kl``, ``kl_se``, ``criterion_mean``,
        ``criterion_var``, ``criterion_third`` (third central moment), and the
        reference values ``reference_kl``, ``reference_criterion_mean``,
        ``reference_ess``.
    n_iter_ : int
        Number of beta iterations run.
    converged_ : bool
        Whether the KL met the budget within tolerance.
    gradient_ : {"pathwise", "score"}
        Gradient estimator used for the criterion.
    reference_ : TiltReference
        Importance-sampling reference of ``q_beta_`` from base samples.
    diagnostics_ : ImportanceDiagnostics
        How the fitted flow compares with the exact ``q_beta_``: the Pareto ``k`` of its
        importance weights, the reweighted ``E_{q_beta} f``, and the optimality check
        ``E_q f >= tail_mean`` (a :class:`~sktilt.tilt.TiltQualityWarning` when it fails
        beyond noise).
    log_partition_ : float
        Reference ``log Z(beta_) = log E_p exp(beta_ f)``.
    base_ : Base
        The validated base (frozen decoder copy), whitened for a full-covariance
        mixture (:class:`~sktilt.tilt._bases.WhitenedBase`; the flow's space).
    base_sampler_ : estimator
        The fitted base estimator (the clone fitted on ``X``, or ``base_sampler``
        itself when it came fitted); only for estimator bases. ``base_estimator_`` is
        the same object.
    net_ : StepNet
        The skorch net holding the fitted flow (``net_.module_``, a zuko flow whose
        ``net_.module_()`` is the distribution ``q``) and its history.
    flow_ : TiltFlow
        The fitted flow (``net_.module_``).
    start_flow_ : TiltFlow
        The flow as it started the beta search (see ``init``): the defensive
        component of :meth:`tail_probability` and :meth:`sample_tail`.
    n_features_in_ : int
        Number of features of ``X`` seen in ``fit`` (instance-space bases).
    constraint_multipliers_ : ndarray of shape (n_constraints,)
        The multipliers ``lambda_j`` of the fitted ``q ∝ p exp(beta f + lambda . g)``
        (with ``constraints`` only).
    constraint_values_, constraint_values_se_ : ndarray of shape (n_constraints,)
        ``E_q g_j`` and their standard errors (with ``constraints`` only).

    See Also
    --------
    sktilt.quantile_budget : KL budget for a top-rho tail.
    sktilt.BoltzmannPath : one fit for the whole path of budgets.

    Examples
    --------
    >>> import torch
    >>> from sktilt import BoltzmannTuner, LatentSampler
    >>> from sktilt import LinearCriterion
    >>> base = LatentSampler(torch.nn.Identity(), latent_dim=2)
    >>> tuner = BoltzmannTuner(base, LinearCriterion([1.0, 0.0]), kl_budget=0.5,
    ...                        max_iter=100, random_state=0).fit()
    >>> round(tuner.beta_, 1)  # exact: sqrt(2 * 0.5) / |a| = 1
    1.0
    """

    _parameter_constraints: dict = {
        "base_sampler": "no_validation",
        "criterion": [callable],
        "kl_budget": [Interval(Real, 0, None, closed="neither")],
        "constraints": [list, None],
        "n_components": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "covariance_type": [StrOptions({"auto", "full", "diagonal"})],
        "flow": [StrOptions(set(FLOWS))],
        "n_transforms": [Interval(Integral, 0, None, closed="left")],
        "hidden_layer_sizes": ["array-like", tuple],
        "init": [StrOptions({"likelihood", "moments"})],
        "gradient": [StrOptions({"auto", "pathwise", "score"})],
        "batch_size": [Interval(Integral, 2, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "max_beta_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_eval_samples": [Interval(Integral, 2, None, closed="left")],
        "n_reference_samples": [Interval(Integral, 2, None, closed="left"),
                                StrOptions({"auto"})],
        "beta_max": [Interval(Real, 0, None, closed="neither")],
        "callbacks": [list, None],
        "device": [str, torch.device],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
        "hidden_features": ["array-like", tuple, Hidden(StrOptions({DEPRECATED}))],
        "n_steps": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"}),
                    Hidden(StrOptions({DEPRECATED}))],
    }

    def __init__(
        self,
        base_sampler: Any,
        criterion: CriterionFunction,
        *,
        kl_budget: float = 1.0,
        constraints: list[ConstraintSpec] | None = None,
        n_components: int | Literal["auto"] = "auto",
        covariance_type: Literal["auto", "diagonal", "full"] = "auto",
        flow: Literal["realnvp", "maf", "nsf"] = "realnvp",
        n_transforms: int = 0,
        hidden_layer_sizes: Sequence[int] = (64, 64),
        init: Literal["likelihood", "moments"] = "likelihood",
        gradient: Literal["auto", "pathwise", "score"] = "auto",
        batch_size: int = 256,
        max_iter: int | Literal["auto"] = "auto",
        lr: float = 1e-2,
        max_beta_iter: int = 8,
        tol: float = 0.02,
        n_eval_samples: int = 32768,
        n_reference_samples: int | Literal["auto"] = "auto",
        beta_max: float = 1e4,
        callbacks: list | None = None,
        device: Device = "cpu",
        verbose: int = 0,
        random_state: RandomStateLike = None,
        hidden_features: Sequence[int] | Literal["deprecated"] = DEPRECATED,
        n_steps: int | Literal["auto", "deprecated"] = DEPRECATED,
    ) -> None:
        self.base_sampler = base_sampler
        self.criterion = criterion
        self.kl_budget = kl_budget
        self.constraints = constraints
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.flow = flow
        self.n_transforms = n_transforms
        self.hidden_layer_sizes = hidden_layer_sizes
        self.init = init
        self.gradient = gradient
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.lr = lr
        self.max_beta_iter = max_beta_iter
        self.tol = tol
        self.n_eval_samples = n_eval_samples
        self.n_reference_samples = n_reference_samples
        self.beta_max = beta_max
        self.callbacks = callbacks
        self.device = device
        self.verbose = verbose
        self.random_state = random_state
        self.hidden_features = hidden_features
        self.n_steps = n_steps

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X=None, y=None) -> BoltzmannTuner:
        """Fit the flow and select beta so that ``KL(q_beta || p) ≈ kl_budget``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), default=None
            Training data of the base model when ``base_sampler`` is an estimator to
            fit; otherwise ignored (validated if given).
        y : None
            Ignored.

        Returns
        -------
        self : BoltzmannTuner
        """
        with torch_threads():  # the reference draws and beta search too, not only training
            device = check_device(self.device)
            hidden, max_iter = self._renamed_params()
            constraints = check_constraints(self.constraints)
            base, base_estimator = self._resolve_base(X)
            seed = draw_seed(self.random_state)
            budget = float(self.kl_budget)
            with torch_seeded(seed):
                base = self._flow_space(base)
                eps_ref, f_ref = draw_base(base, self.criterion, self._n_reference(base), device)
                steering = (self._steering(base, constraints, eps_ref, f_ref, budget, device)
                            if constraints else None)
                criterion = self.criterion if steering is None else steering.lagrangian
                gradient = self._detect_gradient(base, criterion, device)
                h_ref = f_ref if steering is None else steering.reference(f_ref)
                beta = (starting_beta(h_ref, budget, float(self.beta_max))
                        if steering is None or not steering.start.resolved
                        else min(steering.start.beta, float(self.beta_max)))
                flow, beta_start = self._start_flow(base, eps_ref, h_ref, beta, device,
                                                    np.random.default_rng(seed), hidden)
                start_flow = copy.deepcopy(flow)
                max_steps = self._max_steps(base, max_iter)
                net = self._tilt_net(flow, base, criterion, gradient, device, max_steps)
                if steering is None:
                    evaluate = partial(_evaluate, net.module_, base, criterion,
                                       self.n_eval_samples, f_ref)
                else:
                    steering.draw = partial(flow_constraint_values, net.module_, base,
                                            steering.lagrangian)
                    evaluate = partial(_evaluate_constrained, net.module_, base, steering,
                                       self.n_eval_samples, f_ref)
                result = run_budget_search(
                    net, evaluate, f_ref, budget, beta, max_steps=max_steps,
                    min_steps=min(self._min_steps_per_dim(base) * base.dim, max_steps),
                    max_evaluations=self.max_beta_iter, tol=self.tol,
                    beta_max=float(self.beta_max), start_beta=beta_start, steering=steering,
                    log=print if self.verbose else None)
                self._set_fitted(base, base_estimator, _Fitted(gradient, net, start_flow,
                                                               result, f_ref, steering))
            return self

    def _steering(self, base: Base, constraints, eps_ref, f_ref, budget: float, device
                  ) -> MultiplierSteering:
        """The multipliers' start (the exact constrained tilt on the reference samples)
        and their steering; raises if the budget cannot meet the constraints."""
        lagrangian = Lagrangian(self.criterion, constraints, np.zeros(len(constraints)))
        g_ref = constraint_values_at(lagrangian, base, eps_ref, device)
        start = solve_reference(f_ref, g_ref, budget, constraints, tol=self.tol)
        lagrangian.nu[:] = start.nu
        scales = np.maximum(g_ref.std(0), 1e-12)
        return MultiplierSteering(lagrangian, scales, float(self.tol), None, g_ref, start)

    def _n_reference(self, base: Base) -> int:
        return (_AUTO_REFERENCE * (1 + base.dim // 32) if self.n_reference_samples == "auto"
                else int(self.n_reference_samples))

    def _renamed_params(self) -> tuple[tuple[int, ...], int | str]:
        """``hidden_layer_sizes`` and ``max_iter``, or their deprecated old names
        (``hidden_features``, ``n_steps``) where set, with a ``FutureWarning``."""
        hidden = renamed(self, "hidden_layer_sizes", "hidden_features")
        max_iter = renamed(self, "max_iter", "n_steps")
        return check_hidden_units(hidden, "hidden_layer_sizes"), max_iter

    @staticmethod
    def _max_steps(base: Base, max_iter: int | str) -> int:
        return (_AUTO_STEPS + _AUTO_STEPS_PER_DIM * base.dim if max_iter == "auto"
                else int(max_iter))

    def _resolve_base(self, X) -> tuple[Base, object]:
        base_sampler, base_estimator = self.base_sampler, None
        if hasattr(base_sampler, "fit") and _is_estimator_base(base_sampler):
            if X is not None:
                X = validate_data(self, X, dtype=None)
            try:
                check_is_fitted(base_sampler)
                base_estimator = base_sampler
            except Exception:  # NotFittedError, or a custom estimator's own check
                if X is None:
                    raise ValueError(
                        f"base_sampler {type(base_sampler).__name__} is not fitted: pass "
                        "training data to fit(X), or fit it first."
                    ) from None
                base_estimator = clone(base_sampler).fit(X)
        elif X is not None:
            validate_data(self, X, allow_nd=True)
        base = as_base(base_sampler if base_estimator is None else base_estimator)
        if not base.latent and X is None:
            self.n_features_in_ = base.dim
        return base.to(self.device), base_estimator

    def _detect_gradient(self, base: Base, criterion, device) -> str:
        if not base.differentiable:
            if self.gradient == "pathwise":
                raise ValueError(
                    f"gradient='pathwise' needs a differentiable base log-density, but "
                    f"base_sampler {type(self.base_sampler).__name__} is evaluated in "
                    "numpy: use gradient='auto' (score-function gradients) or a base "
                    "with a torch form (GaussianMixture, gaussian KernelDensity, a torch "
                    "Distribution).")
            return "score"
        z = base.sample(8, device=device).requires_grad_(True)
        return detect_gradient(criterion, base.to_instance(z), self.gradient)

    def _start_flow(self, base: Base, eps_ref, f_ref, beta: float, device, rng,
                    hidden_layer_sizes: tuple[int, ...]) -> tuple[TiltFlow, float]:
        """The flow before the search (see ``init``), and the beta it was fitted at."""
        flow = build_flow(base.dim, components=self._components(base),
                          flow=self.flow, covariance_type=self._covariance_type(base),
                          transforms=self.n_transforms,
                          hidden_features=hidden_layer_sizes).to(device)
        # At a beta the reference samples resolve well, so that the start does not
        # memorise a handful of them.
        resolvable = resolvable_beta(f_ref, min_ess=_START_MIN_ESS)
        beta_start = beta if resolvable is None else min(beta, resolvable)
        init_mixture(flow, eps_ref, f_ref, beta_start, rng)
        if self.init == "likelihood":
            samples, probs = tilted_samples(eps_ref, f_ref, beta_start, device)
            self._net(flow, WeightedLikelihood(self.batch_size), device, user=False).run(
                _LIKELIHOOD_STEPS, samples=samples, probs=probs)
        return flow, beta_start

    def _components(self, base: Base) -> int:
        k = components_for(base.dim, self.n_components)
        if self.n_components == "auto" and base.components is not None:
            # A tilt of a K-component mixture has K components for a linear f, up to
            # K d for f = max (each component splits by the coordinate that is largest);
            # a KDE's is a reweighted bump per training point (the user guide has the
            # measured effect on f = max).
            k = max(k, min(_MAX_MIXTURE_COMPONENTS, base.components * base.dim))
        return k

    def _flow_space(self, base: Base) -> Base:
        # A full-covariance family is affine invariant: whitening the base changes what
        # the optimiser sees (steps in units of the base's spread in every direction),
        # not what the family can represent.
        if self._covariance_type(base) == "full" and not isinstance(base, WhitenedBase):
            return WhitenedBase.from_samples(base)
        return base

    def _min_steps_per_dim(self, base: Base) -> int:
        return (_MIN_STEPS_PER_DIM_FULL if isinstance(base, WhitenedBase)
                else _MIN_STEPS_PER_DIM)

    def _covariance_type(self, base: Base) -> str:
        if self.covariance_type != "auto":
            return self.covariance_type
        return "diagonal" if base.latent else "full"

    def _tilt_net(self, flow: TiltFlow, base: Base, criterion, gradient: str, device,
                  max_steps: int) -> StepNet:
        objective = TiltObjective(base, criterion, self.batch_size,
                                  pathwise=gradient == "pathwise")
        return self._net(flow, objective, device, user=True, max_steps=max_steps)

    def _net(self, flow, objective, device, *, user: bool, max_steps: int = 0) -> StepNet:
        callbacks = [("lr_decay", CosineDecay(_FINAL_LR_FRACTION))] if not user else []
        if user:
            callbacks += [clone(cb) if hasattr(cb, "get_params") else copy.deepcopy(cb)
                          for cb in (self.callbacks or [])]
        if self.verbose and user:
            callbacks.append(EpochProgress(total=-(-max_steps // CHUNK),
                                           desc="BoltzmannTuner", across_runs=True))
        return StepNet(flow, objective, optimizer=torch.optim.Adam, lr=self.lr,
                       optimizer__fused=True if str(device) == "cpu" else None,
                       device=str(device), verbose=int(self.verbose > 1),
                       callbacks=callbacks).initialize()

    def _set_fitted(self, base: Base, base_estimator, fitted: _Fitted) -> None:
        budget = float(self.kl_budget)
        best = fitted.result.kept(budget, "BoltzmannTuner")
        fitted.net.module_.load_state_dict(best.state)
        stats = best.stats
        self.base_ = base
        if base_estimator is not None:
            self.base_sampler_ = base_estimator
            self.base_estimator_ = base_estimator  # the earlier name, kept as an alias
        self.gradient_ = fitted.gradient
        self.net_ = fitted.net
        self.flow_ = fitted.net.module_
        self.start_flow_ = fitted.start_flow
        self.history_ = fitted.result.records()
        self.n_iter_ = len(self.history_)
        self.converged_ = fitted.result.converged
        self.beta_ = stats.beta
        self.kl_, self.kl_se_ = stats.kl, stats.kl_se
        self.criterion_mean_ = stats.criterion_mean
        self.criterion_mean_se_ = stats.criterion_mean_se
        self.criterion_std_ = math.sqrt(max(stats.criterion_var, 0.0))
        h_ref = fitted.f_ref
        for name in ("constraint_multipliers_", "constraint_values_", "constraint_values_se_",
                     "_exponent"):  # from an earlier constrained fit
            self.__dict__.pop(name, None)
        if fitted.steering is not None:
            self._set_constraints_fitted(fitted.steering, best)
            h_ref = fitted.f_ref + fitted.steering.g_ref @ best.constraints.nu
        self.reference_ = tilted_moments(h_ref, self.beta_)
        self.log_partition_ = self.reference_.log_partition
        self.diagnostics_ = best.diagnostics
        self._reference_f = fitted.f_ref  # the crude check of tail_probability
        fitted.result.warn(budget, budget_name="kl_budget",
                           limits=f"max_beta_iter={self.max_beta_iter}",
                           remedy="max_beta_iter / max_iter",
                           underfit_fix=self._underfit_fix(base))

    def _set_constraints_fitted(self, steering: MultiplierSteering, best) -> None:
        # The flow's statistics are of h = f + nu . g; f's own and g's come from the
        # evaluation, at the multipliers the kept flow was trained with.
        c = best.constraints
        self.criterion_mean_ = c.criterion_mean
        self.criterion_mean_se_ = c.criterion_mean_se
        self.criterion_std_ = math.sqrt(max(c.criterion_var, 0.0))
        self.constraint_multipliers_ = self.beta_ * c.nu
        self.constraint_values_, self.constraint_values_se_ = c.means, c.ses
        self._exponent = Lagrangian(self.criterion, steering.constraints, c.nu.copy())
        unmet = steering.unmet(c)
        if unmet:
            warn_at_caller(
                "The fitted tilt does not meet " + "; ".join(unmet) + ". Raise max_iter or "
                "max_beta_iter, or check that the constraints are compatible with "
                f"kl_budget={float(self.kl_budget):.4g}.", ConvergenceWarning)

    def _underfit_fix(self, base: Base) -> str:
        # What fixes an under-fit in the measured cases: correlated components in
        # instance space need full covariances (more steps did not help); beyond that,
        # more modes (n_components) or non-Gaussian components (n_transforms).
        if not base.latent and not self.flow_.full_covariance:
            return ("The base is tuned in instance space with diagonal components: set "
                    "covariance_type='full' (or 'auto').")
        return ("Raise n_components (one per mode of the tilt) or n_transforms (e.g. 2: "
                "non-Gaussian or curved modes).")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.non_deterministic = False
        return tags
