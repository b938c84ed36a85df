"""Deprecated: moved to :mod:`sktilt.tilt` in sktilt 0.2; removed in 0.3."""

from ._deprecation import moved

__getattr__, __dir__ = moved(
    __name__,
    {"TailEstimate": "sktilt.tilt",
     "importance_tail_probability": "sktilt.tilt._rare_events",
     "sir_indices": "sktilt.tilt._rare_events",
     "sir_tail_sample": "sktilt.tilt._rare_events"},
)
