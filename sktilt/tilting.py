"""Deprecated: moved to :mod:`sktilt.tilt` in sktilt 0.2; removed in 0.3."""

from ._deprecation import moved

__getattr__, __dir__ = moved(
    __name__,
    {"TiltFlow": "sktilt.tilt._flows",
     "draw_base": "sktilt.tilt._sampling",
     "draw_defensive": "sktilt.tilt._sampling",
     "evaluate_criterion": "sktilt.tilt._criteria",
     "tilted_samples": "sktilt.tilt._sampling"},
    {"moment_match_init": "use sktilt.tilt._sampling.init_mixture.",
     "TiltNet": "the flow is trained by sktilt._training.StepNet on "
                "sktilt.tilt._objective.TiltObjective.",
     "draw_tilted": "use sktilt.tilt._sampling.draw_flow.",
     "flow_statistics": "use sktilt.tilt._sampling.FlowStatistics.from_draws."},
)
