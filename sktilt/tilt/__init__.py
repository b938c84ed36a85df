"""Boltzmann tuning of generative models (BTGM).

:class:`BoltzmannTuner` learns ``q_beta ∝ p exp(beta f)`` for a base model ``p`` and a
criterion ``f`` with a normalising flow, choosing beta so that ``KL(q_beta || p)`` meets a
budget. The public names are the estimators, the bases and criteria passed to them, the
results they return (:class:`TiltedModel`, :class:`TailEstimate`, the ``reference_`` and
``diagnostics_`` types), :func:`quantile_budget` and :class:`TiltQualityWarning`; the
private modules hold one piece each:

* ``_bases`` -- the base models ``p`` (:class:`LatentSampler`, :class:`GaussianBase`);
* ``_sklearn_bases`` -- scikit-learn density estimators as bases (``MixtureBase``);
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

import typing as _typing

from .._deprecation import made_private as _made_private
from ._bases import Base, GaussianBase, LatentSampler
from ._beta_search import quantile_budget
from ._criteria import (
    ClassLogProbability,
    CurveMaximum,
    LinearCriterion,
    QuadraticCriterion,
    WindowContrast,
    WindowMean,
)
from ._rare_events import TailEstimate
from ._reference import ImportanceDiagnostics, TiltQualityWarning, TiltReference
from ._path import BoltzmannPath, TiltedModel
from ._tuner import BoltzmannTuner
from ._refiner import AdversarialRefiner, LogDensityRatio

__all__ = [
    "AdversarialRefiner",
    "Base",
    "BoltzmannPath",
    "BoltzmannTuner",
    "ClassLogProbability",
    "CurveMaximum",
    "GaussianBase",
    "ImportanceDiagnostics",
    "LatentSampler",
    "LinearCriterion",
    "LogDensityRatio",
    "QuadraticCriterion",
    "TailEstimate",
    "TiltQualityWarning",
    "TiltReference",
    "TiltedModel",
    "WindowContrast",
    "WindowMean",
    "quantile_budget",
]

# Internals that were exported here until 0.2: they resolve, with a DeprecationWarning,
# until sktilt 0.3 (see sktilt._deprecation.made_private). Type checkers do not see
# the hook, so that they flag the old spellings and typos.
if not _typing.TYPE_CHECKING:
    __getattr__, __dir__ = _made_private(__name__, {
        "as_base": f"{__name__}._bases",
        "BetaController": f"{__name__}._beta_search",
        "evaluate_criterion": f"{__name__}._criteria",
        "FLOWS": f"{__name__}._flows",
        "CouplingLayer": f"{__name__}._flows",
        "TiltFlow": f"{__name__}._flows",
        "build_flow": f"{__name__}._flows",
        "ConditionedFlow": f"{__name__}._path",
        "importance_tail_probability": f"{__name__}._rare_events",
        "sir_indices": f"{__name__}._rare_events",
        "sir_tail_sample": f"{__name__}._rare_events",
        "importance_diagnostics": f"{__name__}._reference",
        "pareto_front": f"{__name__}._reference",
        "pareto_k": f"{__name__}._reference",
        "reference_beta": f"{__name__}._reference",
        "resolvable_beta": f"{__name__}._reference",
        "tilted_moments": f"{__name__}._reference",
        "MixtureBase": f"{__name__}._sklearn_bases",
    }, __all__)
