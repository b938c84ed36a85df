"""Adversarial variational optimization (AVO) of black-box simulators: the estimator.

:class:`AVOSimulatorFitter` implements Algorithm 1 of Louppe & Cranmer: a critic ``d``
learns to tell observed data from data simulated with parameters ``theta ~ q_psi``
(WGAN-GP, Eq. 5, or R1), and the proposal ``q_psi`` follows the score-function
gradient (Eq. 12) of ``U_g = E_q[L_g] + gamma H(q_psi)`` (Eq. 15), which needs the
simulator only in forward mode. ``fit`` is a loop of named steps (simulate, proposal
step, critic step); the math lives in the sibling private modules.
"""

from __future__ import annotations

__all__ = ["AVOSimulatorFitter", "SimulationFailureWarning"]

import copy
from collections.abc import Callable, Sequence
from numbers import Integral, Real
from typing import Any, Literal

import numpy as np
import torch
from numpy.typing import ArrayLike
from scipy.stats import norm
from sklearn.base import BaseEstimator, clone
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from .._config import torch_threads
from .._persistence import VersionedStateMixin
from .._random import draw_seed, torch_generator, torch_seeded
from .._training import DivergenceError, EpochProgress
from .._typing import Device, RandomStateLike
from .._utils import check_device, check_hidden_units, column_scale, to_numpy, warn_at_caller
from ..metrics import MAX_PER_SAMPLE_MARGINAL
from ..simulation import (
    FailureLog,
    SimulationError,
    SimulationFailureWarning,
    SimulationResult,
    check_simulator_configuration,
    simulate,
)
from ._checks import FitQualityWarning, FitVerdict, location_drift, two_sample_tests
from ._critics import PENALTIES, CriticObjective, critic_net, generator_values, run_critic
from ._gaussian import GaussianProposalModule
from ._polish import PolishSamples, polish_
from ._proposals import Proposal, parse_bounds
from ._resolution import ScaleFloor
from ._uncertainty import parameter_covariance
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

