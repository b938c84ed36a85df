"""Type aliases of the public constructors' parameters (the package ships ``py.typed``).

They describe what the estimators accept, as their docstrings do; they are not checked at
run time (scikit-learn's ``_parameter_constraints`` and the ``_check_*`` helpers are).
"""

from __future__ import annotations

__all__ = ["Bounds", "ConstraintSpec", "CriterionFunction", "Device", "RandomStateLike"]

from collections.abc import Callable, Sequence
from typing import Literal, Optional, Union

import numpy as np
import torch

# Union[...] rather than X | Y: these aliases are evaluated at import, on Python 3.10 too
# (np.random.RandomState | None is fine there, but a string forward reference is not).
RandomStateLike = Union[int, np.random.RandomState, None]
Device = Union[str, torch.device]
# A criterion or constraint function: a batch of samples (n, ...) to values (n,).
CriterionFunction = Callable[[torch.Tensor], torch.Tensor]
# One constraint ``E_q g (op) value``.
ConstraintSpec = tuple[CriterionFunction, Literal["<=", ">=", "=="], float]
# Parameter ranges of a proposal: "positive", or one (low, high) pair per parameter whose
# None entries or sides mean unbounded.
Bounds = Union[Literal["positive"], Sequence[Union[tuple[Optional[float], Optional[float]], None]],
               None]
