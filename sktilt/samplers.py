"""Deprecated: moved to :mod:`sktilt.tilt` in sktilt 0.2; removed in 0.3."""

from ._deprecation import moved

__getattr__, __dir__ = moved(
    __name__,
    {"Base": "sktilt.tilt",
     "GaussianBase": "sktilt.tilt",
     "LatentSampler": "sktilt.tilt",
     "as_base": "sktilt.tilt._bases"},
)
