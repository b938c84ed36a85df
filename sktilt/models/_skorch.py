"""What the package's skorch models share: building the module, the "trained" flag, seeding.

:class:`~sktilt.VAE` and :class:`~sktilt.TorchClassifier` are skorch nets whose modules
standardise their own inputs and carry a ``trained`` buffer (saved with the weights), so
that a module instance can be passed pretrained and a fitted model says so.
:class:`SkorchModelMixin` holds that plumbing once.
"""

from __future__ import annotations

__all__ = ["RENAMED", "SkorchModelMixin", "inference_copy", "net_is_trained",
           "standardization_stats"]

import copy
import math
from numbers import Integral, Real

import numpy as np
import torch
from torch import nn

from .._config import torch_threads
from .._deprecation import DEPRECATED, renamed
from .._utils import check_device, check_hidden_units

#: New name -> deprecated old name of the models' renamed parameters (sktilt 0.2):
#: scikit-learn's names (``MLPClassifier``) instead of skorch's ``max_epochs``.
RENAMED = {"max_iter": "max_epochs", "hidden_layer_sizes": "hidden_units"}


def standardization_stats(X: np.ndarray, *, floor: float = 0.1):
    """Per-feature mean and scale of ``X``, as float32 arrays.

    The scale is the standard deviation floored at ``floor`` times its mean over the
    features: constant features (digit corners) would otherwise divide by zero, and
    rarely active ones would be blown up to huge standardised values.
    """
    mean, std = X.mean(0), X.std(0)
    ref = float(std.mean())
    scale = np.maximum(std, floor * ref) if ref > 0 else np.ones_like(std)
    return mean.astype(np.float32), scale.astype(np.float32)


def inference_copy(module: nn.Module, device) -> tuple[nn.Module, torch.dtype]:
    """An eval-mode copy of ``module`` in float64 (float32 on MPS, which has no float64),
    and that dtype.

    Inference (``score_samples``, ``transform``, ``predict_proba``) runs on it so that a
    row's result does not depend on the rows beside it: float32 matrix products are
    summed in an order that depends on the batch size (BLAS blocking), and an ELBO summed
    over features and latent draws differed by ~5e-7 between a batch and its rows,
    above scikit-learn's subset-invariance tolerance of 1e-7. In float64 that difference
    is ~1e-15.
    """
    dtype = torch.float32 if torch.device(device).type == "mps" else torch.float64
    return copy.deepcopy(module).to(dtype).eval(), dtype


def net_is_trained(net) -> bool:
    """Whether a skorch net was trained on data (skorch itself only says "initialised")."""
    module = getattr(net, "module_", None)
    if not net.initialized_ or module is None:
        return False
    trained = getattr(module, "trained", None)  # a custom module may lack the flag
    return bool(trained) if trained is not None else len(net.history) > 0


class SkorchModelMixin:
    """Module building, fitted state and seeded training shared by the skorch models.

    Subclasses implement ``_module_kwargs()`` (the constructor arguments of the module
    class, from the estimator's parameters and the data seen) and may implement
    ``_prepare_module(module)`` (e.g. copy the data's standardisation into it).
    """

    def _module_kwargs(self) -> dict:
        return {}

    def _param(self, new: str):
        """The value of the renamed parameter ``new``, or of its old name if set (as
        :func:`~sktilt._deprecation.renamed`, without its warning: see
        :meth:`_check_training_params`)."""
        old = getattr(self, RENAMED[new])
        return getattr(self, new) if isinstance(old, str) and old == DEPRECATED else old

    def _check_training_params(self) -> None:
        """Clear errors for the skorch settings that torch would reject deep inside;
        a ``FutureWarning`` for a deprecated old name that is set."""
        for new, old in RENAMED.items():
            renamed(self, new, old)  # warns, or raises if both names are set
        check_hidden_units(self._param("hidden_layer_sizes"), "hidden_layer_sizes")
        lr = self.lr
        if isinstance(lr, bool) or not isinstance(lr, Real) or not 0 < lr < math.inf:
            raise ValueError(f"lr must be a positive, finite float, got {lr!r}.")
        for name in ("max_iter", "batch_size"):
            value = self._param(name) if name in RENAMED else getattr(self, name)
            if name == "batch_size" and value == -1:
                continue  # skorch: the whole data set in one batch
            if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}.")
        seed = self.random_state
        if seed is not None and not isinstance(seed, (np.random.RandomState,
                                                      np.random.Generator)):
            if (isinstance(seed, bool) or not isinstance(seed, Integral)
                    or not 0 <= seed < 2**32):
                raise ValueError(f"random_state must be None, an int in [0, 2**32 - 1] or a "
                                 f"numpy RandomState/Generator, got {seed!r}.")
        check_device(self.device)

    def _prepare_module(self, module: nn.Module) -> None:
        return None

    def initialize(self):
        self._check_training_params()
        return super().initialize()

    def initialize_module(self):
        params = self.get_params_for("module")
        if isinstance(self.module, nn.Module) and not params:
            self.module_ = self.module  # a pretrained instance is used as is
            return self
        kwargs = {**self._module_kwargs(), **params}
        module = self.initialized_instance(self.module, kwargs)
        self._prepare_module(module)
        self.module_ = module
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return net_is_trained(self)

    @property
    def n_iter_(self) -> int:
        """Training epochs run (``len(history)``: ``max_iter`` per ``fit``, plus those of
        later ``partial_fit`` calls), as scikit-learn's estimators with ``max_iter``."""
        if not net_is_trained(self):
            raise AttributeError(f"{type(self).__name__} has no n_iter_ before fit.")
        return len(self.history)

    def on_epoch_end(self, net, **kwargs):
        # mark trained before the callbacks run, so that checkpoints carry the flag
        super().on_epoch_end(net, **kwargs)
        if isinstance(getattr(self.module_, "trained", None), torch.Tensor):
            self.module_.trained.fill_(True)

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        """skorch's loop, ``max_iter`` epochs by default (skorch reads ``max_epochs``)."""
        epochs = self._param("max_iter") if epochs is None else epochs
        return super().fit_loop(X, y, epochs=epochs, **fit_params)

    def _train(self, X, y, **fit_params):
        """Train ``max_iter`` epochs like skorch's ``partial_fit``, letting Ctrl-C through.

        skorch's ``partial_fit`` swallows ``KeyboardInterrupt`` and returns a half-trained
        net that reports itself fitted; here the interrupt propagates, and a net that had
        not been trained before is left unfitted.
        """
        if not self.initialized_:
            self.initialize()
        was_trained = net_is_trained(self)
        with torch_threads():
            self.notify("on_train_begin", X=X, y=y)
            try:
                self.fit_loop(X, y, **fit_params)
            except KeyboardInterrupt:
                if not was_trained and isinstance(getattr(self.module_, "trained", None),
                                                  torch.Tensor):
                    self.module_.trained.fill_(False)
                raise
            finally:
                self.notify("on_train_end", X=X, y=y)
        return self
