"""Adversarial variational optimization (AVO) of black-box simulators: the estimator.

:class:`AVOSimulatorFitter` implements Algorithm 1 of Louppe & Cranmer: a critic ``d``
learns to tell observed data from data simulated with parameters ``theta ~ q_psi``
(WGAN-GP, Eq. 5, or R1), and the proposal ``q_psi`` follows the score-function
gradient (Eq. 12) of ``U_g = E_q[L_g] + gamma H(q_psi)`` (Eq. 15), which needs the
simulator only in forward mode. ``fit`` is a loop of named steps (simulate, proposal
step, critic step), then the finished-fit phase of ``_finish`` (polish, fitted
attributes, self-check); the math lives in the sibling private modules, the parts'
specs in ``_parts`` (critic, refinement), ``_proposals``/``_flow`` and
:mod:`sktilt.simulation`, and the translation of the 0.1 keywords in ``_old_keywords``.
"""

from __future__ import annotations

__all__ = ["AVOSimulatorFitter", "SimulationFailureWarning"]

import copy
from collections.abc import Callable
from numbers import Integral, Real
from typing import Any, Literal

import numpy as np
import torch
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, clone
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import validate_data

from .._config import torch_threads
from .._persistence import VersionedStateMixin
from .._progress import ProgressLine, format_count
from .._random import draw_seed, torch_generator, torch_seeded
from .._training import DivergenceError, EpochProgress
from .._simulator import Simulator
from .._typing import RandomStateLike
from .._utils import to_numpy
from ..metrics import MAX_PER_SAMPLE_MARGINAL
from ..simulation import (
    FailureLog,
    SimulationError,
    SimulationFailureWarning,
    SimulationResult,
    check_simulator_configuration,
    simulate,
)
from ._budget import AUTO_BATCH, plan_simulations
from ._critics import generator_values, run_critic
from ._finish import check_fit, finalize, polish_point, polish_samples, polishes
from ._gaussian import GaussianProposalModule
from ._old_keywords import OLD_KEYWORDS, UNSET, translate
from ._parts import Critic, MomentRefinement
from ._proposals import GaussianProposal, Proposal
from ._resolution import ScaleFloor
from ._simulated import SimulatedModelMixin
from ._step import (
    FitState,
    ProposalObjective,
    SimulatedBatch,
    annealed_gamma,
    average_iterate,
    draw_and_simulate,
    proposal_net_for,
    tightening_fraction,
)

# Critic steps before the first proposal update, in units of critic.n_steps: the critic
# first learns the initial proposal's data.
_WARM_UP_ROUNDS = 5
# The polish pools the simulations of the updates from this fraction of the fit on.
_POLISH_FROM = 0.75
# A moment step moves the location by at most this many proposal standard deviations
# (Mahalanobis): a guard against an early, poorly determined regression.
_MAX_MOMENT_SHIFT = 2.0


