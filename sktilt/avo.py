"""Adversarial variational optimization (AVO) of black-box simulators.

:class:`AVOSimulatorFitter` implements Algorithm 1 of Louppe & Cranmer: a critic ``d``
learns to tell observed data from data simulated with parameters ``theta ~ q_psi``
(WGAN-GP, Eq. 5, or R1), and the proposal ``q_psi`` follows the score-function
gradient (Eq. 12) of ``U_g = E_q[L_g] + gamma H(q_psi)`` (Eq. 15), which needs the
simulator only in forward mode.
"""

from __future__ import annotations

__all__ = ["AVOSimulatorFitter"]

import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, clone
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data
from tqdm.auto import tqdm

from ._avo_loop import (
    ProposalAdam,
    ScaleFloor,
    diagnose_first_batch,
    floor_log_scales,
    run_critic,
)
from ._random import draw_seed, torch_generator, torch_seeded
from .critics import PENALTIES, CriticModule, CriticNet
from .gradients import score_function_gradient
from .metrics import energy_distance
from .simulation import SimulationError, SimulationResult, simulate


# Log-scales (and the relative off-diagonal coefficients) move at a third of the
# locations' pace, in their units: the proposal then shrinks slowly enough for its
# location to keep up, avoiding the premature convergence of evolution strategies
# whose spread collapses before they arrive.
_LOG_SCALE_STEP = 1.0 / 3.0
# Polynomial-decay averaging (Shamir & Zhang, 2013): the averaged iterates are
# weighted by k^3. A uniform average over a long window keeps the bias of the
# iterates where the location was still arriving (e.g. from below for the Poisson
# benchmark); these weights discount them while still averaging over many iterates.
_AVERAGING_POWER = 3.0


class SimulationFailureWarning(UserWarning):
    """Some simulations failed and were dropped (``on_failure="drop"``)."""


