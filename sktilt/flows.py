"""Deprecated: moved to :mod:`sktilt.tilt` in sktilt 0.2; removed in 0.3."""

from ._deprecation import moved

__getattr__, __dir__ = moved(
    __name__,
    {"FLOWS": "sktilt.tilt._flows"},
    {"GlobalAffine": "the tuned model starts from a Gaussian mixture "
                     "(sktilt.tilt._flows.build_flow, TiltFlow.init_mixture_).",
     "build_transform": "use sktilt.tilt._flows.build_flow (a zuko flow over the base).",
     "zero_init_": "flows are identity-initialised by sktilt.tilt._flows.build_flow."},
)
