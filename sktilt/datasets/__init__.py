"""Data: load-curve generator and loaders (meters, SimBench), benchmark simulators."""

from ._meter import load_meter_curves
from ._simbench import load_simbench_curves
from ._synthetic import make_load_curves
from .simulators import (
    GAUSSIAN_COVARIANCE,
    gaussian_location_mle,
    gaussian_location_simulator,
    gaussian_location_simulator_batch,
    poisson_mle,
    poisson_simulator,
    poisson_simulator_batch,
    weinberg_c,
    weinberg_c_mle,
    weinberg_log_likelihood,
    weinberg_simulator,
    weinberg_simulator_batch,
)

__all__ = [
    "load_meter_curves",
    "load_simbench_curves",
    "make_load_curves",
    "GAUSSIAN_COVARIANCE",
    "gaussian_location_mle",
    "gaussian_location_simulator",
    "gaussian_location_simulator_batch",
    "poisson_mle",
    "poisson_simulator",
    "poisson_simulator_batch",
    "weinberg_c",
    "weinberg_c_mle",
    "weinberg_log_likelihood",
    "weinberg_simulator",
    "weinberg_simulator_batch",
]
