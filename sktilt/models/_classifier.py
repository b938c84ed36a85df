"""A small torch classifier whose logits give the criterion ``log h(label | x)``.

:class:`TorchClassifier` is a :class:`skorch.NeuralNetClassifier` (an MLP with input
standardisation inside the module). :meth:`~sktilt.TorchClassifier.logits_module` returns a
frozen torch module mapping raw ``x`` (the units of ``X``, hence of a
:class:`~sktilt.VAE`'s decoded samples) to logits, so that
``class_log_probability(clf, label)`` is the criterion of BTGM Sec. 4.1: tilting a
generative model ``p`` by ``h(label | x)^beta`` makes it generate that class.
"""

from __future__ import annotations

__all__ = ["MLPClassifierModule", "TorchClassifier", "class_log_probability"]

from collections.abc import Sequence
from numbers import Real
from typing import Any, Literal

import numpy as np
import torch
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from skorch import NeuralNetClassifier
from torch import nn

from .._config import torch_threads
from .._deprecation import DEPRECATED
from .._persistence import VersionedStateMixin
from .._random import draw_seed, torch_seeded
from .._typing import Device, RandomStateLike
from .._utils import check_hidden_units, frozen_copy, mlp, to_numpy
from ..tilt import ClassLogProbability
from ._skorch import SkorchModelMixin, inference_copy, standardization_stats


