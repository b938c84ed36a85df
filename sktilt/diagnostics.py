"""Deprecated: moved to :mod:`sktilt.tilt` in sktilt 0.2; removed in 0.3."""

from ._deprecation import moved

__getattr__, __dir__ = moved(
    __name__,
    {"TiltReference": "sktilt.tilt",
     "pareto_front": "sktilt.tilt._reference",
     "reference_beta": "sktilt.tilt._reference",
     "resolvable_beta": "sktilt.tilt._reference",
     "tilted_moments": "sktilt.tilt._reference"},
)
