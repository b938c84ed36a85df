"""The one training layer: skorch runs "n steps of an objective" for every fitted module.

The tuner's flow, AVO's critic and AVO's proposal are all trained by a :class:`StepNet`,
a :class:`skorch.NeuralNet` whose objective is given at construction and whose per-call
state (beta, observed and simulated data, ...) travels as ``fit_params`` (skorch's
``fit_loop -> run_single_epoch -> train_step -> train_step_single`` chain). A stochastic
objective draws its own samples, so the "data" is a dummy whose length is the number of
steps: one :meth:`StepNet.run` is one skorch epoch of ``n_steps`` optimiser steps. skorch
then provides history, callbacks, progress bars, checkpointing and ``device``.

Failures are handled here, once: a non-finite loss or gradient raises
:class:`DivergenceError` before the optimiser step, and :class:`LastGoodState` restores
the weights saved at the end of the last finite run. Unlike ``NeuralNet.partial_fit``,
:meth:`StepNet.run` does not swallow ``KeyboardInterrupt``: Ctrl-C reaches the
estimator, which leaves itself unfitted or in its previous fitted state.
"""

from __future__ import annotations

__all__ = [
    "CosineDecay",
    "DivergenceError",
    "EpochProgress",
    "LastGoodState",
    "StepNet",
    "cosine_decay",
]

import copy
import math
from collections.abc import Callable
from functools import partial

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, LRScheduler

from ._config import torch_threads


class DivergenceError(FloatingPointError):
    """The training objective became NaN or infinite.

    Attributes
    ----------
    restored : bool
        Whether the weights of the last finite run were restored.
    """

    restored: bool = False


def cosine_decay(step: int, *, total: int, final_fraction: float) -> float:
    """Learning-rate factor at ``step``: cosine from 1 down to ``final_fraction``.

    ``step`` counts from 0; the factor reaches ``final_fraction`` at ``step = total`` and
    stays there. A stochastic objective otherwise leaves the weights jittering around
    the optimum by about the learning rate.
    """
    t = min(step / total, 1.0) if total > 0 else 1.0
    return final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + math.cos(math.pi * t))


class CosineDecay(LRScheduler):
    """A skorch ``LRScheduler`` stepping :func:`cosine_decay` at every optimiser step.

    Parameters
    ----------
    final_fraction : float, default=0.1
        Final learning rate as a fraction of the net's ``lr``.
    total_steps : int or None, default=None
        ``None`` restarts the decay at every :meth:`StepNet.run`, over that run's steps
        (the tuner: one decay per beta). An int decays once over that many steps counted
        across runs (AVO's proposal: one decay over the whole fit).
    """

    def __init__(self, final_fraction: float = 0.1, total_steps: int | None = None,
                 event_name: str = "event_lr"):
        super().__init__(policy=torch.optim.lr_scheduler.LambdaLR, step_every="batch",
                         event_name=event_name)
        self.final_fraction = final_fraction
        self.total_steps = total_steps

    @property
    def kwargs(self):  # nothing of ours is a LambdaLR argument
        return {}

    def on_train_begin(self, net, X=None, **kwargs):
        self.run_steps_ = len(X)
        super().on_train_begin(net, X=X, **kwargs)

    def _get_scheduler(self, net, policy, **scheduler_kwargs):
        if self.total_steps is None:
            offset, total = 0, self.run_steps_
        else:
            offset, total = self.batch_idx_, self.total_steps
        factor = partial(_offset_cosine, offset=offset, total=total,
                         final_fraction=self.final_fraction)
        for group in net.optimizer_.param_groups:  # LambdaLR scales the initial lr
            group.setdefault("initial_lr", group["lr"])
        return policy(net.optimizer_, factor)


def _offset_cosine(step: int, *, offset: int, total: int, final_fraction: float) -> float:
    return cosine_decay(offset + step, total=total, final_fraction=final_fraction)


class LastGoodState(Callback):
    """Keep a copy of the module's ``state_dict`` at the end of each finite run."""

    def initialize(self):
        self.state_ = None
        return self

    def on_epoch_end(self, net, **kwargs):
        loss = net.history[-1].get("train_loss", np.nan)
        if np.isfinite(loss):
            self.state_ = copy.deepcopy(net.module_.state_dict())

    def restore(self, net) -> bool:
        """Load the last good weights into ``net``; ``False`` when there are none."""
        if self.state_ is None:
            return False
        net.module_.load_state_dict(self.state_)
        return True


def _epochs(net) -> int:
    """Epochs per training call: sktilt's models keep skorch's ``max_epochs`` as the
    deprecated old name of ``max_iter`` (``"deprecated"`` when not set)."""
    epochs = net.max_epochs
    return net.max_iter if isinstance(epochs, str) and hasattr(net, "max_iter") else epochs


