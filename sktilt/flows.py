"""Deprecated: moved to :mod:`sktilt.tilt` in sktilt 0.2; removed in 0.3."""

from ._deprecation import moved

__getattr__, __dir__ = moved(
    __name__,
    {"FLOWS": "sktilt.tilt"},
    {"GlobalAffine": "the tuned model starts from a Gaussian mixture "
                     "(sktilt.tilt.build_flow, TiltFlow.init_mixture_).",
     "build_transform": "use sktilt.tilt.build_flow (a zuko flow over the base).",
     "zero_init_": "flows are identity-initialised by sktilt.tilt.build_flow."},
)