class AVOSimulatorFitter(BaseEstimator):
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
    proposal : GaussianProposal
        Initial proposal ``q_psi``; cloned, never modified.
    gamma : float, default=1.0
        Entropy weight ``gamma >= 0`` of Eq. 15: ``U_g = E[L_g] + gamma H(q)`` is
        minimised, so ``gamma > 0`` tightens the proposal around a point estimate;
        ``gamma = 0`` lets it keep the spread that best matches the data. The
        weight is annealed from 0 to ``gamma`` over the ``max_iter`` updates,
        quadratically (``gamma (t / max_iter)^2``): a proposal tightened before its
        location arrives freezes, since location steps shrink with its spread. It is
        in units of the critic's values, which are Lipschitz in the standardised
        data.
    vectorized : bool, default=False
        Whether ``simulator`` takes a batch of parameters.
    summary : transformer or None, default=None
        Fitted (a clone) on the observations and applied to observed and simulated
        data alike before the critic: summary statistics, the sklearn way.
    n_critic : int, default=10
        Critic steps per proposal update (Algorithm 1, line 2).
    batch_size : int, default=128
        Simulations per iteration ``M``; also the critic's mini-batch size.
    max_iter : int, default=300
        Proposal updates. The fit runs ``(max_iter + 1) * batch_size`` simulations.
    lr : float, default=0.1
        Step size for ``psi`` (RMSprop, i.e. Adam without momentum, see
        ``sktilt._avo_loop.ProposalAdam``): locations move by about ``lr`` *current*
        standard deviations of the proposal per update (so steps shrink as it
        tightens, as in natural evolution strategies), log-scales by ``lr / 3``
        nats. Decays to ``0.3 lr`` with a cosine schedule.
    critic_lr : float, default=3e-3
        Adam step size of the critic.
    hidden_layer_sizes : tuple of int, default=(64, 64)
        Critic MLP widths.
    penalty : {"wgan-lp", "wgan-gp", "r1"}, default="wgan-lp"
        Critic loss and penalty, see :mod:`sktilt.critics`. ``"wgan-gp"`` is
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
        regressing the simulated features on the parameters (see
        ``sktilt._avo_loop.ScaleFloor``). Below the data's
        resolution the critic cannot see the proposal's spread, the score-function
        location gradient loses its signal, and the location freezes wherever it was
        (its steps shrink with the spread). ``None`` lets ``gamma`` collapse the
        proposal, as in the paper. A floor never widens a proposal that is already
        narrower.
    averaging : float in [0, 1), default=0.5
        Fraction of the last iterations whose ``psi`` are averaged into
        ``proposal_`` (Polyak-Ruppert), with weights growing as ``k^3`` over the
        ``k``-th averaged iteration (polynomial-decay averaging): the start of the
        window, where the location may still be arriving, counts little; 0 keeps
        the last iterate.
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
    critic_ : CriticNet
        The trained critic (a skorch net).
    summary_ : transformer or None
    history_ : list of dict
        Per iteration: ``psi``, ``theta``, ``entropy``, ``critic_loss``,
        ``critic_estimate`` (the Wasserstein estimate ``E d(x_obs) - E d(x_sim)``),
        ``n_simulations``, ``n_failed``, ``lr``, ``scale_floor``.
    scale_floor_ : ndarray of shape (n_params,) or None
        The floor ``min_scale`` put on the proposal's standard deviations at the
        last update (``inf`` where the parameter showed no effect on the features,
        which keeps its spread); ``None`` with ``min_scale=None``.
    n_iter_ : int
    n_simulations_ : int
        Simulations run, failed ones included.
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
        "proposal": [HasMethods(["sample", "score", "entropy_grad", "get_flat_params",
                                 "set_flat_params", "median"])],
        "gamma": [Interval(Real, 0, None, closed="left")],
        "vectorized": ["boolean"],
        "summary": [HasMethods(["fit", "transform"]), None],
        "n_critic": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 2, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "critic_lr": [Interval(Real, 0, None, closed="neither")],
        "hidden_layer_sizes": [tuple, list],
        "penalty": [StrOptions(set(PENALTIES))],
        "gradient_penalty": [Interval(Real, 0, None, closed="left")],
        "baseline": [StrOptions({"optimal", "mean"}), None],
        "min_scale": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither"),
                      "array-like", None],
        "averaging": [Interval(Real, 0, 1, closed="left")],
        "on_failure": [StrOptions({"drop", "raise"})],
        "max_failure_fraction": [Interval(Real, 0, 1, closed="both")],
        "common_random_numbers": ["boolean"],
        "n_jobs": [Integral, None],
        "device": [str, torch.device],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    }

    def __init__(self, simulator, proposal, *, gamma=1.0, vectorized=False, summary=None,
                 n_critic=10, batch_size=128, max_iter=300, lr=0.1, critic_lr=3e-3,
                 hidden_layer_sizes=(64, 64), penalty="wgan-lp", gradient_penalty=10.0,
                 baseline="optimal", min_scale="auto", averaging=0.5, on_failure="drop",
                 max_failure_fraction=0.5, common_random_numbers=False, n_jobs=None,
                 device="cpu", verbose=0, random_state=None):
        self.simulator = simulator
        self.proposal = proposal
        self.gamma = gamma
        self.vectorized = vectorized
        self.summary = summary
        self.n_critic = n_critic
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.lr = lr
        self.critic_lr = critic_lr
        self.hidden_layer_sizes = hidden_layer_sizes
        self.penalty = penalty
        self.gradient_penalty = gradient_penalty
        self.baseline = baseline
        self.min_scale = min_scale
        self.averaging = averaging
        self.on_failure = on_failure
        self.max_failure_fraction = max_failure_fraction
        self.common_random_numbers = common_random_numbers
        self.n_jobs = n_jobs
        self.device = device
        self.verbose = verbose
        self.random_state = random_state

    # ------------------------------------------------------------------ helpers
    def _simulate(self, thetas, seed):
        return simulate(self.simulator, thetas, seed=seed, n_jobs=self.n_jobs,
                        vectorized=self.vectorized, n_features=self.n_features_in_,
                        on_failure=self.on_failure)

    def _draw_and_simulate(self, proposal, theta_rng, sim_root):
        """Draw one iteration's parameters and simulate them.

        With ``common_random_numbers``, parameters come in mirrored pairs
        ``loc +- L eps`` and both halves are simulated with the same seeds, so that a
        pair differs by its parameters, not by the simulator's noise: in the
        score-function gradient the pair acts as a finite difference, whose noise
        is far below that of independent draws. Each row is still distributed as
        ``q_psi`` (given ``theta``, ``x`` is a fresh simulation), so Eq. 12 stays
        unbiased.
        """
        child = sim_root.spawn(1)[0]
        if not self.common_random_numbers:
            thetas = proposal.sample(self.batch_size, theta_rng)
            return thetas, self._simulate(thetas, child)
        half = self.batch_size // 2
        thetas = proposal.sample(2 * half, theta_rng, antithetic=True)
        results = [self._simulate(part, np.random.SeedSequence(
                       child.entropy, spawn_key=child.spawn_key))
                   for part in (thetas[:half], thetas[half:])]
        return thetas, SimulationResult.concatenate(results)

    def _features(self, X) -> torch.Tensor:
        if self.summary_ is not None:
            X = self.summary_.transform(X)
        return torch.as_tensor(np.asarray(X, dtype=np.float32), device=self.device)

    def _record(self, thetas, result, state) -> None:
        """Book-keep failures; warn once; stop above ``max_failure_fraction``."""
        state["n_sim"] += len(thetas)
        if result.n_failed:
            state["failed"].append(result.failed_parameters)
            state["messages"].extend(result.errors)
            state["n_failed"] += result.n_failed
            if not state["warned"]:
                warnings.warn(
                    f"{result.n_failed} simulation(s) failed and were dropped, e.g. "
                    f"theta={result.failed_parameters[0].tolist()}: {result.errors[0]}. "
                    "All failures are listed in failed_parameters_.",
                    SimulationFailureWarning, stacklevel=3)
                state["warned"] = True
        if state["n_failed"] > self.max_failure_fraction * state["n_sim"]:
            raise SimulationError(
                f"{state['n_failed']} of {state['n_sim']} simulations failed, more than "
                f"max_failure_fraction={self.max_failure_fraction}; last error: "
                f"{state['messages'][-1]}", np.concatenate(state["failed"]),
                state["messages"])

    # --------------------------------------------------------------------- fit
    def fit(self, X, y=None):
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
        self._validate_params()
        if np.ndim(X) == 1:
            raise ValueError("X (the observations X_obs) must be 2-D of shape (n_obs, "
                             "n_features); got a 1-D array: use X.reshape(-1, 1) for a "
                             "single feature.")
        X = validate_data(self, X, ensure_min_samples=2, dtype=np.float64)
        proposal = clone(self.proposal)
        n_params = len(np.atleast_1d(proposal.median()))
        expected = getattr(self.simulator, "n_parameters", None)
        if expected is not None and expected != n_params:
            raise ValueError(f"The proposal has {n_params} parameters but the simulator "
                             f"expects n_parameters={expected}.")
        std = X.std(0)
        self._obs_mean, self._obs_scale = X.mean(0), np.where(std > 0, std, 1.0)
        self.summary_ = None if self.summary is None else clone(self.summary).fit(X)
        X_obs = self._features(X)

        seed = draw_seed(self.random_state)
        root = np.random.SeedSequence(seed)
        theta_rng = np.random.default_rng(root.spawn(1)[0])
        sim_root = root.spawn(1)[0]
        self._score_seed = int(root.generate_state(1)[0])
        state = {"n_sim": 0, "n_failed": 0, "failed": [], "messages": [], "warned": False}
        history: list[dict] = []
        opt = ProposalAdam(self.lr, self.max_iter)
        scale_floor = ScaleFloor(self.min_scale, n_params, X_obs.shape[1], X_obs.shape[0])
        psi = proposal.get_flat_params()
        tail = []  # psi of the averaged iterations
        n_tail = max(1, int(round(self.averaging * self.max_iter)))
        try:
            with torch_seeded(seed):
                std = X_obs.std(0).cpu().numpy()
                module = CriticModule(X_obs.shape[1], tuple(self.hidden_layer_sizes),
                                      X_obs.mean(0).cpu().numpy(),
                                      np.where(std > 0, std, 1.0))
                critic = CriticNet(module, penalty=self.penalty,
                                   penalty_weight=self.gradient_penalty,
                                   batch_size_obs=self.batch_size,
                                   steps_per_epoch=self.n_critic,
                                   optimizer=torch.optim.Adam, lr=self.critic_lr,
                                   optimizer__betas=(0.5, 0.9), device=self.device,
                                   verbose=0).initialize()
                gen = torch_generator(seed, self.device)
                # Warm-up: the critic first learns the initial proposal's data.
                thetas, result = self._draw_and_simulate(proposal, theta_rng, sim_root)
                diagnose_first_batch(result, n_params, self.n_features_in_)
                self._record(thetas, result, state)
                X_sim = self._features(result.X)
                scale_floor.observe(proposal.inverse_transform(thetas[result.ok]),
                                    X_sim.cpu().numpy())
                run_critic(critic, X_obs, X_sim, gen, epochs=5)
                for it in tqdm(range(self.max_iter), disable=not self.verbose,
                               desc="AVO"):
                    thetas, result = self._draw_and_simulate(proposal, theta_rng, sim_root)
                    self._record(thetas, result, state)
                    entry = {"n_simulations": len(thetas), "n_failed": result.n_failed}
                    if result.ok.sum() >= 2:
                        X_sim = self._features(result.X)
                        # Eq. 12 + 15: grad E_q[L_g] by REINFORCE, plus gamma grad H.
                        values = critic.generator_values(X_sim)
                        scores = proposal.score(thetas[result.ok])
                        grad = score_function_gradient(scores, values, self.baseline)
                        # gamma is annealed from 0: early on the location must travel,
                        # and a proposal tightened too soon would freeze on the way.
                        gamma_t = self.gamma * ((it + 1) / self.max_iter) ** 2
                        grad = grad + gamma_t * proposal.entropy_grad()
                        units = proposal.flat_params_scale()
                        units[n_params:] *= _LOG_SCALE_STEP  # scale and shape entries
                        scale_floor.observe(proposal.inverse_transform(thetas[result.ok]),
                                            X_sim.cpu().numpy())
                        floor = scale_floor.value()
                        psi = floor_log_scales(opt.step(psi, grad, units), psi, floor)
                        proposal.set_flat_params(psi)
                        entry["scale_floor"] = floor
                        entry.update(run_critic(critic, X_obs, X_sim, gen, epochs=1))
                    if it >= self.max_iter - n_tail:
                        tail.append(psi.copy())
                    entry.update(psi=psi.copy(), theta=proposal.median(),
                                 entropy=proposal.entropy(), lr=opt.last_lr)
                    history.append(entry)
        except SimulationError as exc:
            exc.history, exc.proposal = history, proposal
            raise
        finally:
            if "critic" in locals():
                critic.clear_data()
        if tail:
            weights = np.arange(1, len(tail) + 1, dtype=float) ** _AVERAGING_POWER
            proposal.set_flat_params(np.average(tail, axis=0, weights=weights))
        self.proposal_ = proposal
        self.scale_floor_ = next((h["scale_floor"] for h in reversed(history)
                                  if "scale_floor" in h), None)
        self.theta_ = np.atleast_1d(proposal.median())
        self.critic_ = critic
        self.history_ = history
        self.n_iter_ = len(history)
        self.n_simulations_ = state["n_sim"]
        self.n_failed_simulations_ = state["n_failed"]
        self.failed_parameters_ = (np.concatenate(state["failed"]) if state["failed"]
                                   else np.empty((0, n_params)))
        self.failure_messages_ = state["messages"]
        return self

    # ------------------------------------------------------------- fitted model
    def sample_parameters(self, n_samples=1, random_state=None):
        """Draw ``theta ~ q_psi`` from the fitted proposal, shape (n_samples, n_params).

        ``random_state`` defaults to the estimator's ``random_state``.
        """
        check_is_fitted(self)
        rs = self.random_state if random_state is None else random_state
        return self.proposal_.sample(n_samples, np.random.default_rng(draw_seed(rs)))

    def sample(self, n_samples=1, random_state=None):
        """Simulate data from the fitted model: ``theta ~ q_psi``, ``x = simulator(theta)``.

        Failed simulations are dropped (with a warning), so fewer than
        ``n_samples`` rows can come back.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        """
        check_is_fitted(self)
        rs = self.random_state if random_state is None else random_state
        seed = draw_seed(rs)
        thetas = self.proposal_.sample(n_samples, np.random.default_rng(seed))
        result = simulate(self.simulator, thetas, seed=seed, n_jobs=self.n_jobs,
                          vectorized=self.vectorized, n_features=self.n_features_in_)
        if result.n_failed:
            warnings.warn(f"{result.n_failed} of {n_samples} simulations failed and were "
                          f"dropped: {result.errors[0]}", SimulationFailureWarning,
                          stacklevel=2)
        return result.X

    def score(self, X, y=None):
        """Negative energy distance between ``X`` and data simulated from the fit.

        Higher is better (0 is a perfect match, up to sampling noise). Both samples
        are standardised with the training observations' mean and standard deviation
        first; 2 000 simulations are drawn with a seed fixed at fit time and at most
        5 000 rows of ``X`` are used (a fixed-seed subsample), so the score is
        deterministic and comparable across the candidates of a grid search.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored.

        Returns
        -------
        float
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, ensure_min_samples=2, dtype=np.float64)
        rng = np.random.default_rng(self._score_seed)
        if X.shape[0] > 5000:
            X = X[rng.choice(X.shape[0], 5000, replace=False)]
        thetas = self.proposal_.sample(2000, rng)
        Y = simulate(self.simulator, thetas, seed=self._score_seed, n_jobs=self.n_jobs,
                     vectorized=self.vectorized, n_features=self.n_features_in_).X
        if Y.shape[0] < 2:
            return -np.inf
        mean, scale = self._obs_mean, self._obs_scale
        return -energy_distance((X - mean) / scale, (Y - mean) / scale)
