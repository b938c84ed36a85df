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

__version__ = "0.2.0"

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the same names, eagerly, for type checkers and IDEs
    from ._config import config_context, get_config, set_config
    from .avo import (
        AVOSimulatorFitter,
        Critic,
        FitConvergenceWarning,
        FitQualityWarning,
        FlowProposal,
        GaussianProposal,
        MomentRefinement,
    )
    from .metrics import (
        energy_distance,
    )
    from .models import (
        TorchClassifier,
        VAE,
        class_log_probability,
    )
    from .simulation import (
        SimulationError,
        SimulationFailureWarning,
        SimulationResult,
        SimulationWorkerError,
        Simulator,
        simulate,
    )
    from .tilt import (
        AdversarialRefiner,
        BoltzmannPath,
        BoltzmannTuner,
        ClassLogProbability,
        CurveMaximum,
        GaussianBase,
        LatentSampler,
        LinearCriterion,
        QuadraticCriterion,
        TiltQualityWarning,
        WindowContrast,
        WindowMean,
        quantile_budget,
    )


# The names below are imported on first use (PEP 562), so that ``import sktilt`` and
# ``sktilt --version`` do not import torch (3-10 s cold); ``from sktilt import X`` and
# ``sktilt.X`` work as before.
_LAZY = {
    "config_context": "_config", "get_config": "_config", "set_config": "_config",
    "AVOSimulatorFitter": "avo", "FlowProposal": "avo", "GaussianProposal": "avo",
    "Critic": "avo", "MomentRefinement": "avo", "FitQualityWarning": "avo",
    "FitConvergenceWarning": "avo",
    "energy_distance": "metrics",
    "VAE": "models", "TorchClassifier": "models", "class_log_probability": "models",
    "SimulationError": "simulation", "SimulationFailureWarning": "simulation",
    "SimulationResult": "simulation", "SimulationWorkerError": "simulation",
    "Simulator": "simulation", "simulate": "simulation",
    "AdversarialRefiner": "tilt", "BoltzmannPath": "tilt", "BoltzmannTuner": "tilt",
    "TiltQualityWarning": "tilt", "ClassLogProbability": "tilt", "CurveMaximum": "tilt",
    "GaussianBase": "tilt", "LatentSampler": "tilt", "LinearCriterion": "tilt",
    "QuadraticCriterion": "tilt", "WindowContrast": "tilt", "WindowMean": "tilt",
    "quantile_budget": "tilt",
}


def __getattr__(name):
    import importlib

    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    if not name.startswith("__"):  # a submodule, e.g. sktilt.tilt after import sktilt
        try:
            return importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "AVOSimulatorFitter",
    "AdversarialRefiner",
    "BoltzmannPath",
    "BoltzmannTuner",
    "ClassLogProbability",
    "Critic",
    "CurveMaximum",
    "FitConvergenceWarning",
    "FitQualityWarning",
    "GaussianBase",
    "FlowProposal",
    "GaussianProposal",
    "LatentSampler",
    "LinearCriterion",
    "MomentRefinement",
    "QuadraticCriterion",
    "SimulationError",
    "SimulationFailureWarning",
    "SimulationResult",
    "SimulationWorkerError",
    "Simulator",
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