# Critic steps before the first proposal update, in units of n_critic: the critic
# first learns the initial proposal's data.
_WARM_UP_ROUNDS = 5
# final_batch_size="auto" grows the batch to at most this many simulations, and in a
# polished fit to at least the lower one: the polish regresses the last quarter's
# simulations, which travel with the location. g-and-k with 1 000 observations (12
# seeds): 128 per update (9 600 pooled, 15 000 with the top-up) left it 1.48 SE RMS off,
# 67 % of fits within 2 SE; 1 000 per update, 0.76 SE and 100 % (127 000 simulations).
_AUTO_FINAL_BATCH, _AUTO_FINAL_BATCH_POLISHED = 1500, 1000
# polish_simulations="auto": at most this many, and none below the minimum.
_POLISH_MAX_AUTO, _POLISH_MIN_AUTO = 60_000, 2_000
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

    Parameters
    ----------
    simulator : callable
        ``simulator(theta, random_state) -> x``: ``theta`` a 1-D array of shape
        ``(n_params,)``, ``random_state`` a :class:`numpy.random.Generator`, ``x`` one
        observation of shape ``(n_features,)``. With ``vectorized=True``,
        ``simulator(thetas (m, n_params), random_state) -> (m, n_features)``. Must be
        picklable (module level, or an object) for process-based joblib backends.
    proposal : GaussianProposal or FlowProposal
        Initial proposal ``q_psi``, a spec whose ``build()`` makes the torch module that
        is trained; never modified. A :class:`~sktilt.FlowProposal` can hold several
        modes, ridges or a whole population of parameters (a source distribution).
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
    vectorized : bool, default=False
        Whether ``simulator`` takes a batch of parameters.
    summary : transformer or None, default=None
        Fitted (a clone) on the observations and applied to observed and simulated
        data alike before the critic: summary statistics, the sklearn way.
    n_critic : int, default=10
        Critic steps per proposal update (Algorithm 1, line 2).
    batch_size : int, default=128
        Simulations per iteration ``M`` while the proposal travels (the first half of
        the updates); also the critic's mini-batch size.
    final_batch_size : int or "auto", default="auto"
        Simulations per iteration once the proposal refines (the second half):
        ``M`` grows geometrically from ``batch_size`` to it over the third quarter of the
        updates. The precision of the fit is that of the observations only when the
        simulations per update carry comparable information: ``"auto"`` is
        ``clip(n_obs // 10, batch_size, 1500)`` (about 170 000 simulations in all for
        20 000 observations), and at least 1 000 in a polished fit
        (``polish_simulations``), whose polish regresses the last quarter's
        simulations: on a g-and-k with 1 000 observations 128 per update left it 1.48
        MLE standard errors RMS off (67 % of 12 fits within 2 SE), 1 000 per update
        0.76 (100 %).
    max_iter : int, default=300
        Proposal updates.
    lr : float or "auto", default="auto"
        Step size for ``psi``; ``"auto"`` is 0.1 for a :class:`~sktilt.GaussianProposal`
        and 3e-3 (Adam on the flow's weights) for a :class:`~sktilt.FlowProposal`. For a
        Gaussian (``torch.optim.Adam`` without momentum, i.e. RMSprop with
        bias correction, in the proposal's local coordinates, see
        :class:`~sktilt.avo.GaussianProposalModule`): locations move by about ``lr``
        *current* standard deviations of the proposal per update (so steps shrink as
        it tightens, as in natural evolution strategies), log-scales by ``lr / 3``
        nats. Decays to ``0.3 lr`` with a cosine schedule. There is no momentum: the
        critic already lags the proposal by about one update, and momentum on top
        made the location orbit the optimum (tens of standard errors wide on the
        Poisson benchmark).
    critic_lr : float, default=3e-3
        Adam step size of the critic.
    hidden_layer_sizes : tuple of int, default=(64, 64)
        Critic MLP widths.
    penalty : {"wgan-lp", "wgan-gp", "r1"}, default="wgan-lp"
        Critic loss and penalty (:func:`sktilt.avo.critic_loss`). ``"wgan-gp"`` is
        Algorithm 1's two-sided penalty; the default one-sided ``"wgan-lp"`` avoids
        a critic stuck with the wrong slope on 1-D data (the two-sided penalty makes
        slope 0 a barrier between slopes -1 and +1).
    gradient_penalty : float, default=10.0
        Penalty weight ``lambda`` (on standardised inputs).
    baseline : {"optimal", "mean"} or None, default="optimal"
        Variance reduction of the score-function gradient, see
        :func:`sktilt.gradients.score_function_gradient`.
    min_scale : "auto", float, array-like of shape (n_params,) or None, default="auto"
        Floor on the proposal's standard deviations (of the unconstrained
        parameters, the log-diagonal of the Cholesky factor for a full covariance):
        ``gamma`` tightens the proposal down to it and no further. ``"auto"`` puts it
        at 3 standard errors of the observations, estimated along the fit by
        regressing the simulated features on the parameters
        (:class:`~sktilt.avo.ScaleFloor`): below the data's resolution the location
        gradient loses its signal and the location freezes. ``None`` lets ``gamma``
        collapse the proposal, as in the paper. A floor never widens a proposal.
    moment_step : float in [0, 1], default=0.5
        Fraction of a second-order location step taken after each update of the
        second half of the fit (:meth:`~sktilt.avo.ParameterResolution.kalman_shift`):
        the regression behind ``min_scale="auto"`` of distribution features (the
        empirical CDF at the observations' octiles, pairwise products) on the
        parameters says where the location should be for the simulated features to
        meet the observed ones; with the proposal as prior, the step moves only
        along directions the data pin (ensemble Kalman inversion). It travels ridges
        along which score-function steps, scaled by a tight proposal, stall, and
        makes the second half a method-of-moments fit that the polish
        (``polish_simulations``) finishes. 0 is the paper's algorithm. Over 12 seeds
        (MLE standard errors RMS, share of fits with every parameter within 2 SE),
        0.5 and its polish against 0: g-and-k 0.72 (100 %) against 9.75 (0 %), SLCP
        0.52 (100 %) against 1.42 (42 %), the 10-D Gaussian linear model 0.56 (92 %)
        against 0.56 (100 %), Poisson 0.79 (100 %) against 1.20 (92 %), Weinberg 0.71
        (100 %) against 0.77 (100 %). Without the polish the moment step loses the
        Gaussian linear model (1.08 SE, 17 %: its 115 features are noisy slopes at 128
        simulations per update), so set both or neither. Needs ``min_scale="auto"``
        and a :class:`~sktilt.GaussianProposal`; ignored otherwise.
    polish_simulations : int or "auto", default="auto"
        Extra simulations of the final polish of a point fit (:mod:`sktilt.avo._polish`):
        distribution features at 17 cut points per column (deciles and tail levels out
        to 0.5 %) are regressed on the parameters (a quadratic model) from the
        simulations of the last quarter of the updates and these extra ones, drawn
        around the fitted location at least ``min_scale`` wide, and the location moves
        to where the features' mean meets the observations' (the efficient method of
        moments, as the moment step but with finer features, all the last quarter's
        simulations and a curved model).
        ``"auto"``: a polish when ``moment_step > 0`` (the fit is then a
        method-of-moments fit in its second half), topping the pooled simulations up to
        ``max(n_terms, 0.3 p) n_obs`` (``n_terms = (k + 1)(k + 2) / 2`` terms of the
        quadratic model in ``k`` parameters, ``p`` features: the model's noise is then
        about the data's) with at most 60 000 extra; none under 2 000 in all. An integer
        polishes with that many extra simulations whatever ``moment_step``; 0: no
        polish. The quadratic model's curvature terms are shrunk by their evidence
        (:func:`~sktilt.avo._polish.curvature_shrinkage`). Over 12 seeds at the
        defaults (MLE standard errors RMS, share of fits with every parameter within
        2 SE): g-and-k 0.72 (100 %; 60 000 extra simulations), SLCP 0.52 (100 %), the
        10-D Gaussian linear model 0.56 (92 %), Poisson 0.79 and Weinberg 0.71 (100 %
        both; 7 500 extra for Weinberg); without the polish the moment step alone gave
        1.47, 1.50, 1.08, 0.69 and 0.54 (33, 25, 17, 100 and 100 %; measured before the
        polished fits' floor on ``final_batch_size``). For an expensive simulator the
        extra simulations are a cost: set an integer, or 0. Without the
        moment step it lost the Gaussian linear model (0.56 to 0.88 SE, with an earlier
        version), hence ``"auto"`` polishes only with it. Point fits only: a
        :class:`~sktilt.GaussianProposal` with ``gamma > 0``.
    averaging : float in [0, 1), default=0.25
        Fraction of the last iterations whose ``psi`` are averaged into
        ``proposal_`` (Polyak-Ruppert), with weights growing as ``k^3`` over the
        ``k``-th averaged iteration (polynomial-decay averaging): the start of the
        window, where the location may still be arriving, counts little; 0 keeps
        the last iterate. The last quarter, where the batch is largest: over 12 seeds
        the Poisson benchmark had 11 fits within 2 SE of the MLE (RMS 1.20 SE) against
        9 (1.32) with the last half, and Weinberg, Gaussian linear, g-and-k and SLCP
        were unchanged.
    on_failure : {"drop", "raise"}, default="drop"
        What a failed simulation (exception, NaN/inf, wrong shape) does: dropped,
        counted and recorded in ``failed_parameters_`` with one warning per fit, or
        raised.
    max_failure_fraction : float in [0, 1], default=0.5
        With ``"drop"``, more failures than this fraction of all simulations stops
        the fit with a :class:`~sktilt.simulation.SimulationError`.
    common_random_numbers : bool, default=False
        Draw parameters in mirrored pairs ``loc +- L eps`` (antithetic sampling)
        whose two simulations share their seeds, so that the score-function
        gradient compares the pair like a finite difference. Helps simulators whose
        output is a smooth function of ``theta`` for fixed seeds; ``batch_size``
        is rounded down to an even number.
    validation_fraction : float in (0, 1) or None, default=None
        Fraction of the observations held out of the fit for the two-sample checks
        (``two_sample_``, ``marginal_test_``, ``classifier_test_``). ``None`` checks
        against the training observations: with a handful of parameters a fit cannot
        overfit them, and the fit keeps all the data's precision.
    timeout : float or None, default=None
        Seconds a simulation (a batch, for a vectorized simulator) may run before it
        is abandoned and recorded as a ``"timeout"`` failure with its theta
        (:func:`sktilt.simulate`); simulations then run in child processes, for
        ``n_jobs=1`` too. ``None``: no limit.
    callbacks : list of skorch callbacks or None, default=None
        Extra callbacks of the proposal's skorch net (one epoch per update; its history
        records ``generator_value`` and ``entropy`` per update).
    n_jobs : int or None, default=None
        Simulation workers for :class:`joblib.Parallel`; ``None`` defers to
        :func:`joblib.parallel_config` (e.g. a dask backend).
    device : str, default="cpu"
        Torch device of the critic.
    verbose : int, default=0
        A progress bar when > 0.
    random_state : int, RandomState or None, default=None
        Seeds everything; results do not depend on ``n_jobs`` or the backend.

    Attributes
    ----------
    theta_ : ndarray of shape (n_params,)
        Point estimate: ``proposal_.median()`` (the proposal's mean when unbounded).
    proposal_ : GaussianProposal
        The fitted proposal.
    critic_ : StepNet
        The trained critic (a skorch net; ``critic_.module_`` is the
        :class:`~sktilt.avo.CriticModule`).
    proposal_net_ : StepNet
        The skorch net that trained the proposal (its history and callbacks).
    summary_ : transformer or None
    history_ : list of dict
        Per iteration: ``loc`` and ``scale`` (the mean and standard deviations of the
        proposal's unconstrained variable), ``theta``, ``entropy``, ``critic_loss``,
        ``critic_estimate`` (the Wasserstein estimate ``E d(x_obs) - E d(x_sim)``),
        ``n_simulations``, ``n_failed``, ``lr``, ``scale_floor``, and in the second
        half ``moment_shift`` (the location step of ``moment_step``, units of ``z``;
        ``None`` where it does not apply).
    scale_floor_ : ndarray of shape (n_params,) or None
        The floor ``min_scale`` put on the proposal's standard deviations at the
        last update (``inf`` where the parameter showed no effect on the features,
        which keeps its spread); ``None`` with ``min_scale=None``.
    polish_shift_ : ndarray of shape (n_params,) or None
        How far the polish (``polish_simulations``) moved the location, in units of the
        unconstrained parameters; ``None`` when there was no polish.
    two_sample_ : TwoSampleTest or None
        Energy-distance permutation test (:func:`sktilt.metrics.energy_test`) of up to
        2 000 observations (held out with ``validation_fraction``) against as many
        simulations from ``proposal_``; ``None`` when none succeeded.
    marginal_test_ : TwoSampleTest or None
        Kolmogorov-Smirnov test of each feature (:func:`sktilt.metrics.marginal_ks_test`)
        on up to 10 000 observations and as many simulations: blind to dependence, but
        with the power to see a misfit of spread or shape.
    classifier_test_ : TwoSampleTest or None
        For two or more features, a classifier two-sample test
        (:func:`sktilt.metrics.classifier_test`): an MLP trained on half of up to 5 000
        observations and as many simulations, its held-out accuracy with an exact
        p-value. It sees dependence and shape in several dimensions (it flagged the
        SLCP source fit at 300 updates that the other two tests passed). ``None`` for
        one feature.
    location_drift_ : ndarray of shape (n_params,)
        How far the proposal's location travelled over the last quarter of the
        updates, in final standard deviations (:func:`sktilt.avo.location_drift`).
    unresolved_parameters_ : list of int
        Parameters whose effect on the data's distribution the resolution estimate
        never saw (``scale_floor_`` infinite): their spread was left as it started.
    converged_ : bool
        No location drift above 1 and no two-sample test rejects at the 1 %
        level. Otherwise, and for unresolved parameters, a
        :class:`~sktilt.avo.FitQualityWarning` says what went wrong. The tests' power
        grows with the observations they compare: on g-and-k (10 000 observations)
        the marginal test flags fits 10 SE off the MLE; a fit a few SE off a large
        data set can pass.
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
    ``n_critic`` critic steps, which halves the simulations of Algorithm 1. The
    critic therefore lags the proposal by one update; a warm-up trains it on the
    initial proposal first.

    Errors raised mid-fit (:class:`~sktilt.simulation.SimulationError`) carry what
    was computed: ``err.history``, ``err.proposal`` (the last proposal) and
    ``err.failed_parameters``.
    """

    _parameter_constraints: dict = {
        "simulator": [callable],
        "proposal": [HasMethods(["build", "fitted"])],
        "gamma": [Real],
        "vectorized": ["boolean"],
        "summary": [HasMethods(["fit", "transform"]), None],
        "n_critic": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 2, None, closed="left")],
        "final_batch_size": [Interval(Integral, 2, None, closed="left"), StrOptions({"auto"})],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "critic_lr": [Interval(Real, 0, None, closed="neither")],
        "hidden_layer_sizes": [tuple, list],
        "penalty": [StrOptions(set(PENALTIES))],
        "gradient_penalty": [Interval(Real, 0, None, closed="left")],
        "baseline": [StrOptions({"optimal", "mean"}), None],
        "min_scale": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither"),
                      "array-like", None],
        "moment_step": [Interval(Real, 0, 1, closed="both")],
        "polish_simulations": [StrOptions({"auto"}), Interval(Integral, 0, None,
                                                              closed="left")],
        "averaging": [Interval(Real, 0, 1, closed="left")],
        "on_failure": [StrOptions({"drop", "raise"})],
        "max_failure_fraction": [Interval(Real, 0, 1, closed="both")],
        "common_random_numbers": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither"), None],
        "timeout": [Interval(Real, 0, None, closed="neither"), None],
        "callbacks": [list, None],
        "n_jobs": [Integral, None],
        "device": [str, torch.device],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    }

    def __init__(self, simulator: Callable[..., ArrayLike], proposal: Proposal, *,
                 gamma: float = 1.0, vectorized: bool = False, summary: Any = None,
                 n_critic: int = 10, batch_size: int = 128,
                 final_batch_size: int | Literal["auto"] = "auto", max_iter: int = 300,
                 lr: float | Literal["auto"] = "auto", critic_lr: float = 3e-3,
                 hidden_layer_sizes: Sequence[int] = (64, 64),
                 penalty: Literal["wgan-lp", "wgan-gp", "r1"] = "wgan-lp",
                 gradient_penalty: float = 10.0,
                 baseline: Literal["optimal", "mean"] | None = "optimal",
                 min_scale: float | ArrayLike | Literal["auto"] | None = "auto",
                 moment_step: float = 0.5, polish_simulations: int | Literal["auto"] = "auto",
                 averaging: float = 0.25, on_failure: Literal["drop", "raise"] = "drop",
                 max_failure_fraction: float = 0.5, common_random_numbers: bool = False,
                 validation_fraction: float | None = None, timeout: float | None = None,
                 callbacks: list | None = None, n_jobs: int | None = None,
                 device: Device = "cpu", verbose: int = 0,
                 random_state: RandomStateLike = None) -> None:
        self.simulator = simulator
        self.proposal = proposal
        self.gamma = gamma
        self.vectorized = vectorized
        self.summary = summary
        self.n_critic = n_critic
        self.batch_size = batch_size
        self.final_batch_size = final_batch_size
        self.max_iter = max_iter
        self.lr = lr
        self.critic_lr = critic_lr
        self.hidden_layer_sizes = hidden_layer_sizes
        self.penalty = penalty
        self.gradient_penalty = gradient_penalty
        self.baseline = baseline
        self.min_scale = min_scale
        self.moment_step = moment_step
        self.polish_simulations = polish_simulations
        self.averaging = averaging
        self.on_failure = on_failure
        self.max_failure_fraction = max_failure_fraction
        self.common_random_numbers = common_random_numbers
        self.validation_fraction = validation_fraction
        self.timeout = timeout
        self.callbacks = callbacks
        self.n_jobs = n_jobs
        self.device = device
        self.verbose = verbose
        self.random_state = random_state

    # --------------------------------------------------------------------- fit
    def fit(self, X, y=None) -> AVOSimulatorFitter:
        """Fit the proposal to observations ``X`` of shape (n_obs, n_features).

        Parameters
        ----------
        X : array-like of shape (n_obs, n_features)
            iid observations (``X_obs``); finite, 2-D.
        y : None
            Ignored.

        Returns
        -------
        self
        """
        with torch_threads():  # critic, proposal and the checks of the finished fit
            X = self._validate_observations(X)
            X, X_check = self._split_validation(X)
            summary = None if self.summary is None else clone(self.summary).fit(X)
            state = self._initialize(X, summary)
            try:
                with torch_seeded(state.seed):
                    self._warm_up(state, summary)
                    for it in range(self.max_iter):
                        batch = self._simulate_step(state, summary, it=it)
                        entry = {"n_simulations": len(batch.theta),
                                 "n_failed": batch.result.n_failed}
                        if batch.features is not None:
                            entry.update(self._proposal_step(state, batch, it))
                            entry.update(self._critic_step(state, batch.features))
                        self._record_iteration(state, it, entry)
                    self._polish(state, summary)
            except SimulationError as exc:
                exc.history = state.history
                exc.proposal = clone(self.proposal).fitted(state.proposal)
                raise
            self._finalize(X, summary, state)
            self._check_fit(state, summary, X if X_check is None else X_check)
            return self

    def _validate_observations(self, X) -> np.ndarray:
        self._validate_params()
        check_hidden_units(self.hidden_layer_sizes, "hidden_layer_sizes")
        check_device(self.device)
        if np.ndim(X) == 1:
            raise ValueError("X (the observations X_obs) must be 2-D of shape (n_obs, "
                             "n_features); got a 1-D array: use X.reshape(-1, 1) for a "
                             "single feature.")
        return validate_data(self, X, ensure_min_samples=2, dtype=np.float64)

    def _split_validation(self, X):
        """Hold out ``validation_fraction`` of the observations for the two-sample check."""
        if self.validation_fraction is None:
            return X, None
        n_check = int(round(self.validation_fraction * len(X)))
        if n_check < 2 or len(X) - n_check < 2:
            raise ValueError(f"validation_fraction={self.validation_fraction} leaves "
                             f"{n_check} of {len(X)} observations for the check; both parts "
                             "need at least 2.")
        seed = np.random.SeedSequence(draw_seed(self.random_state), spawn_key=(7,))
        order = np.random.default_rng(seed).permutation(len(X))
        return X[order[n_check:]], X[order[:n_check]]

    def _initialize(self, X, summary) -> FitState:
        proposal = clone(self.proposal).build()
        n_params = proposal.n_parameters
        expected = getattr(self.simulator, "n_parameters", None)
        if expected is not None and expected != n_params:
            raise ValueError(f"The proposal has {n_params} parameters but the simulator "
                             f"expects n_parameters={expected}.")
        if self.polish_simulations not in ("auto", 0) and (
                self.gamma <= 0 or not isinstance(proposal, GaussianProposalModule)):
            raise ValueError(f"polish_simulations={self.polish_simulations} polishes a point "
                             "fit: it needs a GaussianProposal and gamma > 0 (got "
                             f"{type(self.proposal).__name__}, gamma={self.gamma}); use 0 "
                             "or 'auto'.")
        X_obs = self._features(X, summary)
        seed = draw_seed(self.random_state)
        root = np.random.SeedSequence(seed)
        theta_rng, sim_root = np.random.default_rng(root.spawn(1)[0]), root.spawn(1)[0]
        with torch_seeded(seed):
            critic = critic_net(X_obs, tuple(self.hidden_layer_sizes), CriticObjective(
                self.penalty, self.gradient_penalty, self.batch_size), lr=self.critic_lr,
                device=self.device)
        callbacks = [clone(cb) if hasattr(cb, "get_params") else copy.deepcopy(cb)
                     for cb in (self.callbacks or [])]
        if self.verbose:
            callbacks.append(EpochProgress(self.max_iter, desc="AVO", across_runs=True))
        lr = proposal.default_lr if self.lr == "auto" else self.lr
        proposal_net = proposal_net_for(proposal, ProposalObjective(self.baseline),
                                        lr=lr, n_updates=self.max_iter,
                                        callbacks=callbacks)
        return FitState(seed, theta_rng, sim_root, torch_generator(seed, self.device), X_obs,
                         proposal, proposal_net, critic,
                         ScaleFloor(self.min_scale if proposal.floors_spread else None,
                                    n_params, X_obs.cpu().numpy()),
                         FailureLog(self.max_failure_fraction),
                         max(1, int(round(self.averaging * self.max_iter))),
                         polish=self._polish_samples(proposal, X_obs.cpu().numpy()))

    def _features(self, X, summary) -> torch.Tensor:
        if summary is not None:
            X = np.asarray(summary.transform(X), dtype=np.float32)
            if X.ndim != 2 or not np.all(np.isfinite(X)):
                raise ValueError(
                    f"summary {type(summary).__name__} returned "
                    f"{'non-finite values (NaN or inf)' if X.ndim == 2 else f'shape {X.shape}'}"
                    "; it must map data to a finite 2-D array (n_samples, n_summaries).")
        return torch.as_tensor(np.asarray(X, dtype=np.float32), device=self.device)

    def _simulate(self, thetas, seed) -> SimulationResult:
        return simulate(self.simulator, thetas, seed=seed, n_jobs=self.n_jobs,
                        vectorized=self.vectorized, n_features=self.n_features_in_,
                        on_failure=self.on_failure, timeout=self.timeout)

    def _batch_at(self, it: int, n_obs: int, polished: bool) -> int:
        """Simulations at update ``it`` (see ``final_batch_size``)."""
        low = max(self.batch_size, _AUTO_FINAL_BATCH_POLISHED if polished else 0)
        final = (int(np.clip(n_obs // 10, low, _AUTO_FINAL_BATCH))
                 if self.final_batch_size == "auto" else max(self.final_batch_size,
                                                             self.batch_size))
        t = np.clip((it - self.max_iter / 2) / (self.max_iter / 4), 0.0, 1.0)
        return int(round(self.batch_size * (final / self.batch_size) ** t))

    def _simulate_step(self, state: FitState, summary, first: bool = False,
                       it: int = 0) -> SimulatedBatch:
        """Simulate a batch from the current proposal; feed the resolution estimate.

        A first batch where every simulation failed is a configuration error, reported
        as such rather than as a failure rate.
        """
        batch = self._batch_at(it, len(state.X_obs), state.polish is not None)
        thetas, result = draw_and_simulate(
            state.proposal, batch, state.theta_rng, state.sim_root.spawn(1)[0],
            self._simulate, common_random_numbers=self.common_random_numbers)
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
        if state.polish is not None and not first and it >= _POLISH_FROM * self.max_iter:
            state.polish.add(z, simulated)
        return SimulatedBatch(thetas, result, features)

    def _warm_up(self, state: FitState, summary) -> None:
        """The critic first learns the initial proposal's data."""
        batch = self._simulate_step(state, summary, first=True)
        if batch.features is not None:
            self._critic_step(state, batch.features, rounds=_WARM_UP_ROUNDS)

    def _proposal_step(self, state: FitState, batch: SimulatedBatch, it: int) -> dict:
        """One update of Eq. 12 + 15, then the floor on the spread (``min_scale``)."""
        values = generator_values(state.critic.module_, batch.features, self.penalty)
        theta = torch.as_tensor(batch.theta[batch.result.ok])
        previous = state.proposal.log_scale().detach().clone()
        try:
            state.proposal_net.run(1, theta=theta, values=values,
                                   gamma=annealed_gamma(self.gamma, it, self.max_iter))
        except DivergenceError:
            pass  # a degenerate batch (e.g. all-equal critic values): no update
        floor = state.floor.value()
        state.proposal.floor_spread_(floor, previous)
        fraction = tightening_fraction(it, self.max_iter) if self.gamma > 0 else 0.0
        if floor is not None and fraction > 0:
            state.proposal.tighten_toward_(floor, fraction)
        entry = {"scale_floor": floor,
                 "lr": state.proposal_net.history[-1, "batches", -1].get("event_lr", np.nan)}
        if self.moment_step > 0 and it >= self.max_iter / 2:
            entry["moment_shift"] = self._moment_step(state)
        return entry

    def _moment_step(self, state: FitState) -> np.ndarray | None:
        """Move the location by ``moment_step`` of the Kalman shift (at most
        :data:`_MAX_MOMENT_SHIFT` proposal standard deviations, Mahalanobis)."""
        if state.floor.resolution is None:  # min_scale not "auto", or a flow
            return None
        module = state.proposal
        with torch.no_grad():
            loc = to_numpy(module.loc())
            L = to_numpy(module.scale_tril())
        shift = state.floor.location_shift(loc, L @ L.T)
        shift = self.moment_step * shift
        length = np.linalg.norm(np.linalg.solve(L, shift))
        if length > _MAX_MOMENT_SHIFT:
            shift *= _MAX_MOMENT_SHIFT / length
        module.move_location_(torch.as_tensor(shift, dtype=module.loc_anchor.dtype))
        return shift

    def _critic_step(self, state: FitState, features: torch.Tensor, rounds: int = 1) -> dict:
        """``rounds * n_critic`` critic steps on the observations vs ``features``."""
        return run_critic(state.critic, rounds * self.n_critic, X_obs=state.X_obs,
                          X_sim=features, generator=state.generator)

    def _record_iteration(self, state: FitState, it: int, entry: dict) -> None:
        proposal = state.proposal
        if it >= self.max_iter - state.n_averaged:
            state.averaged = average_iterate(state.averaged, proposal)
        with torch.no_grad():
            entry.update(loc=to_numpy(proposal.loc()), scale=to_numpy(proposal.spread()),
                         theta=to_numpy(proposal.median()), entropy=float(proposal.entropy()))
        state.history.append(entry)

    def _finalize(self, X, summary, state: FitState) -> None:
        module = state.final_proposal()
        self.proposal_ = clone(self.proposal).fitted(module)
        self.theta_ = np.atleast_1d(self.proposal_.median())
        self.polish_shift_ = state.polish_shift
        self.covariance_ = (None if state.moments is None
                            else parameter_covariance(state.moments, module))
        self.standard_errors_ = (None if self.covariance_ is None
                                 else np.sqrt(np.diag(self.covariance_)))
        self.scale_floor_ = next((h["scale_floor"] for h in reversed(state.history)
                                  if "scale_floor" in h), None)
        self.summary_ = summary
        self.critic_ = state.critic
        self.proposal_net_ = state.proposal_net
        self.history_ = state.history
        self.n_iter_ = len(state.history)
        self.n_simulations_ = state.failures.n_simulations
        self.n_failed_simulations_ = state.failures.n_failed
        self.failed_parameters_ = state.failures.failed_array(len(self.theta_))
        self.failure_messages_ = state.failures.messages
        self._obs_mean, self._obs_scale = X.mean(0), column_scale(X)
        self._score_seed = int(np.random.SeedSequence(state.seed).generate_state(1)[0])

    def _polishes(self) -> bool:
        """Whether the final polish moves the location (a refined point fit)."""
        return not (self.polish_simulations == 0 or (
            self.polish_simulations == "auto" and self.moment_step == 0))

    def _polish_samples(self, proposal, X_obs: np.ndarray):
        """The collector of the last quarter's simulations for a point fit (gamma > 0,
        Gaussian proposal): the polish and the standard errors regress them."""
        if self.gamma <= 0 or not isinstance(proposal, GaussianProposalModule):
            return None
        return PolishSamples(X_obs)

    def _polish(self, state: FitState, summary) -> None:
        """:func:`._polish.polish_` on the proposal that ``_finalize`` will take."""
        samples = state.polish
        if samples is None:
            return
        module = state.final_proposal()
        needed = samples.needed(module.n_parameters)
        move = self._polishes()
        if not move:
            n = 0
        elif self.polish_simulations == "auto":
            n = int(np.clip(needed - samples.n_samples, 0, _POLISH_MAX_AUTO))
            if samples.n_samples + n < _POLISH_MIN_AUTO:
                n, move = 0, False
        else:
            n = self.polish_simulations

        rounds = iter(range(1_000))

        def simulate_features(thetas):  # a fresh stream per round
            result = self._simulate(thetas, np.random.SeedSequence(
                state.seed, spawn_key=(11, next(rounds))))
            state.failures.record(thetas, result)
            X = (self._features(result.X, summary).cpu().numpy() if result.ok.any()
                 else None)
            return result.ok, X

        rng = np.random.default_rng(np.random.SeedSequence(state.seed, spawn_key=(10,)))
        later = max(needed // 2, _POLISH_MIN_AUTO) if move else 0  # re-centred rounds
        with torch.no_grad():
            before = to_numpy(module.loc()).copy()
        state.moments = polish_(module, samples, state.floor.value(), (n, later, later),
                                rng, simulate_features, move=move)
        if move and state.moments is not None:
            with torch.no_grad():
                state.polish_shift = to_numpy(module.loc()) - before

    def _check_fit(self, state: FitState, summary, X_check) -> None:
        """Two-sample check, location drift and resolution: ``converged_``, warnings."""
        module = self.proposal_._module()
        rng = np.random.default_rng(np.random.SeedSequence(state.seed, spawn_key=(8,)))
        n = min(len(X_check), MAX_PER_SAMPLE_MARGINAL)
        # a point fit reports theta_: its data, not the proposal's smear, must match
        thetas = (np.tile(self.theta_, (n, 1)) if self.gamma > 0
                  else to_numpy(module.sample(n, rng)))
        result = self._simulate(thetas, np.random.SeedSequence(state.seed, spawn_key=(9,)))
        state.failures.record(thetas, result)
        self.n_simulations_ = state.failures.n_simulations
        self.n_failed_simulations_ = state.failures.n_failed
        self.failed_parameters_ = state.failures.failed_array(len(self.theta_))
        self.failure_messages_ = state.failures.messages
        self.two_sample_ = self.marginal_test_ = self.classifier_test_ = None
        if result.ok.sum() >= 2:
            self.two_sample_, self.marginal_test_, self.classifier_test_ = two_sample_tests(
                self._features(X_check, summary).cpu().numpy(),
                self._features(result.X, summary).cpu().numpy(), rng)
        with torch.no_grad():
            spread = to_numpy(module.spread())
        floor = self.scale_floor_
        verdict = FitVerdict(
            self.two_sample_, self.marginal_test_, self.classifier_test_,
            location_drift(np.array([h["loc"] for h in self.history_]), spread),
            [] if floor is None else np.flatnonzero(~np.isfinite(floor)).tolist())
        self.location_drift_ = verdict.drift
        self.unresolved_parameters_ = verdict.unresolved
        self.converged_ = verdict.converged
        if verdict.problems():
            warn_at_caller("AVO fit: " + "; ".join(verdict.problems()) + ".",
                           FitQualityWarning)
        if state.moments is not None and state.moments.at_edge:
            self.converged_ = False
            warn_at_caller("AVO fit: the polish's last solve stopped at the edge of the "
                           "region its simulations cover: theta_ is short of where the "
                           "simulated features meet the observed ones; raise max_iter or "
                           "start closer.", FitQualityWarning)
        if self.standard_errors_ is not None and not np.all(np.isfinite(
                self.standard_errors_)):
            warn_at_caller(
                "AVO fit: the observations do not identify parameter(s) "
                f"{np.flatnonzero(~np.isfinite(self.standard_errors_)).tolist()} near "
                "theta_ (their simulated features did not move beyond noise): their "
                "standard errors are infinite and theta_ there is not an estimate.",
                FitQualityWarning)

    def confidence_intervals(self, level: float = 0.95) -> np.ndarray:
        """Wald confidence intervals ``theta_ -+ z standard_errors_``.

        Parameters
        ----------
        level : float in (0, 1), default=0.95
            Coverage probability of each (marginal) interval.

        Returns
        -------
        intervals : ndarray of shape (n_params, 2)
            Lower and upper ends in the parameters' own units, clipped to the
            proposal's bounds; ``(-inf, inf)`` within the bounds for a parameter the
            data do not identify.
        """
        check_is_fitted(self, "theta_")
        if not isinstance(level, Real) or not 0 < level < 1:
            raise ValueError(f"level must be a float in (0, 1), got {level!r}.")
        if self.standard_errors_ is None:
            raise ValueError(
                "confidence_intervals needs a point fit: gamma > 0 and a "
                f"GaussianProposal (got gamma={self.gamma}, "
                f"{type(self.proposal).__name__}); a population fit's answer is the "
                "distribution proposal_, not a point.")
        half = norm.ppf(0.5 + level / 2) * self.standard_errors_
        intervals = np.stack([self.theta_ - half, self.theta_ + half], axis=1)
        with np.errstate(invalid="ignore"):
            intervals[~np.isfinite(half)] = [-np.inf, np.inf]
        bounds = getattr(self.proposal_, "bounds", None)
        if bounds is not None:
            limits = np.array(parse_bounds(bounds, len(self.theta_)), dtype=float)
            intervals = np.clip(intervals, limits[:, :1], limits[:, 1:])
        return intervals
