"""sktilt: tilt generative models and simulators with a scikit-learn API.

* :class:`BoltzmannTuner` learns ``q_beta ~ p * exp(beta * f)`` for a trained generative
  model ``p`` and a criterion ``f`` (Boltzmann tuning, BTGM; :mod:`sktilt.tilt`).
* :class:`AVOSimulatorFitter` fits a proposal over the parameters of a black-box
  simulator so that simulated data match observations (adversarial variational
  optimization, AVO; :mod:`sktilt.avo`).

Both fit a distribution toward a variational target on one engine: torch distributions
trained by one skorch layer (``sktilt._training``), with pathwise or score-function
gradients (:mod:`sktilt.gradients`) and a joblib simulation engine
(:mod:`sktilt.simulation`). :mod:`sktilt.models` holds trainable base models and
classifiers, :mod:`sktilt.datasets` data and benchmark simulators.
:func:`set_config` sets how many torch threads the fits use (one by default).
"""

__version__ = "0.2.0.dev0"

from ._config import config_context, get_config, set_config
from .avo import AVOSimulatorFitter, FlowProposal, GaussianProposal
from .metrics import energy_distance
from .models import VAE, TorchClassifier, class_log_probability
from .simulation import (
    SimulationError,
    SimulationFailureWarning,
    SimulationResult,
    SimulationWorkerError,
    simulate,
)
from .tilt import (
    AdversarialRefiner,
    BoltzmannPath,
    BoltzmannTuner,
    TiltQualityWarning,
    ClassLogProbability,
    CurveMaximum,
    GaussianBase,
    LatentSampler,
    LinearCriterion,
    QuadraticCriterion,
    WindowContrast,
    WindowMean,
    quantile_budget,
)

__all__ = [
    "AVOSimulatorFitter",
    "AdversarialRefiner",
    "BoltzmannPath",
    "BoltzmannTuner",
    "ClassLogProbability",
    "CurveMaximum",
    "GaussianBase",
    "FlowProposal",
    "GaussianProposal",
    "LatentSampler",
    "LinearCriterion",
    "QuadraticCriterion",
    "SimulationError",
    "SimulationFailureWarning",
    "SimulationResult",
    "SimulationWorkerError",
    "TiltQualityWarning",
    "TorchClassifier",
    "VAE",
    "WindowContrast",
    "WindowMean",
    "class_log_probability",
    "config_context",
    "energy_distance",
    "get_config",
    "quantile_budget",
    "set_config",
    "simulate",
]