class AVOSimulatorFitter(VersionedStateMixin, SimulatedModelMixin, BaseEstimator):
    """Fit the parameters of a black-box simulator to observations with AVO.

    A proposal ``q_psi(theta)`` over the simulator's parameters is moved until data
    simulated with ``theta ~ q_psi`` cannot be told from the observations by an
    adversarial critic (Louppe & Cranmer, Algorithm 1). The simulator is only run
    forward, in parallel with joblib, and never differentiated.

    The fitter is made of parts, each a scikit-learn-style spec that the fit never
    modifies and whose parameters a grid search reaches as ``part__name``:

    * ``simulator`` -- :class:`~sktilt.simulation.Simulator`: the function and how to
      run it (vectorized, timeout, failures, common random numbers);
    * ``proposal`` -- :class:`~sktilt.GaussianProposal` or :class:`~sktilt.FlowProposal`:
      the starting distribution and its optimisation (``lr``, ``baseline``,
      ``averaging``, ``callbacks``; the floor ``min_scale`` of a Gaussian's spread);
    * ``critic`` -- :class:`~sktilt.avo.Critic`: network, loss, optimiser, steps per
      update, device;
    * ``refinement`` -- :class:`~sktilt.avo.MomentRefinement`: the moment step and the
      final polish of a point fit.

    Parameters
    ----------
    simulator : Simulator or callable
        The simulator; a callable ``f(theta, random_state) -> x`` means
        ``Simulator(f)`` (one ``theta`` of shape ``(n_params,)`` per call, no timeout,
        failed simulations dropped). Must be picklable (module level, or an object) for
        process-based joblib backends.
    proposal : GaussianProposal or FlowProposal
        Initial proposal ``q_psi``, a spec whose ``build()`` makes the torch module that
        is trained, with the settings of its optimisation. A
        :class:`~sktilt.FlowProposal` can hold several modes, ridges or a whole
        population of parameters (a source distribution).
    gamma : float, default=1.0
        Entropy weight of Eq. 15: ``U_g = E[L_g] + gamma H(q)`` is minimised, so
        ``gamma > 0`` tightens the proposal around a point estimate; ``gamma = 0``
        lets it keep the spread that best matches the data (with a
        :class:`~sktilt.FlowProposal` and one parameter per observation: the source
        distribution); ``gamma < 0`` rewards entropy, the most spread-out proposal
        consistent with the data (maximum-entropy source, as in Sourcerer). The
        weight is annealed from 0 quadratically (``gamma (t / max_iter)^2``): a
        proposal tightened before its location arrives freezes. It is in units of
        the critic's values, which are Lipschitz in the standardised data.
    summary : transformer or None, default=None
        Fitted (a clone) on the observations and applied to observed and simulated
        data alike before the critic: summary statistics, the sklearn way.
    critic : Critic or None, default=None
        The adversarial critic; ``None`` means ``Critic()``. ``set_params(critic__lr=...)``
        works on the default too (it sets a fresh ``Critic()`` first).
    refinement : MomentRefinement, "auto" or None, default="auto"
        The moment step and final polish of a point fit. ``"auto"``:
        ``MomentRefinement()`` for a point fit (a :class:`~sktilt.GaussianProposal`
        with ``gamma > 0``), none otherwise. ``None``: the paper's Algorithm 1, no
        moment step and no polish. A :class:`~sktilt.avo.MomentRefinement` outside a
        point fit raises a ``ValueError`` at ``fit``. ``set_params(refinement__...)`` on
        ``"auto"`` or ``None`` sets a fresh ``MomentRefinement()`` first.
    max_iter : int, default=300
        Proposal updates.
    batch_size : int or None, default=None
        Simulations per update. ``None``: 128 while the proposal travels (the first half
        of the updates), then growing geometrically over the third quarter with the
        observations (to ``n_obs // 10``, at most 1 500, and at least 1 000 in a
        polished fit, whose polish regresses the last quarter's simulations). An
        integer is every update's batch. Also the critic's mini-batch size (128 for
        ``None``) unless the critic sets its own.
    max_simulations : int or None, default=None
        Budget of simulations for the whole fit: warm-up, updates, polish and
        self-check, failed simulations included. The self-check takes at most a tenth,
        a polished fit keeps 30 % of the rest for its polish, and the updates take what
        remains: the automatic batch schedule shrinks (its final batch first, then every
        batch down to 32, then the number of updates); a ``batch_size`` you set is kept
        and the number of updates shrinks (``n_iter_``). ``None``: the automatic schedule
        in full, the polish's own needs and a check as large as the observations (up to
        10 000). A budget with room for fewer than 4 updates raises a ``ValueError``.
    n_jobs : int or None, default=None
        Simulation workers for :class:`joblib.Parallel`; ``None`` defers to
        :func:`joblib.parallel_config` (e.g. a dask backend).
    verbose : int, default=0
        A progress bar when > 0. At 0 nothing is logged, but a fit still running after
        10 s shows one self-overwriting status line on stderr (``"AVO: update 12/40,
        8 320 of 20 000 simulations, 14 s"``), erased when it ends, where stderr is an
        interactive terminal (never in logs, CI, notebooks or workers).
    random_state : int, RandomState or None, default=None
        Seeds everything; results do not depend on ``n_jobs`` or the backend.
    **deprecated_params
        The keywords of sktilt 0.1 (``vectorized``, ``n_critic``, ``critic_lr``,
        ``min_scale``, ``moment_step``, ``validation_fraction``, ...), moved to their
        new places with a ``FutureWarning`` that names the new spelling; removed in
        sktilt 0.3. ``set_params`` takes them too.

    Attributes
    ----------
    theta_ : ndarray of shape (n_params,)
        Point estimate: ``proposal_.median()`` (the proposal's mean when unbounded).
    proposal_ : GaussianProposal or FlowProposal
        The fitted proposal.
    critic_ : StepNet
        The trained critic (a skorch net; ``critic_.module_`` is the critic's MLP).
    proposal_net_ : StepNet
        The skorch net that trained the proposal (its history and callbacks).
    summary_ : transformer or None
    history_ : list of dict
        Per update: ``loc`` and ``scale`` (the mean and standard deviations of the
        proposal's unconstrained variable), ``theta``, ``entropy``, ``critic_loss``,
        ``critic_estimate`` (the Wasserstein estimate ``E d(x_obs) - E d(x_sim)``),
        ``n_simulations``, ``n_failed``, ``lr``, ``scale_floor``, and in the second
        half of a refined fit ``moment_shift`` (the moment step, units of ``z``;
        ``None`` where it does not apply).
    scale_floor_ : ndarray of shape (n_params,) or None
        The floor the proposal's ``min_scale`` put on its standard deviations at the
        last update (``inf`` where the parameter showed no effect on the features,
        which keeps its spread); ``None`` without a floor.
    polish_shift_ : ndarray of shape (n_params,) or None
        How far the polish moved the location, in units of the unconstrained
        parameters; ``None`` when there was no polish.
    two_sample_ : TwoSampleTest or None
        Energy-distance permutation test (:func:`sktilt.metrics.energy_test`) of up to
        2 000 observations (``X_val`` when given) against as many simulations from
        ``proposal_``; ``None`` when none succeeded.
    marginal_test_ : TwoSampleTest or None
        Kolmogorov-Smirnov test of each feature (:func:`sktilt.metrics.marginal_ks_test`)
        on up to 10 000 observations and as many simulations: blind to dependence, but
        with the power to see a misfit of spread or shape.
    classifier_test_ : TwoSampleTest or None
        For two or more features, a classifier two-sample test
        (:func:`sktilt.metrics.classifier_test`): an MLP trained on half of up to 5 000
        observations and as many simulations, its held-out accuracy with an exact
        p-value. It sees dependence and shape in several dimensions. ``None`` for one
        feature.
    moment_test_ : MomentCheck or None
        For a polished point fit: the check simulations at ``theta_`` against the
        observations' features, projected on the parameters' directions (a ``chi^2``
        test of whether ``theta_`` is where the polish's local model put the features'
        root; ``step`` is the one step toward it, in standard errors). ``None`` for
        other fits.
    location_drift_ : ndarray of shape (n_params,)
        How far the proposal's location travelled over the last quarter of the
        updates, in final standard deviations.
    unresolved_parameters_ : list of int
        Parameters whose effect on the data's distribution the resolution estimate
        never saw (``scale_floor_`` infinite): their spread was left as it started.
    converged_ : bool
        Every check passed: no two-sample test, nor the moment test of a polished
        point fit, rejects at the 1 % level; no location
        drift above 1 (unpolished fits: a polish re-anchors the point) and, for a polished
        fit, a polish that ended inside its window; and for a point fit every parameter
        identified (finite ``standard_errors_``). Otherwise a
        :class:`~sktilt.FitQualityWarning` (:class:`~sktilt.FitConvergenceWarning` for
        a fit still moving) says what went wrong. The tests' power grows with the
        observations they compare: a fit a few standard errors off a large data set
        can pass.
    standard_errors_ : ndarray of shape (n_params,) or None
        Standard errors of ``theta_`` (parameters' units) for a point fit: the
        efficient method-of-simulated-moments sandwich of the polish's feature model,
        simulation noise included (user guide, "Standard errors"); where the polish
        had too few simulations to see a parameter, the sandwich of the fit's running
        regression on fewer features (wider); ``inf`` for a parameter neither
        identifies. ``None`` for a population fit
        (``gamma <= 0``) or a :class:`~sktilt.FlowProposal`.
    covariance_ : ndarray of shape (n_params, n_params) or None
        Their covariance (``inf`` on the diagonal and NaN beside it for unidentified
        parameters).
    n_iter_ : int
    n_simulations_ : int
        Simulations run, failed ones and the check's included.
    n_failed_simulations_ : int
    failed_parameters_ : ndarray of shape (n_failed, n_params)
    failure_messages_ : list of str
    n_features_in_ : int

    Notes
    -----
    Each simulated batch is used twice: first to estimate the proposal gradient with
    the current critic, then as the simulated mini-batch pool of the next
    ``critic.n_steps`` critic steps, which halves the simulations of Algorithm 1. The
    critic therefore lags the proposal by one update; a warm-up trains it on the
    initial proposal first.

    The first simulation of a fit (the first call of a vectorized simulator) runs in
    the calling process before any worker starts and before the critic trains: a
    simulator whose output does not have the observations' ``n_features`` values stops
    the fit at once with a ``ValueError``. It is the warm-up's first simulation, with its
    seed, so the results do not depend on it (nor on ``n_jobs``).

    Errors raised mid-fit (:class:`~sktilt.simulation.SimulationError`) carry what
    was computed: ``err.history``, ``err.proposal`` (the last proposal) and
    ``err.failed_parameters``.
    """

    _parameter_constraints: dict = {
        "simulator": [callable],
        "proposal": [HasMethods(["build", "fitted"])],
        "gamma": [Real],
        "summary": [HasMethods(["fit", "transform"]), None],
        "critic": [Critic, None],
        "refinement": [MomentRefinement, StrOptions({"auto"}), None],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 2, None, closed="left"), None],
        "max_simulations": [Interval(Integral, 1, None, closed="left"), None],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    }

    def __init__(self, simulator: Simulator | Callable[..., ArrayLike], proposal: Proposal,
                 *, gamma: float = 1.0, summary: Any = None, critic: Critic | None = None,
                 refinement: MomentRefinement | Literal["auto"] | None = "auto",
                 max_iter: int = 300, batch_size: int | None = None,
                 max_simulations: int | None = None, n_jobs: int | None = None,
                 verbose: int = 0, random_state: RandomStateLike = None,
                 **deprecated_params: Any) -> None:
        self.simulator = simulator
        self.proposal = proposal
        self.gamma = gamma
        self.summary = summary
        self.critic = critic
        self.refinement = refinement
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.max_simulations = max_simulations
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.random_state = random_state
        if deprecated_params:  # sktilt 0.1's keywords, until 0.3
            changes, validation_fraction = translate(
                self.get_params(deep=False), deprecated_params)
            for key, value in changes.items():
                setattr(self, key, value)
            if validation_fraction is not UNSET:
                self._validation_fraction = validation_fraction

    def set_params(self, **params) -> AVOSimulatorFitter:
        """Set the parameters, nested ones (``critic__lr``) included.

        A nested parameter of a part left at its default (``critic=None``,
        ``refinement="auto"`` or ``None``, a plain callable as ``simulator``) first sets
        that part to a fresh default spec (``Critic()``, ``MomentRefinement()``,
        ``Simulator(simulator)``). sktilt 0.1's keywords are translated with a
        ``FutureWarning``, as in the constructor.

        Returns
        -------
        self
        """
        old = {key: params.pop(key) for key in list(params) if key in OLD_KEYWORDS}
        if old:
            current = {**self.get_params(deep=False),
                       **{k: v for k, v in params.items() if "__" not in k}}
            changes, validation_fraction = translate(current, old,
                                                     owner=type(self).__name__)
            params.update(changes)
            if validation_fraction is not UNSET:
                self._validation_fraction = validation_fraction
        for part in {key.split("__", 1)[0] for key in params if "__" in key}:
            if part not in params:
                default = self._default_part(part)
                if default is not None:
                    setattr(self, part, default)
        return super().set_params(**params)

    def _default_part(self, part: str):
        """A fresh spec for ``part`` where it is left at a default that is not one."""
        if part == "critic" and self.critic is None:
            return Critic()
        if part == "refinement" and not isinstance(self.refinement, MomentRefinement):
            return MomentRefinement()
        if part == "simulator" and not isinstance(self.simulator, Simulator):
            return Simulator(self.simulator)
        return None

    def __sklearn_clone__(self):
        new = super().__sklearn_clone__()
        if hasattr(self, "_validation_fraction"):  # deprecated, kept until 0.3
            new._validation_fraction = self._validation_fraction
        return new

    # ------------------------------------------------------------ the parts
    def _simulator_spec(self) -> Simulator:
        """``simulator`` as a :class:`~sktilt.simulation.Simulator`."""
        return self.simulator if isinstance(self.simulator, Simulator) else Simulator(
            self.simulator)

    def _critic_spec(self) -> Critic:
        """``critic``, ``Critic()`` for ``None``."""
        return Critic() if self.critic is None else self.critic

    def _refinement_spec(self) -> MomentRefinement | None:
        """``refinement`` with ``"auto"`` resolved: MomentRefinement() for a point fit."""
        if isinstance(self.refinement, str):  # "auto"
            point_fit = self.gamma > 0 and isinstance(self.proposal, GaussianProposal)
            return MomentRefinement() if point_fit else None
        return self.refinement

    # --------------------------------------------------------------------- fit
    def fit(self, X, y=None, *, X_val=None) -> AVOSimulatorFitter:
        """Fit the proposal to observations ``X`` of shape (n_obs, n_features).

        Parameters
        ----------
        X : array-like of shape (n_obs, n_features)
            iid observations (``X_obs``); finite, 2-D.
        y : None
            Ignored.
        X_val : array-like of shape (n_val, n_features) or None, default=None
            Observations held out of the fit for its self-checks (``two_sample_``,
            ``marginal_test_``, ``classifier_test_``). ``None`` checks against ``X``:
            with a handful of parameters a fit cannot overfit them, and the fit keeps
            all the data's precision.

        Returns
        -------
        self
        """
        # torch threads: critic, proposal and the checks of the finished fit; at
        # verbose=0, a status line on a terminal once the fit has run for 10 s
        with torch_threads(), ProgressLine("AVO", active=not self.verbose) as progress:
            progress.update("preparing")
            X = self._validate_observations(X)
            X, X_check = self._split_validation(X, X_val)
            summary = None if self.summary is None else clone(self.summary).fit(X)
            state = self._initialize(X, summary, len(X if X_check is None else X_check))

            def status(phase):  # read at each refresh: the counts move within a phase
                return lambda: self._progress_status(state, phase)

            try:
                with torch_seeded(state.seed):
                    progress.update(status("warm-up"))
                    self._warm_up(state, summary)
                    for it in range(state.plan.n_updates):
                        progress.update(status(f"update {it + 1}/{state.plan.n_updates}"))
                        batch = self._simulate_step(state, summary, it=it)
                        entry = {"n_simulations": len(batch.theta),
                                 "n_failed": batch.result.n_failed}
                        if batch.features is not None:
                            entry.update(self._proposal_step(state, batch, it))
                            entry.update(self._critic_step(state, batch.features))
                        self._record_iteration(state, it, entry)
                    if state.polish is not None:
                        progress.update(status("polish"))
                    polish_point(self, state, summary)
            except SimulationError as exc:
                exc.history = state.history
                exc.proposal = clone(self.proposal).fitted(state.proposal)
                raise
            finalize(self, X, summary, state)
            progress.update(status("self-check"))
            check_fit(self, state, summary, X if X_check is None else X_check)
            return self

    @staticmethod
    def _progress_status(state: FitState, phase: str) -> str:
        """``"update 12/40, 8 320 of 20 000 simulations"``: the status line's text."""
        done, budget = state.failures.n_simulations, state.plan.max_simulations
        total = "" if budget is None else f" of {format_count(budget)}"
        return f"{phase}, {format_count(done)}{total} simulations"

    def _validate_observations(self, X) -> np.ndarray:
        self._validate_params()
        self._simulator_spec().check()
        self._critic_spec().check()
        if self.refinement is not None and not isinstance(self.refinement, str):
            self.refinement.check()
        if np.ndim(X) == 1:
            raise ValueError("X (the observations X_obs) must be 2-D of shape (n_obs, "
                             "n_features); got a 1-D array: use X.reshape(-1, 1) for a "
                             "single feature.")
        return validate_data(self, X, ensure_min_samples=2, dtype=np.float64)

    def _split_validation(self, X, X_val=None):
        """The observations of the fit and of the two-sample check: ``X_val``, or a part
        of ``X`` held out by the deprecated ``validation_fraction``, or ``X`` itself."""
        validation_fraction = getattr(self, "_validation_fraction", None)
        if X_val is not None:
            if validation_fraction is not None:
                raise ValueError("Pass either X_val to fit or the deprecated "
                                 "validation_fraction, not both.")
            return X, validate_data(self, X_val, reset=False, ensure_min_samples=2,
                                    dtype=np.float64)
        if validation_fraction is None:
            return X, None
        if not (isinstance(validation_fraction, Real) and 0 < validation_fraction < 1):
            raise ValueError("validation_fraction must be a float in (0, 1) or None, got "
                             f"{validation_fraction!r}.")
        n_check = int(round(validation_fraction * len(X)))
        if n_check < 2 or len(X) - n_check < 2:
            raise ValueError(f"validation_fraction={validation_fraction} leaves "
                             f"{n_check} of {len(X)} observations for the check; both parts "
                             "need at least 2.")
        seed = np.random.SeedSequence(draw_seed(self.random_state), spawn_key=(7,))
        order = np.random.default_rng(seed).permutation(len(X))
        return X[order[n_check:]], X[order[:n_check]]

    def _initialize(self, X, summary, n_check: int) -> FitState:
        proposal = clone(self.proposal).build()
        n_params = proposal.n_parameters
        expected = self._simulator_spec().n_parameters
        if expected is not None and expected != n_params:
            raise ValueError(f"The proposal has {n_params} parameters but the simulator "
                             f"expects n_parameters={expected}.")
        refinement = self._refinement_spec()
        if refinement is not None and (
                self.gamma <= 0 or not isinstance(proposal, GaussianProposalModule)):
            raise ValueError(f"refinement={refinement!r} refines a point fit: it needs a "
                             "GaussianProposal and gamma > 0 (got "
                             f"{type(self.proposal).__name__}, gamma={self.gamma}); use "
                             "refinement=None or 'auto'.")
        X_obs = self._features(X, summary)
        seed = draw_seed(self.random_state)
        root = np.random.SeedSequence(seed)
        theta_rng, sim_root = np.random.default_rng(root.spawn(1)[0]), root.spawn(1)[0]
        critic_spec, simulator = self._critic_spec(), self._simulator_spec()
        with torch_seeded(seed):
            critic = critic_spec.build(X_obs, default_batch_size=self.batch_size or AUTO_BATCH)
        plan = plan_simulations(
            max_iter=self.max_iter, batch_size=self.batch_size, n_obs=len(X),
            n_check=min(n_check, MAX_PER_SAMPLE_MARGINAL), polished=polishes(refinement),
            max_simulations=self.max_simulations)
        callbacks = [clone(cb) if hasattr(cb, "get_params") else copy.deepcopy(cb)
                     for cb in (getattr(self.proposal, "callbacks", None) or [])]
        if self.verbose:
            callbacks.append(EpochProgress(plan.n_updates, desc="AVO", across_runs=True))
        lr = getattr(self.proposal, "lr", "auto")
        lr = proposal.default_lr if lr == "auto" else lr
        proposal_net = proposal_net_for(
            proposal, ProposalObjective(getattr(self.proposal, "baseline", "optimal")),
            lr=lr, n_updates=plan.n_updates, callbacks=callbacks)
        min_scale = getattr(self.proposal, "min_scale", "auto")
        return FitState(seed, theta_rng, sim_root, torch_generator(seed, critic_spec.device),
                         X_obs, proposal, proposal_net, critic,
                         ScaleFloor(min_scale if proposal.floors_spread else None,
                                    n_params, X_obs.cpu().numpy()),
                         FailureLog(simulator.max_failure_fraction),
                         max(1, int(round(getattr(self.proposal, "averaging", 0.25)
                                          * plan.n_updates))),
                         polish=polish_samples(self.gamma, proposal, X_obs.cpu().numpy()),
                         plan=plan)

    def _features(self, X, summary) -> torch.Tensor:
        if summary is not None:
            X = np.asarray(summary.transform(X), dtype=np.float32)
            if X.ndim != 2 or not np.all(np.isfinite(X)):
                raise ValueError(
                    f"summary {type(summary).__name__} returned "
                    f"{'non-finite values (NaN or inf)' if X.ndim == 2 else f'shape {X.shape}'}"
                    "; it must map data to a finite 2-D array (n_samples, n_summaries).")
        return torch.as_tensor(np.asarray(X, dtype=np.float32),
                               device=self._critic_spec().device)

    def _simulate(self, thetas, seed, check_first: bool = False) -> SimulationResult:
        spec = self._simulator_spec()
        return simulate(spec.function, thetas, seed=seed, n_jobs=self.n_jobs,
                        vectorized=spec.vectorized, n_features=self.n_features_in_,
                        on_failure=spec.on_failure, timeout=spec.timeout,
                        check_first=check_first)

    def _simulate_step(self, state: FitState, summary, first: bool = False,
                       it: int = 0) -> SimulatedBatch:
        """Simulate a batch from the current proposal; feed the resolution estimate.

        The fit's very first simulation runs in this process before any worker starts
        (``simulate(check_first=True)``, part of the warm-up batch and of its seeds): an
        output of the wrong shape stops the fit at once. A first batch where every
        simulation failed is a configuration error, reported as such rather than as a
        failure rate.
        """
        batch = state.plan.warm_up if first else int(state.plan.batches[it])
        calls = []

        def simulate_batch(thetas, seed):  # common random numbers: two calls
            calls.append(seed)
            return self._simulate(thetas, seed, check_first=first and len(calls) == 1)

        thetas, result = draw_and_simulate(
            state.proposal, batch, state.theta_rng, state.sim_root.spawn(1)[0],
            simulate_batch,
            common_random_numbers=self._simulator_spec().common_random_numbers)
        if first:
            check_simulator_configuration(result, state.proposal.n_parameters,
                                          self.n_features_in_)
        state.failures.record(thetas, result)
        if result.ok.sum() < 2:
            return SimulatedBatch(thetas, result, None)
        features = self._features(result.X, summary)
        with torch.no_grad():
            z = state.proposal.to_unconstrained(torch.as_tensor(thetas[result.ok]))
        z, simulated = to_numpy(z), features.cpu().numpy()
        state.floor.observe(z, simulated)
        if (state.polish is not None and not first
                and it >= _POLISH_FROM * state.plan.n_updates):
            state.polish.add(z, simulated)
        return SimulatedBatch(thetas, result, features)

    def _warm_up(self, state: FitState, summary) -> None:
        """The critic first learns the initial proposal's data."""
        batch = self._simulate_step(state, summary, first=True)
        if batch.features is not None:
            self._critic_step(state, batch.features, rounds=_WARM_UP_ROUNDS)

    def _proposal_step(self, state: FitState, batch: SimulatedBatch, it: int) -> dict:
        """One update of Eq. 12 + 15, then the floor on the spread (``min_scale``)."""
        values = generator_values(state.critic.module_, batch.features,
                                  self._critic_spec().penalty)
        theta = torch.as_tensor(batch.theta[batch.result.ok])
        previous = state.proposal.log_scale().detach().clone()
        try:
            state.proposal_net.run(1, theta=theta, values=values,
                                   gamma=annealed_gamma(self.gamma, it, state.plan.n_updates))
        except DivergenceError:
            pass  # a degenerate batch (e.g. all-equal critic values): no update
        floor = state.floor.value()
        state.proposal.floor_spread_(floor, previous)
        fraction = (tightening_fraction(it, state.plan.n_updates) if self.gamma > 0
                    else 0.0)
        if floor is not None and fraction > 0:
            state.proposal.tighten_toward_(floor, fraction)
        entry = {"scale_floor": floor,
                 "lr": state.proposal_net.history[-1, "batches", -1].get("event_lr", np.nan)}
        refinement = self._refinement_spec()
        if refinement is not None and refinement.moment_step > 0 and it >= state.plan.n_updates / 2:
            entry["moment_shift"] = self._moment_step(state)
        return entry

    def _moment_step(self, state: FitState) -> np.ndarray | None:
        """Move the location by the refinement's ``moment_step`` of the Kalman shift (at most
        :data:`_MAX_MOMENT_SHIFT` proposal standard deviations, Mahalanobis)."""
        if state.floor.resolution is None:  # min_scale not "auto", or a flow
            return None
        module = state.proposal
        with torch.no_grad():
            loc = to_numpy(module.loc())
            L = to_numpy(module.scale_tril())
        shift = state.floor.location_shift(loc, L @ L.T)
        shift = self._refinement_spec().moment_step * shift
        length = np.linalg.norm(np.linalg.solve(L, shift))
        if length > _MAX_MOMENT_SHIFT:
            shift *= _MAX_MOMENT_SHIFT / length
        module.move_location_(torch.as_tensor(shift, dtype=module.loc_anchor.dtype))
        return shift

    def _critic_step(self, state: FitState, features: torch.Tensor, rounds: int = 1) -> dict:
        """``rounds * critic.n_steps`` critic steps on the observations vs ``features``."""
        return run_critic(state.critic, rounds * self._critic_spec().n_steps, X_obs=state.X_obs,
                          X_sim=features, generator=state.generator)

    def _record_iteration(self, state: FitState, it: int, entry: dict) -> None:
        proposal = state.proposal
        if it >= state.plan.n_updates - state.n_averaged:
            state.averaged = average_iterate(state.averaged, proposal)
        with torch.no_grad():
            entry.update(loc=to_numpy(proposal.loc()), scale=to_numpy(proposal.spread()),
                         theta=to_numpy(proposal.median()), entropy=float(proposal.entropy()))
        state.history.append(entry)
