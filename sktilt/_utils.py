"""Small helpers shared by every module: argument checks, frozen copies, chunked draws, MLPs."""

from __future__ import annotations

__all__ = [
    "check_device",
    "check_hidden_units",
    "call_with_parameters",
    "check_n_samples",
    "column_scale",
    "draw_in_chunks",
    "frozen_copy",
    "mlp",
    "to_numpy",
    "warn_at_caller",
]

import contextlib
import copy
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from numbers import Integral

import numpy as np
import torch
from torch import nn


def check_device(device, name: str = "device") -> torch.device:
    """``device`` as a :class:`torch.device` that exists on this machine.

    A CUDA (or MPS) device on a machine without one is a clear ``ValueError`` naming
    ``name``, not an ``AssertionError`` from deep inside torch at the first tensor.
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"{name}={device!r} is not a torch device; use e.g. 'cpu' or "
                         "'cuda'.") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{name}={device!r} but CUDA is not available on this machine; "
                             "use device='cpu'.")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"{name}={device!r} but this machine has "
                             f"{torch.cuda.device_count()} CUDA device(s); use an index "
                             f"below {torch.cuda.device_count()}.")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{name}={device!r} but MPS is not available; use device='cpu'.")
    return dev


def check_n_samples(n, name: str = "n_samples") -> int:
    """``n`` as a positive int; a clear ``ValueError`` naming ``name`` otherwise.

    Bools, floats (even integral ones like ``2.0``) and strings are rejected: a count given
    as ``2.5`` or ``"3"`` is a caller's mistake, not something to round.
    """
    if isinstance(n, bool) or not isinstance(n, Integral) or n < 1:
        raise ValueError(f"{name} must be a positive int, got {n!r}.")
    return int(n)


def check_hidden_units(hidden_units, name: str = "hidden_layer_sizes") -> tuple[int, ...]:
    """Hidden layer widths as a tuple of positive ints (a single int is one layer)."""
    try:
        units = tuple(hidden_units)
    except TypeError:
        units = (hidden_units,)
    if not all(isinstance(h, Integral) and not isinstance(h, bool) and h >= 1 for h in units):
        raise ValueError(f"{name} must be a sequence of positive ints, e.g. (64, 64); got "
                         f"{hidden_units!r}.")
    return tuple(int(h) for h in units)


def column_scale(X: np.ndarray) -> np.ndarray:
    """Per-column standard deviation of ``X`` (n, p), with 1 for a constant column,
    so that standardising never divides by zero."""
    std = np.asarray(X, dtype=float).std(0)
    return np.where(std > 0, std, 1.0)


def frozen_copy(module):
    """A deep copy of a torch module in eval mode with gradients off (non-modules as is).

    Models handed to an estimator (decoders, classifiers) are never modified: the
    estimator works on such a copy.
    """
    if not isinstance(module, nn.Module):
        return module
    frozen = copy.deepcopy(module)
    frozen.eval()
    for p in frozen.parameters():
        p.requires_grad_(False)
    return frozen


def mlp(n_in: int, hidden_units: Sequence[int], n_out: int, *, activation=nn.SiLU,
        dropout: float = 0.0) -> nn.Sequential:
    """A multi-layer perceptron ``n_in -> hidden_units -> n_out``."""
    layers: list[nn.Module] = []
    width = int(n_in)
    for h in hidden_units:
        layers += [nn.Linear(width, int(h)), activation()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = int(h)
    layers.append(nn.Linear(width, int(n_out)))
    return nn.Sequential(*layers)


def draw_in_chunks(n: int, chunk: int, draw: Callable[[int], tuple]) -> tuple:
    """Call ``draw(m)`` on chunks of at most ``chunk`` rows and stack the results.

    ``draw(m)`` returns a tuple of numpy arrays (or ``None`` entries) with ``m`` rows
    each. The outputs are allocated once, at the first chunk, so memory beyond them stays
    bounded by one chunk's intermediates whatever ``n`` is.
    """
    outputs: list = []
    for start in range(0, n, chunk):
        parts = draw(min(chunk, n - start))
        if not outputs:
            outputs = [None if p is None else np.empty((n,) + p.shape[1:], dtype=p.dtype)
                       for p in parts]
        for out, part in zip(outputs, parts):
            if out is not None:
                out[start:start + len(part)] = part
    return tuple(outputs)


def to_numpy(t: torch.Tensor, dtype=None) -> np.ndarray:
    """A detached CPU numpy copy of ``t`` (optionally cast)."""
    a = t.detach().cpu().numpy()
    return a if dtype is None else a.astype(dtype, copy=False)


class _FunctionOf(nn.Module):
    # functional_call swaps a module's parameters for the duration of its forward:
    # route that forward to an arbitrary function of the module.
    def __init__(self, module: nn.Module, fn: Callable):
        super().__init__()
        self.module = module
        self.fn = fn

    def forward(self, *args):
        return self.fn(self.module, *args)


def call_with_parameters(module: nn.Module, fn: Callable, parameters: dict, *args):
    """``fn(module, *args)`` with ``module``'s parameters replaced by ``parameters``.

    ``parameters`` maps names of ``module.named_parameters()`` to tensors (e.g. detached
    copies, or the per-sample inputs of :func:`torch.func.grad`). The whole of ``fn``
    runs with the replacement, which matters for zuko flows: their transforms evaluate
    hyper-networks lazily, after the distribution is built.
    """
    wrapper = _FunctionOf(module, fn)
    named = {f"module.{k}": v for k, v in parameters.items()}
    return torch.func.functional_call(wrapper, named, args)


# Packages whose frames stand between a warning and the user's line: sktilt's own
# helpers, scikit-learn's ``_fit_context`` wrapper around ``fit``, skorch's loops,
# torch's ``no_grad`` decorators and joblib's dispatch.
_INTERNAL_PACKAGES = ("sktilt", "sklearn", "skorch", "torch", "joblib")


def _internal_prefixes() -> tuple[str, ...]:
    prefixes = [os.path.splitext(contextlib.__file__)[0]]  # @contextmanager frames
    for name in _INTERNAL_PACKAGES:
        file = getattr(sys.modules.get(name), "__file__", None)
        if file:
            prefixes.append(os.path.dirname(file) + os.sep)
    return tuple(prefixes)


def warn_at_caller(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` attributed to the first frame outside sktilt and the libraries
    it calls through: the user's line that called ``fit``, ``sample``, ...

    A fixed ``stacklevel`` cannot do this: the depth between a warning and the user's
    call varies (scikit-learn's ``_fit_context`` wraps ``fit``; a refiner fits a tuner
    inside its own ``fit``), and a wrong count points at ``sklearn/base.py``. The stack
    is walked explicitly, which works on every supported Python (3.12's
    ``skip_file_prefixes`` does the same).
    """
    prefixes = _internal_prefixes()
    frame, level = sys._getframe(1), 2  # level 2: the caller of this function
    while frame.f_back is not None and frame.f_code.co_filename.startswith(prefixes):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)

