"""Adversarial variational optimization (AVO) of black-box simulators.

:class:`AVOSimulatorFitter` fits a proposal ``q_psi(theta)`` over a simulator's
parameters so that data simulated with ``theta ~ q_psi`` match the observations. The
private modules hold one piece each:

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

from ..simulation import SimulationFailureWarning
from ._checks import FitConvergenceWarning, FitQualityWarning, location_drift
from ._critics import PENALTIES, CriticModule, CriticObjective, critic_loss, generator_values
from ._fitter import AVOSimulatorFitter
from ._parts import Critic, MomentRefinement
from ._flow import FlowProposal, FlowProposalModule
from ._gaussian import GaussianProposalModule, box_transform
from ._proposals import GaussianProposal, Proposal
from ._resolution import ParameterResolution, ScaleFloor
from ._step import ProposalObjective, annealed_gamma, polynomial_average

__all__ = [
    "PENALTIES",
    "AVOSimulatorFitter",
    "Critic",
    "CriticModule",
    "CriticObjective",
    "FitConvergenceWarning",
    "FitQualityWarning",
    "FlowProposal",
    "FlowProposalModule",
    "GaussianProposal",
    "GaussianProposalModule",
    "MomentRefinement",
    "ParameterResolution",
    "Proposal",
    "ProposalObjective",
    "ScaleFloor",
    "SimulationFailureWarning",
    "annealed_gamma",
    "box_transform",
    "critic_loss",
    "generator_values",
    "location_drift",
    "polynomial_average",
]
