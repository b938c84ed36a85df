"""Adversarial variational optimization (AVO) of black-box simulators.

:class:`AVOSimulatorFitter` fits a proposal ``q_psi(theta)`` over a simulator's
parameters so that data simulated with ``theta ~ q_psi`` match the observations. The
public names are the estimator, the specs of its parts (proposals, :class:`Critic`,
:class:`MomentRefinement`) and its warnings; the private modules hold one piece each:

* ``_proposals`` -- proposal specs (:class:`GaussianProposal`) that build torch modules;
* ``_gaussian`` -- the Gaussian proposal module and its box bijection;
* ``_flow`` -- the normalizing-flow proposal (:class:`FlowProposal`);
* ``_critics`` -- the critic and its losses (WGAN-GP, WGAN-LP, R1);
* ``_parts`` -- the specs of the fitter's parts (:class:`Critic`, :class:`MomentRefinement`);
* ``_step`` -- one update: the proposal objective (Eq. 12 + 15), the gamma schedule,
  iterate averaging;
* ``_checks`` -- checks of a finished fit (two-sample tests, location drift);
* ``_resolution`` -- how precisely the data pin each parameter (the floor on the spread);
* ``_simulated`` -- the methods of a fitted model; ``_fitter`` -- the estimator.
"""

import typing as _typing

from .._deprecation import made_private as _made_private
from ..simulation import SimulationFailureWarning
from ._checks import FitConvergenceWarning, FitQualityWarning
from ._fitter import AVOSimulatorFitter
from ._flow import FlowProposal
from ._parts import Critic, MomentRefinement
from ._proposals import GaussianProposal, Proposal

__all__ = [
    "AVOSimulatorFitter",
    "Critic",
    "FitConvergenceWarning",
    "FitQualityWarning",
    "FlowProposal",
    "GaussianProposal",
    "MomentRefinement",
    "Proposal",
    "SimulationFailureWarning",
]

# Internals that were exported here until 0.2: they resolve, with a DeprecationWarning,
# until sktilt 0.3 (see sktilt._deprecation.made_private). Type checkers do not see
# the hook, so that they flag the old spellings and typos.
if not _typing.TYPE_CHECKING:
    __getattr__, __dir__ = _made_private(__name__, {
        "PENALTIES": f"{__name__}._critics",
        "CriticModule": f"{__name__}._critics",
        "CriticObjective": f"{__name__}._critics",
        "critic_loss": f"{__name__}._critics",
        "generator_values": f"{__name__}._critics",
        "FlowProposalModule": f"{__name__}._flow",
        "GaussianProposalModule": f"{__name__}._gaussian",
        "box_transform": f"{__name__}._gaussian",
        "ParameterResolution": f"{__name__}._resolution",
        "ScaleFloor": f"{__name__}._resolution",
        "ProposalObjective": f"{__name__}._step",
        "annealed_gamma": f"{__name__}._step",
        "polynomial_average": f"{__name__}._step",
        "location_drift": f"{__name__}._checks",
    }, __all__)
