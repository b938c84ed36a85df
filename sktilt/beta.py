"""Deprecated: moved to :mod:`sktilt.tilt` in sktilt 0.2; removed in 0.3."""

from ._deprecation import moved

__getattr__, __dir__ = moved(
    __name__,
    {"quantile_budget": "sktilt.tilt"},
    {"BetaSearch": "beta is steered during training by sktilt.tilt._beta_search.BetaController."},
)
