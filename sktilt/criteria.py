"""Ready-made criteria ``f``: picklable, grid-searchable objects.

A criterion maps a torch batch in instance space, shape ``(n, ...)``, to a tensor of
shape ``(n,)``; larger is "more interesting". Any callable works with
:class:`~sktilt.BoltzmannTuner`; these are scikit-learn-style objects (``get_params``)
so they pickle, clone and can be grid-searched
(``GridSearchCV(tuner, {"criterion__temperature": [...]})``).

All are differentiable, so the tuner uses pathwise gradients with them.
"""

from __future__ import annotations

__all__ = [
    "ClassLogProbability",
    "CurveMaximum",
    "LinearCriterion",
    "QuadraticCriterion",
    "WindowContrast",
    "WindowMean",
]

import numpy as np
import torch
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

    def __init__(self, direction=None):
        self.direction = direction

    def __call__(self, X):
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

    def __init__(self, center=None):
        self.center = center

    def __call__(self, X):
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
    """

    def __init__(self, temperature=None):
        self.temperature = temperature

    def __call__(self, X):
        X = _flat(X)
        if self.temperature is None:
            return X.max(-1).values
        t = float(self.temperature)
        return t * torch.logsumexp(X / t, -1)


class WindowMean(_Criterion):
    """Mean of the curve over positions ``[start, stop)`` (e.g. one day of a week).

    Parameters
    ----------
    start : int, default=0
        First position of the window.
    stop : int or None, default=None
        End of the window (excluded); ``None`` means the end of the curve.
    """

    def __init__(self, start=0, stop=None):
        self.start = start
        self.stop = stop

    def __call__(self, X):
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

    def __call__(self, X):
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

    def __init__(self, classifier, label=0):
        self.classifier = classifier
        self.label = label

    def __call__(self, X):
        if isinstance(self.classifier, torch.nn.Module):
            self.classifier.eval()
        logits = self.classifier(X)
        return torch.log_softmax(logits, -1)[:, int(self.label)]
