"""Deprecated: moved to :mod:`sktilt.models` in sktilt 0.2; removed in 0.3."""

from ._deprecation import moved

__getattr__, __dir__ = moved(
    __name__,
    {"MLPClassifierModule": "sktilt.models",
     "TorchClassifier": "sktilt.models",
     "class_log_probability": "sktilt.models"},
)
