"""Boltzmann tuning of generative models (BTGM).

:class:`BoltzmannTuner` learns ``q_beta ∝ p exp(beta f)`` for a base model ``p`` and a
criterion ``f`` with a normalising flow, choosing beta so that ``KL(q_beta || p)`` meets a
budget. The private modules hold one piece each:

* ``_bases`` -- the base models ``p`` (:class:`LatentSampler`, :class:`GaussianBase`);
* ``_sklearn_bases`` -- scikit-learn density estimators as bases (:class:`MixtureBase`);
* ``_criteria`` -- ready-made criteria ``f`` and how any criterion is called;
* ``_flows`` -- the tuned model ``q = T_# M``, a Gaussian mixture through zuko layers;
* ``_objective`` -- what the flow is trained on (reverse KL at a beta, weighted likelihood);
* ``_reference`` -- the importance-sampling reference of the exact tilt (BTGM App. C);
* ``_beta_search`` -- steering beta to the budget while the flow trains (BTGM Sec. 3.1);
* ``_sampling`` -- draws of ``p`` and ``q`` and their statistics;
* ``_rare_events`` -- tail probabilities and tail samples with ``q`` as proposal;
* ``_tilted`` -- the methods of a fitted tilted model; ``_tuner`` -- the estimator;
* ``_path`` -- :class:`BoltzmannPath`, one beta-conditioned fit for the whole path;
* ``_refiner`` -- :class:`AdversarialRefiner`, tilts toward data by calibrated
  discriminators at beta = 1 (BTGM Sec. 4.4).
"""

from ._bases import Base, GaussianBase, LatentSampler, as_base
from ._sklearn_bases import MixtureBase
from ._beta_search import BetaController, quantile_budget
from ._criteria import (
    ClassLogProbability,
    CurveMaximum,
    LinearCriterion,
    QuadraticCriterion,
    WindowContrast,
    WindowMean,
    evaluate_criterion,
)
from ._flows import FLOWS, CouplingLayer, TiltFlow, build_flow
from ._rare_events import TailEstimate, importance_tail_probability, sir_indices, sir_tail_sample
from ._reference import (
    ImportanceDiagnostics,
    TiltQualityWarning,
    TiltReference,
    importance_diagnostics,
    pareto_front,
    pareto_k,
    reference_beta,
    resolvable_beta,
    tilted_moments,
)
from ._path import BoltzmannPath, ConditionedFlow, TiltedModel
from ._tuner import BoltzmannTuner
from ._refiner import AdversarialRefiner, LogDensityRatio

__all__ = [
    "FLOWS",
    "AdversarialRefiner",
    "Base",
    "BetaController",
    "BoltzmannPath",
    "BoltzmannTuner",
    "ConditionedFlow",
    "ClassLogProbability",
    "CurveMaximum",
    "GaussianBase",
    "CouplingLayer",
    "LatentSampler",
    "LinearCriterion",
    "LogDensityRatio",
    "MixtureBase",
    "QuadraticCriterion",
    "TailEstimate",
    "ImportanceDiagnostics",
    "TiltFlow",
    "TiltQualityWarning",
    "TiltReference",
    "TiltedModel",
    "WindowContrast",
    "WindowMean",
    "as_base",
    "build_flow",
    "evaluate_criterion",
    "importance_diagnostics",
    "importance_tail_probability",
    "pareto_front",
    "pareto_k",
    "quantile_budget",
    "reference_beta",
    "resolvable_beta",
    "sir_indices",
    "sir_tail_sample",
    "tilted_moments",
]