class EpochProgress(Callback):
    """A tqdm bar over epochs (skorch's ProgressBar counts the steps within one epoch).

    Parameters
    ----------
    total : int or None, default=None
        Length of the bar; the net's epochs per training call when ``None``
        (``max_iter`` of sktilt's models, skorch's ``max_epochs`` otherwise).
    desc : str, default="training"
        Label of the bar.
    across_runs : bool, default=False
        Keep the bar open from one training call to the next (AVO runs its proposal net
        once per iteration); it closes when full or when the net is pickled.
    """

    def __init__(self, total: int | None = None, desc: str = "training",
                 across_runs: bool = False):
        self.total = total
        self.desc = desc
        self.across_runs = across_runs

    def initialize(self):
        self.bar_ = None
        return self

    def on_epoch_end(self, net, **kwargs):
        if self.bar_ is None:
            from tqdm.auto import tqdm

            self.bar_ = tqdm(total=self.total or _epochs(net), desc=self.desc, leave=False)
        self.bar_.set_postfix(loss=f"{net.history[-1].get('train_loss', float('nan')):.4g}")
        self.bar_.update(1)
        if self.bar_.n >= self.bar_.total:
            self.close()

    def on_train_end(self, net, **kwargs):
        if not self.across_runs:
            self.close()

    def close(self) -> None:
        """Close the bar now."""
        if getattr(self, "bar_", None) is not None:
            self.bar_.close()
        self.bar_ = None

    def __getstate__(self):  # a tqdm bar holds a stream: keep the net picklable
        state = self.__dict__.copy()
        state["bar_"] = None
        return state


class _Unused(torch.nn.Module):
    # skorch requires a criterion; the objective computes the loss itself.
    def forward(self, *args):  # pragma: no cover - never called
        raise RuntimeError("StepNet computes its loss with its objective.")


class StepNet(NeuralNet):
    """A skorch net minimising a stochastic ``objective`` of its module, step by step.

    Parameters
    ----------
    module : torch.nn.Module
        The trained module (a flow, a critic, a proposal), used as is.
    objective : callable
        ``objective(module, **fit_params) -> (loss, extras)``: the scalar tensor to
        minimise at one step and a dict of floats recorded in the step's history.
        Configuration that does not change during a fit belongs in the objective (a
        dataclass or ``functools.partial``); what changes from run to run is passed to
        :meth:`run` as keyword arguments.
    **kwargs
        Passed to :class:`skorch.NeuralNet` (``optimizer``, ``lr``, ``callbacks``,
        ``device``, ``verbose``, ...).
    """

    def __init__(self, module, objective: Callable, **kwargs):
        kwargs.setdefault("criterion", _Unused)
        kwargs.setdefault("train_split", None)
        kwargs.setdefault("batch_size", 1)
        kwargs.setdefault("max_epochs", 1)
        kwargs.setdefault("verbose", 0)
        kwargs.setdefault("iterator_train__shuffle", False)
        super().__init__(module, **kwargs)
        self.objective = objective

    @property
    def _default_callbacks(self):
        return super()._default_callbacks + [("last_good_state", LastGoodState())]

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        loss, extras = self.objective(self.module_, **fit_params)
        if not torch.isfinite(loss):
            raise DivergenceError(f"non-finite training loss ({loss.item()}).")
        loss.backward()
        # A finite loss can still have non-finite gradients (e.g. a criterion that is NaN
        # off the batch, behind torch.where): stop before the optimiser step spreads them.
        grads = [p.grad.sum() for p in self.module_.parameters() if p.grad is not None]
        if grads and not torch.isfinite(torch.stack(grads).sum()):
            raise DivergenceError("non-finite gradient of a finite training loss.")
        for key, value in extras.items():
            self.history.record_batch(key, float(value))
        return {"loss": loss, "y_pred": loss.detach()}

    def run(self, n_steps: int, **fit_params) -> StepNet:
        """Run ``n_steps`` optimiser steps (one skorch epoch), warm-starting.

        ``fit_params`` reach the objective at every step. On a non-finite loss the weights
        of the last finite run are restored and :class:`DivergenceError` is raised
        (``exc.restored`` says whether there were any). ``KeyboardInterrupt`` propagates.
        """
        with torch_threads():  # every fitted module of the library trains here
            if not self.initialized_:
                self.initialize()
            steps = np.zeros((int(n_steps), 1), dtype=np.float32)
            self.notify("on_train_begin", X=steps, y=None)
            try:
                self.fit_loop(steps, epochs=1, **fit_params)
            except DivergenceError as exc:
                exc.restored = dict(self.callbacks_)["last_good_state"].restore(self)
                raise
            finally:
                self.notify("on_train_end", X=steps, y=None)
            return self
