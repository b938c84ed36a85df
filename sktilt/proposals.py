"""Deprecated: moved to :mod:`sktilt.avo` in sktilt 0.2; removed in 0.3."""

from ._deprecation import moved

__getattr__, __dir__ = moved(
    __name__,
    {"GaussianProposal": "sktilt.avo"},
)
