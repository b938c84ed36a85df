"""Criteria ``f``: ready-made, picklable, grid-searchable objects, and how any is called.

A criterion maps a torch batch in instance space, shape ``(n, ...)``, to a tensor of
shape ``(n,)``; larger is "more interesting". Any callable works with
:class:`~sktilt.BoltzmannTuner`; these are scikit-learn-style objects (``get_params``)
so they pickle, clone and can be grid-searched
(``GridSearchCV(tuner, {"criterion__temperature": [...]})``).

All are differentiable, so the tuner uses pathwise gradients with them.
:func:`evaluate_criterion` calls any criterion with the checks that name the parameter,
and :func:`detect_gradient` tells whether pathwise gradients are available.
"""

from __future__ import annotations

__all__ = [
    "ClassLogProbability",
    "CurveMaximum",
    "LinearCriterion",
    "QuadraticCriterion",
    "WindowContrast",
    "WindowMean",
    "detect_gradient",
    "evaluate_criterion",
]

import numpy as np
import torch
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator


def _flat(X: torch.Tensor) -> torch.Tensor:
    return X.reshape(X.shape[0], -1)


class _Criterion(BaseEstimator):
    """Base class: a criterion is a parameterised callable ``(n, ...) -> (n,)``."""


class LinearCriterion(_Criterion):
    """Linear criterion ``f(x) = a^T x`` of the flattened input.

    With a standard normal base, ``q_beta = N(beta a, I)`` and
    ``KL = beta^2 |a|^2 / 2``: the exact reference case.

    Parameters
    ----------
    direction : array-like of shape (n_features,) or None, default=None
        The vector ``a``; ``None`` means the all-ones vector (the sum of the
        coordinates).
    """

    def __init__(self, direction: ArrayLike | None = None) -> None:
        self.direction = direction

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        X = _flat(X)
        if self.direction is None:
            return X.sum(-1)
        a = torch.as_tensor(np.asarray(self.direction), dtype=X.dtype, device=X.device)
        return X @ a


class QuadraticCriterion(_Criterion):
    """Quadratic criterion ``f(x) = -|x - center|^2 / 2``: pulls mass toward ``center``.

    With a standard normal base, ``q_beta = N(beta c / (1 + beta), I / (1 + beta))``.

    Parameters
    ----------
    center : array-like of shape (n_features,) or None, default=None
        The point ``c``; ``None`` means the origin.
    """

    def __init__(self, center: ArrayLike | None = None) -> None:
        self.center = center

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        X = _flat(X)
        if self.center is not None:
            X = X - torch.as_tensor(np.asarray(self.center), dtype=X.dtype, device=X.device)
        return -0.5 * (X**2).sum(-1)


class CurveMaximum(_Criterion):
    """The maximum of a curve (e.g. a weekly load curve's peak).

    Parameters
    ----------
    temperature : float or None, default=None
        ``None`` takes the exact max (its gradient flows to the arg-max only); a
        positive value takes the smooth maximum ``t * logsumexp(x / t)``, whose gradient
        spreads over near-maximal points.
    log : bool, default=False
        Return ``log`` of the maximum (positive curves). A heavy-tailed model, e.g. a
        log-normal observation model, has ``E_p exp(beta max x) = inf``: the tilt of the
        peak itself does not exist, that of its log does (``exp(beta log m) = m^beta``),
        and tilts toward the same extreme weeks. Thresholds are then ``log`` kW.
    """

    def __init__(self, temperature: float | None = None, log: bool = False) -> None:
        self.temperature = temperature
        self.log = log

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        X = _flat(X)
        if self.temperature is None:
            m = X.max(-1).values
        else:
            t = float(self.temperature)
            m = t * torch.logsumexp(X / t, -1)
        return m.log() if self.log else m


class WindowMean(_Criterion):
    """Mean of the curve over positions ``[start, stop)`` (e.g. one day of a week).

    Parameters
    ----------
    start : int, default=0
        First position of the window.
    stop : int or None, default=None
        End of the window (excluded); ``None`` means the end of the curve.
    """

    def __init__(self, start: int = 0, stop: int | None = None) -> None:
        self.start = start
        self.stop = stop

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        return _flat(X)[:, self.start:self.stop].mean(-1)


