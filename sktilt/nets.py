"""Deprecated: moved to :mod:`sktilt._training` in sktilt 0.2; removed in 0.3."""

from ._deprecation import moved

__getattr__, __dir__ = moved(
    __name__,
    {"DivergenceError": "sktilt._training",
     "EpochProgress": "sktilt._training",
     "LastGoodState": "sktilt._training",
     "StepNet": "sktilt._training"},
)
