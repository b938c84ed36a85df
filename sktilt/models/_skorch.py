"""What the package's skorch models share: building the module, the "trained" flag, seeding.

:class:`~sktilt.VAE` and :class:`~sktilt.TorchClassifier` are skorch nets whose modules
standardise their own inputs and carry a ``trained`` buffer (saved with the weights), so
that a module instance can be passed pretrained and a fitted model says so.
:class:`SkorchModelMixin` holds that plumbing once.
"""

from __future__ import annotations

__all__ = ["SkorchModelMixin", "net_is_trained", "standardization_stats"]

import numpy as np
import torch
from torch import nn


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

    def _prepare_module(self, module: nn.Module) -> None:
        return None

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

    def on_epoch_end(self, net, **kwargs):
        # mark trained before the callbacks run, so that checkpoints carry the flag
        super().on_epoch_end(net, **kwargs)
        if isinstance(getattr(self.module_, "trained", None), torch.Tensor):
            self.module_.trained.fill_(True)

    def _train(self, X, y, **fit_params):
        """Train ``max_epochs`` epochs like skorch's ``partial_fit``, letting Ctrl-C through.

        skorch's ``partial_fit`` swallows ``KeyboardInterrupt`` and returns a half-trained
        net that reports itself fitted; here the interrupt propagates, and a net that had
        not been trained before is left unfitted.
        """
        if not self.initialized_:
            self.initialize()
        was_trained = net_is_trained(self)
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