class WindowContrast(WindowMean):
    """Mean over ``[start, stop)`` minus the mean over the whole curve (BTGM f2).

    Parameters
    ----------
    start : int, default=0
        First position of the window.
    stop : int or None, default=None
        End of the window (excluded); ``None`` means the end of the curve.
    """

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        return super().__call__(X) - _flat(X).mean(-1)


class ClassLogProbability(_Criterion):
    """Criterion ``log h(label | x)`` of a torch classifier that returns logits.

    The criterion of BTGM Sec. 4.1: ``q_beta ∝ p h(label | x)^beta``, and beta = 1 is
    the conditional model when ``h`` is calibrated. Prefer it to the raw probability,
    whose gradient vanishes away from the class boundary (BTGM Sec. 4.2).

    Parameters
    ----------
    classifier : torch.nn.Module
        Maps ``(n, ...)`` to logits ``(n, n_classes)``. Used in eval mode.
    label : int
        Target class.
    """

    def __init__(self, classifier: torch.nn.Module, label: int = 0) -> None:
        self.classifier = classifier
        self.label = label

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        if isinstance(self.classifier, torch.nn.Module):
            self.classifier.eval()
        logits = self.classifier(X)
        return torch.log_softmax(logits, -1)[:, int(self.label)]


def evaluate_criterion(criterion, x: torch.Tensor, *, check: bool = False) -> torch.Tensor:
    """Call ``criterion`` on a batch and return a float tensor of shape ``(n,)``.

    numpy outputs are accepted (non-differentiable criteria). With ``check=True`` the
    shape and finiteness are validated with errors that name the parameter.
    """
    out = criterion(x)
    if not isinstance(out, torch.Tensor):
        if isinstance(out, (list, tuple)):
            # A list of tensors would lose its gradient (or fail inside numpy): say so.
            raise TypeError(
                f"criterion must return a tensor or numpy array of shape (n,), got a "
                f"{type(out).__name__} of {len(out)} items; return torch.stack(values) "
                "(differentiable) or np.asarray(values).")
        try:
            out = torch.as_tensor(np.asarray(out, dtype=np.float32), device=x.device)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise TypeError(
                f"criterion must return a tensor or array of shape (n,), got "
                f"{type(out).__name__}."
            ) from exc
    n = x.shape[0]
    if check:
        if out.shape != (n,):
            raise ValueError(
                f"criterion must map a batch of shape (n, ...) to shape (n,); for n={n} "
                f"it returned shape {tuple(out.shape)}. Reduce over the other axes "
                "(e.g. return x.max(dim=1).values)."
            )
        bad = ~torch.isfinite(out.detach())
        if bad.any():
            raise ValueError(
                f"criterion returned {int(bad.sum())} non-finite value(s) (NaN or inf) out "
                f"of {n} on samples of the base model; it must be finite everywhere p has "
                "mass (clip or regularise it, e.g. log(h + eps))."
            )
    return out.to(torch.float32).reshape(n)


def detect_gradient(criterion, x: torch.Tensor, requested: str = "auto") -> str:
    """``"pathwise"`` or ``"score"``: the estimator of the criterion's gradient to use.

    ``x`` is a small batch in instance space computed from flow-space points that require
    gradients; the criterion is differentiable when its output carries a gradient path
    to them. ``requested`` is the user's choice (``"auto"``, ``"pathwise"`` or
    ``"score"``); ``"pathwise"`` on a non-differentiable criterion is an error.
    """
    out = criterion(x)
    evaluate_criterion(lambda _: out, x, check=True)
    differentiable = isinstance(out, torch.Tensor) and out.requires_grad
    if requested == "pathwise" and not differentiable:
        raise ValueError(
            "gradient='pathwise' needs a differentiable criterion returning a torch "
            "tensor with a gradient path to its input; use gradient='auto' or 'score'."
        )
    if requested == "score" or not differentiable:
        return "score"
    return "pathwise"
