"""The finished-fit phase of :class:`~sktilt.avo.AVOSimulatorFitter`: after the updates.

Once the proposal updates are done, a fit

* polishes a point fit (:func:`polish_point`): :func:`._polish.polish_` regresses the
  last quarter's simulations (collected by :func:`polish_samples`) and a batch of its
  own, and moves the location where a refinement asks for it (:func:`polishes`);
* sets the fitted attributes (:func:`finalize`): ``theta_``, ``proposal_``, the
  standard errors of the polish's moment solution, the counts of simulations;
* checks itself (:func:`check_fit`): two-sample tests at ``theta_`` (or from the
  fitted proposal), the moment test of a polished point, location drift and
  identification, which set ``converged_`` and raise the fit's warnings.

These functions take the estimator and write its attributes: they are its methods,
kept apart from the loop of updates. Their random streams are the fit seed's own
spawn keys, 8 and 9 for the check and 10 and 11 for the polish (the updates draw from
0 and 1), so the results do not depend on where the code lives.
"""

from __future__ import annotations

__all__ = ["MIN_MODEL_PRECISION", "MOMENT_ALPHA", "check_fit", "finalize", "polish_point",
           "polish_samples", "polishes", "starved_message"]

from typing import TYPE_CHECKING

import numpy as np
import torch
from sklearn.base import clone

from .._utils import column_scale, to_numpy, warn_at_caller
from ._checks import (
    FitConvergenceWarning,
    FitQualityWarning,
    FitVerdict,
    location_drift,
    two_sample_tests,
)
from ._gaussian import GaussianProposalModule
from ._parts import MomentRefinement
from ._polish import PolishSamples, polish_
from ._step import FitState
from ._uncertainty import moment_check, parameter_covariance, with_resolution_fallback

if TYPE_CHECKING:  # the estimator imports this module
    from ._fitter import AVOSimulatorFitter

# MomentRefinement(polish_simulations="auto"): at most this many, and none below the minimum.
_POLISH_MAX_AUTO, _POLISH_MIN_AUTO = 60_000, 2_000
# The level of the moment test of a polished point fit, as the two-sample tests'.
MOMENT_ALPHA = 0.01
# A polish whose model is less precise than this over its window, against the
# observations (PolishSamples.model_precision), is starved: its point's error is then
# the model's bias, which neither the standard errors nor a check of a tenth of the
# budget sees (measured in the user guide's "Choosing a simulation budget").
MIN_MODEL_PRECISION = 0.2


def polishes(refinement: MomentRefinement | None) -> bool:
    """Whether the final polish moves the location (a refined point fit)."""
    return refinement is not None and not (refinement.polish_simulations == 0 or (
        refinement.polish_simulations == "auto" and refinement.moment_step == 0))


def polish_samples(gamma: float, proposal: torch.nn.Module,
                   X_obs: np.ndarray) -> PolishSamples | None:
    """The collector of the last quarter's simulations for a point fit (gamma > 0,
    Gaussian proposal): the polish and the standard errors regress them."""
    if gamma <= 0 or not isinstance(proposal, GaussianProposalModule):
        return None
    return PolishSamples(X_obs)