class MLPClassifierModule(nn.Module):
    """MLP mapping raw ``x`` to logits, standardising its input itself.

    Parameters
    ----------
    n_features, n_classes : int
        Inferred from the data by :class:`TorchClassifier`.
    hidden_units : tuple of int, default=(128,)
    dropout : float, default=0.1
        Dropout after each hidden layer (training only).
    """

    def __init__(self, n_features: int, n_classes: int,
                 hidden_units: Sequence[int] = (128,), dropout: float = 0.1):
        super().__init__()
        self.net = mlp(n_features, hidden_units, n_classes, dropout=dropout)
        self.register_buffer("shift", torch.zeros(int(n_features)))
        self.register_buffer("scale", torch.ones(int(n_features)))
        self.register_buffer("trained", torch.tensor(False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # flatten so that image-shaped batches (n, 8, 8) work as criteria inputs
        return self.net((x.reshape(x.shape[0], -1) - self.shift) / self.scale)


class TorchClassifier(VersionedStateMixin, SkorchModelMixin, NeuralNetClassifier):
    """Small MLP classifier (skorch) usable as the criterion ``log h(label | x)``.

    Parameters
    ----------
    module : torch module class or instance, default=MLPClassifierModule
        Called with ``n_features``, ``n_classes`` (inferred), ``hidden_units`` (the
        value of ``hidden_layer_sizes``), ``dropout`` and any ``module__*`` parameters.
    hidden_layer_sizes : tuple of int, default=(128,)
        Widths of the MLP's hidden layers.
    dropout : float, default=0.1
    standardize : bool, default=True
        Standardise inputs inside the module, so the logits module takes raw ``x``.
    random_state : int, RandomState instance or None, default=None
        Seeds the weights, batch order and dropout of :meth:`fit` (forked torch RNG).
    criterion : default=torch.nn.CrossEntropyLoss
        The module returns logits; ``predict_proba`` applies the softmax.
    optimizer : default=torch.optim.Adam
    lr : float, default=1e-3
    max_iter : int, default=50
        Training epochs of :meth:`fit` (and of each :meth:`partial_fit`); skorch's
        ``max_epochs``.
    batch_size : int, default=64
    train_split : default=None
        Pass ``skorch.dataset.ValidSplit(5, stratified=True)`` for ``valid_acc``.
    verbose : int, default=0
    device : str, default="cpu"
    hidden_units : tuple of int
        .. deprecated:: 0.2
           Use ``hidden_layer_sizes``; removed in 0.3.
    max_epochs : int
        .. deprecated:: 0.2
           Use ``max_iter``; removed in 0.3.
    **kwargs
        Other :class:`skorch.NeuralNetClassifier` parameters.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Labels seen in ``fit`` (any sortable labels; column order of
        ``predict_proba`` and of the logits).
    module_ : MLPClassifierModule
    n_features_in_ : int
    n_iter_ : int
        Epochs trained (``len(history)``).

    Examples
    --------
    >>> import torch
    >>> from sklearn.datasets import load_digits
    >>> from sktilt import TorchClassifier, class_log_probability
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = TorchClassifier(max_iter=5, random_state=0).fit(X[:500], y[:500])
    >>> criterion = class_log_probability(clf, 4)  # log h(4 | x), for BoltzmannTuner
    >>> criterion(torch.as_tensor(X[:3], dtype=torch.float32)).shape
    torch.Size([3])
    """

    def __init__(self, module: type[nn.Module] | nn.Module = MLPClassifierModule, *,
                 hidden_layer_sizes: Sequence[int] = (128,), dropout: float = 0.1,
                 standardize: bool = True,
                 random_state: RandomStateLike | np.random.Generator = None,
                 criterion: type[nn.Module] | nn.Module = nn.CrossEntropyLoss,
                 optimizer: type[torch.optim.Optimizer] = torch.optim.Adam,
                 lr: float = 1e-3, max_iter: int = 50, batch_size: int = 64,
                 train_split: Any = None, verbose: int = 0, device: Device = "cpu",
                 hidden_units: Sequence[int] | Literal["deprecated"] = DEPRECATED,
                 max_epochs: int | Literal["deprecated"] = DEPRECATED, **kwargs: Any) -> None:
        kwargs.setdefault("iterator_train__shuffle", True)
        # skorch's max_epochs holds the deprecated old name; fit_loop reads max_iter
        super().__init__(module, criterion=criterion, optimizer=optimizer, lr=lr,
                         max_epochs=max_epochs, batch_size=batch_size,
                         train_split=train_split, verbose=verbose, device=device, **kwargs)
        self.hidden_layer_sizes = hidden_layer_sizes
        self.max_iter = max_iter
        self.hidden_units = hidden_units
        self.dropout = dropout
        self.standardize = standardize
        self.random_state = random_state

    @property
    def classes_(self) -> np.ndarray:
        if self.classes is not None:
            return np.asarray(self.classes)
        try:
            return self.labels_
        except AttributeError:
            raise AttributeError("TorchClassifier has no classes_ before fit.") from None

    def _module_kwargs(self) -> dict:
        kwargs = {"hidden_units": check_hidden_units(self._param("hidden_layer_sizes")),
                  "dropout": float(self.dropout)}
        if hasattr(self, "n_features_in_"):
            kwargs["n_features"] = self.n_features_in_
        if hasattr(self, "labels_") or self.classes is not None:
            kwargs["n_classes"] = len(self.classes_)
        missing = {"n_features", "n_classes"} - set(kwargs) - set(self.get_params_for("module"))
        if missing:
            raise ValueError(f"TorchClassifier.initialize() needs {sorted(missing)}: call "
                             "fit(X, y), or pass module__n_features / module__n_classes.")
        return kwargs

    def _prepare_module(self, module) -> None:
        if hasattr(self, "data_stats_"):
            module.shift.copy_(torch.as_tensor(self.data_stats_[0]))
            module.scale.copy_(torch.as_tensor(self.data_stats_[1]))

    def _prepare(self, X, y, *, reset: bool, classes=None):
        """Validate ``X, y`` and encode ``y`` as class indices (setting up on reset)."""
        if not isinstance(self.dropout, Real) or not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be a float in [0, 1), got {self.dropout!r}.")
        self._check_training_params()
        X, y = validate_data(self, X, y, reset=reset, dtype=np.float32,
                             ensure_min_samples=2 if reset else 1)
        check_classification_targets(y)
        if reset:
            if self.classes is None:
                labels = np.unique(y if classes is None else np.asarray(classes))
                if len(labels) < 2:
                    raise ValueError(
                        f"y has a single class ({labels.tolist()}); a classifier needs "
                        "at least 2 (pass classes=[...] to declare the others).")
                self.labels_ = labels
            self.data_stats_ = (standardization_stats(X) if self.standardize else
                                (np.zeros(X.shape[1], np.float32),
                                 np.ones(X.shape[1], np.float32)))
        labels = self.classes_
        order = np.argsort(labels)  # a user's `classes` need not be sorted
        idx = order[np.clip(np.searchsorted(labels, y, sorter=order), 0, len(labels) - 1)]
        if not np.array_equal(labels[idx], y):
            raise ValueError(f"y contains labels that are not in classes {labels.tolist()}.")
        return X, idx.astype(np.int64)

    def fit(self, X, y, **fit_params) -> TorchClassifier:
        """Train on ``X`` (n_samples, n_features) and labels ``y``."""
        X, idx = self._prepare(X, y, reset=True)
        with torch_seeded(draw_seed(self.random_state)):
            self.initialize()
            self._train(X, idx, **fit_params)
        return self

    def partial_fit(self, X, y, classes=None, **fit_params) -> TorchClassifier:
        """Train ``max_iter`` more epochs; the first call may pass all ``classes``.

        Unlike :meth:`fit`, uses torch's global RNG.
        """
        first = not self.initialized_
        X, idx = self._prepare(X, y, reset=first, classes=classes)
        if first:
            self.initialize()
        return self._train(X, idx, **fit_params)

    def _check_X(self, X) -> np.ndarray:
        check_is_fitted(self)
        return validate_data(self, X, reset=False, dtype=np.float32)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (float32), columns in the order of ``classes_``.

        Computed on a float64 copy of the module, so that a row's probabilities do not
        depend on the batch it is in (float32 products do, by up to ~1e-7).
        """
        X = self._check_X(X)
        module, dtype = inference_copy(self.module_, self.device)
        nonlin = self._get_predict_nonlinearity()
        out = np.empty((len(X), len(self.classes_)), np.float32)
        step = 4096  # rows per chunk: bounds memory, not the result
        with torch.no_grad(), torch_threads():
            for start in range(0, len(X), step):
                x = torch.as_tensor(X[start:start + step], device=self.device, dtype=dtype)
                out[start:start + len(x)] = to_numpy(nonlin(module(x)))
        return out

    def predict(self, X) -> np.ndarray:
        """Most probable label of ``classes_``."""
        proba = self.predict_proba(X)  # first: raises NotFittedError before fit
        return self.classes_[proba.argmax(axis=1)]

    def logits_module(self) -> nn.Module:
        """Frozen CPU copy of the module: raw ``x`` (n, n_features) -> logits.

        Gradients flow to ``x`` but not to the weights, so it can serve as (part of)
        a differentiable criterion.
        """
        check_is_fitted(self)
        return frozen_copy(self.module_).cpu()


def class_log_probability(classifier: TorchClassifier, label) -> ClassLogProbability:
    """The criterion ``f(x) = log h(label | x)`` of a fitted classifier.

    Tilting by it gives ``q_beta ∝ p h(label | x)^beta`` (BTGM Sec. 4.1).

    Parameters
    ----------
    classifier : TorchClassifier
        Fitted classifier (or any fitted estimator with ``classes_`` and
        ``logits_module()``).
    label
        One of ``classifier.classes_``.

    Returns
    -------
    criterion : ClassLogProbability
        Picklable; maps a torch batch ``(n, n_features)`` to ``(n,)`` log-probabilities.

    Examples
    --------
    >>> # tuner = BoltzmannTuner(VAE(), class_log_probability(clf, 4), kl_budget=2.0)
    """
    check_is_fitted(classifier)
    classes = list(np.asarray(classifier.classes_).tolist())
    key = label.item() if isinstance(label, np.generic) else label
    if key not in classes:
        raise ValueError(f"label must be one of classifier.classes_ {classes}, got {label!r}.")
    return ClassLogProbability(classifier.logits_module(), classes.index(key))
