"""Deprecated: moved to :mod:`sktilt.avo` in sktilt 0.2; removed in 0.3."""

from ._deprecation import moved

__getattr__, __dir__ = moved(
    __name__,
    {"CriticModule": "sktilt.avo._critics", "PENALTIES": "sktilt.avo._critics"},
    {"CriticNet": "the critic is trained by sktilt._training.StepNet on "
                  "sktilt.avo._critics.CriticObjective."},
)