def polish_point(fitter: AVOSimulatorFitter, state: FitState, summary) -> None:
    """:func:`._polish.polish_` on the proposal that :func:`finalize` will take.

    Sets ``state.moments`` (the standard errors' solution) and, where the polish moved
    the location, ``state.polish_shift``. Its simulations are counted in
    ``state.failures``, within the budget's ``polish_room``.
    """
    samples = state.polish
    if samples is None:
        return
    module = state.final_proposal()
    needed = samples.needed(module.n_parameters)
    move = polishes(fitter._refinement_spec())
    polish_simulations = move and fitter._refinement_spec().polish_simulations
    if not move:
        n = 0
    elif polish_simulations == "auto":
        n = int(np.clip(needed - samples.n_samples, 0, _POLISH_MAX_AUTO))
        if samples.n_samples + n < _POLISH_MIN_AUTO:
            n, move = 0, False
    else:
        n = polish_simulations

    room = state.plan.polish_room(state.failures.n_simulations)
    if room is not None:  # within max_simulations: the first round first
        n = min(n, room)
        if move and samples.n_samples + n < _POLISH_MIN_AUTO:
            n, move = 0, False
    rounds = iter(range(1_000))

    def simulate_features(thetas):  # a fresh stream per round
        result = fitter._simulate(thetas, np.random.SeedSequence(
            state.seed, spawn_key=(11, next(rounds))))
        state.failures.record(thetas, result)
        X = (fitter._features(result.X, summary).cpu().numpy() if result.ok.any()
             else None)
        return result.ok, X

    rng = np.random.default_rng(np.random.SeedSequence(state.seed, spawn_key=(10,)))
    later = max(needed // 2, _POLISH_MIN_AUTO) if move else 0  # re-centred rounds
    if room is not None:
        later = min(later, (room - n) // 2)
    with torch.no_grad():
        before = to_numpy(module.loc()).copy()
    state.moments = polish_(module, samples, state.floor.value(), (n, later, later),
                            rng, simulate_features, move=move)
    resolution = state.floor.resolution
    if state.moments is not None and resolution is not None:
        state.moments = with_resolution_fallback(state.moments, resolution.linear_model(),
                                                 samples.n_obs)
    if move and state.moments is not None:
        with torch.no_grad():
            state.polish_shift = to_numpy(module.loc()) - before


def finalize(fitter: AVOSimulatorFitter, X: np.ndarray, summary, state: FitState) -> None:
    """Set the fitted attributes from ``state``: only a fit that completed has them."""
    module = state.final_proposal()
    fitter.proposal_ = clone(fitter.proposal).fitted(module)
    fitter.theta_ = np.atleast_1d(fitter.proposal_.median())
    fitter.polish_shift_ = state.polish_shift
    fitter.covariance_ = (None if state.moments is None
                          else parameter_covariance(state.moments, module))
    fitter.standard_errors_ = (None if fitter.covariance_ is None
                               else np.sqrt(np.diag(fitter.covariance_)))
    fitter.scale_floor_ = next((h["scale_floor"] for h in reversed(state.history)
                                if "scale_floor" in h), None)
    fitter.summary_ = summary
    fitter.critic_ = state.critic
    fitter.proposal_net_ = state.proposal_net
    fitter.history_ = state.history
    fitter.n_iter_ = len(state.history)
    _set_counts(fitter, state)
    fitter._obs_mean, fitter._obs_scale = X.mean(0), column_scale(X)
    fitter._score_seed = int(np.random.SeedSequence(state.seed).generate_state(1)[0])


def _set_counts(fitter: AVOSimulatorFitter, state: FitState) -> None:
    """The simulation counts, set again after the check has run its own."""
    fitter.n_simulations_ = state.failures.n_simulations
    fitter.n_failed_simulations_ = state.failures.n_failed
    fitter.failed_parameters_ = state.failures.failed_array(len(fitter.theta_))
    fitter.failure_messages_ = state.failures.messages


def check_fit(fitter: AVOSimulatorFitter, state: FitState, summary,
              X_check: np.ndarray) -> None:
    """Two-sample check, location drift and resolution: ``converged_``, warnings.

    The warnings go through :func:`~sktilt._utils.warn_at_caller`, which skips every
    frame inside sktilt: they point at the user's call of ``fit``.
    """
    module = fitter.proposal_._module()
    rng = np.random.default_rng(np.random.SeedSequence(state.seed, spawn_key=(8,)))
    n = min(len(X_check), state.plan.n_check)
    # a point fit reports theta_: its data, not the proposal's smear, must match
    thetas = (np.tile(fitter.theta_, (n, 1)) if fitter.gamma > 0
              else to_numpy(module.sample(n, rng)))
    result = fitter._simulate(thetas, np.random.SeedSequence(state.seed, spawn_key=(9,)))
    state.failures.record(thetas, result)
    _set_counts(fitter, state)
    fitter.two_sample_ = fitter.marginal_test_ = fitter.classifier_test_ = None
    fitter.moment_test_ = None
    if result.ok.sum() >= 2:
        simulated = fitter._features(result.X, summary).cpu().numpy()
        fitter.two_sample_, fitter.marginal_test_, fitter.classifier_test_ = two_sample_tests(
            fitter._features(X_check, summary).cpu().numpy(), simulated, rng)
        if fitter.gamma > 0 and state.moments is not None:
            fitter.moment_test_ = moment_check(state.moments, state.polish.target,
                                               state.polish.features.transform(simulated))
    with torch.no_grad():
        spread = to_numpy(module.spread())
    floor = fitter.scale_floor_
    unresolved = [] if floor is None else np.flatnonzero(~np.isfinite(floor)).tolist()
    fitter.location_drift_ = location_drift(np.array([h["loc"] for h in fitter.history_]),
                                            spread)
    verdict = FitVerdict(
        fitter.two_sample_, fitter.marginal_test_, fitter.classifier_test_,
        # a polish re-anchors the point where the features meet the data: travel in
        # the last quarter is its work, and a polish cut short is checked instead
        fitter.location_drift_ if state.polish_shift is None
        else np.zeros_like(fitter.location_drift_),
        # a point fit's standard errors say which parameters the data do not identify
        [] if fitter.standard_errors_ is not None else unresolved,
        "at theta_" if fitter.gamma > 0 else "from the fitted proposal")
    fitter.unresolved_parameters_ = unresolved
    fitter.converged_ = verdict.converged
    for category, message in verdict.warnings():
        warn_at_caller(message, category)
    if fitter.moment_test_ is not None and fitter.moment_test_.p_value < MOMENT_ALPHA:
        fitter.converged_ = False
        step = np.round(fitter.moment_test_.step, 1).tolist()
        warn_at_caller(
            "AVO fit: data simulated at theta_ miss the observations' features along "
            f"the parameters (moment test p-value {fitter.moment_test_.p_value:.3g}; "
            f"one step toward their root moves theta_ by {step} standard errors): "
            "the polish's local model is off at theta_, so the point and its "
            "standard errors are not reliable; raise max_simulations or start "
            "closer.", FitQualityWarning)
    if (state.polish_shift is not None and state.moments is not None
            and state.moments.model_precision < MIN_MODEL_PRECISION):
        fitter.converged_ = False
        warn_at_caller(starved_message(fitter, state.moments.model_precision),
                       FitConvergenceWarning)
    if state.moments is not None and state.moments.at_edge:
        fitter.converged_ = False
        warn_at_caller("AVO fit: the polish's last solve stopped at the edge of the "
                       "region its simulations cover: theta_ is short of where the "
                       "simulated features meet the observed ones; raise max_iter or "
                       "start closer.", FitConvergenceWarning)
    if fitter.standard_errors_ is not None and not np.all(np.isfinite(
            fitter.standard_errors_)):
        fitter.converged_ = False
        warn_at_caller(
            "AVO fit: the observations do not identify parameter(s) "
            f"{np.flatnonzero(~np.isfinite(fitter.standard_errors_)).tolist()} near "
            "theta_ (their simulated features did not move beyond noise), or the "
            "polish had too few simulations to see them: their standard errors are "
            "infinite and theta_ there is not an estimate. If the model should "
            "identify them, raise max_simulations.",
            FitQualityWarning)


def starved_message(fitter: AVOSimulatorFitter, precision: float) -> str:
    """The warning of a polish whose model was starved of simulations, with the budget
    (or polish size) that would feed it."""
    factor = MIN_MODEL_PRECISION / precision
    if fitter.max_simulations is not None:
        fix = (f"raise max_simulations to about "
               f"{int(np.ceil(fitter.max_simulations * factor / 1000)) * 1000}")
    else:
        fix = ("raise refinement=MomentRefinement(polish_simulations=...) about "
               f"{factor:.1f}-fold")
    return ("AVO fit: the polish's model of the simulated features was "
            f"{precision:.2f} times as precise as the observations' mean (below "
            f"{MIN_MODEL_PRECISION}, a point can end several standard errors off while "
            "its other checks pass): theta_ and its standard errors are not reliable; "
            f"{fix}.")
