"""sktilt: tilt generative models and simulators with a scikit-learn API.

* :class:`BoltzmannTuner` learns ``q_beta ~ p * exp(beta * f)`` for a trained generative
  model ``p`` and a criterion ``f`` (Boltzmann tuning, BTGM).
* :class:`AVOSimulatorFitter` fits a proposal over the parameters of a black-box
  simulator so that simulated data match observations (adversarial variational
  optimization, AVO).
"""

__version__ = "0.1.0.dev0"

# --- BoltzmannTuner ---
from .beta import quantile_budget
from .boltzmann import BoltzmannTuner
from .samplers import LatentSampler
from .vae import VAE
from .classifier import TorchClassifier, class_log_probability

# --- AVOSimulatorFitter ---
from .avo import AVOSimulatorFitter, SimulationFailureWarning
from .metrics import energy_distance
from .proposals import GaussianProposal
from .simulation import SimulationError, SimulationResult, SimulationWorkerError, simulate

__all__ = [
    "AVOSimulatorFitter",
    "GaussianProposal",
    "SimulationError",
    "SimulationFailureWarning",
    "SimulationResult",
    "SimulationWorkerError",
    "energy_distance",
    "simulate",
    "BoltzmannTuner",
    "LatentSampler",
    "TorchClassifier",
    "VAE",
    "class_log_probability",
    "quantile_budget",
]
