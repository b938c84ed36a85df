"""Boltzmann tuning of generative models (BTGM).

:class:`BoltzmannTuner` learns ``q_beta ∝ p exp(beta f)`` for a base model ``p`` and a
criterion ``f`` with a normalising flow, choosing beta so that ``KL(q_beta || p)`` meets a
budget. The private modules hold one piece each:

* ``_bases`` -- the base models ``p`` (:class:`LatentSampler`, :class:`GaussianBase`);
* ``_criteria`` -- ready-made criteria ``f`` and how any criterion is called;
* ``_flows`` -- the zuko flow ``q = T_# p``;
* ``_objective`` -- what the flow is trained on (reverse KL at a beta, weighted likelihood);
* ``_reference`` -- the importance-sampling reference of the exact tilt (BTGM App. C);
* ``_beta_search`` -- choosing beta (BTGM Sec. 3.1) and Algorithm 1's loop;
* ``_sampling`` -- draws of ``p`` and ``q`` and their statistics;
* ``_rare_events`` -- tail probabilities and tail samples with ``q`` as proposal;
* ``_tilted`` -- the methods of a fitted tilted model; ``_tuner`` -- the estimator.
"""

from ._bases import Base, GaussianBase, LatentSampler, as_base
from ._beta_search import BetaSearch, quantile_budget
from ._criteria import (
    ClassLogProbability,
    CurveMaximum,
    LinearCriterion,
    QuadraticCriterion,
    WindowContrast,
    WindowMean,
    evaluate_criterion,
)
from ._flows import FLOWS, GlobalAffine, TiltFlow, build_flow
from ._rare_events import TailEstimate, importance_tail_probability, sir_indices, sir_tail_sample
from ._reference import (
    TiltReference,
    pareto_front,
    reference_beta,
    resolvable_beta,
    tilted_moments,
)
from ._tuner import BoltzmannTuner

__all__ = [
    "FLOWS",
    "Base",
    "BetaSearch",
    "BoltzmannTuner",
    "ClassLogProbability",
    "CurveMaximum",
    "GaussianBase",
    "GlobalAffine",
    "LatentSampler",
    "LinearCriterion",
    "QuadraticCriterion",
    "TailEstimate",
    "TiltFlow",
    "TiltReference",
    "WindowContrast",
    "WindowMean",
    "as_base",
    "build_flow",
    "evaluate_criterion",
    "importance_tail_probability",
    "pareto_front",
    "quantile_budget",
    "reference_beta",
    "resolvable_beta",
    "sir_indices",
    "sir_tail_sample",
    "tilted_moments",
]
