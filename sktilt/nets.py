"""skorch plumbing shared by the estimators' training loops.

:class:`StepNet` is a :class:`skorch.NeuralNet` whose "data" is a step counter: a
stochastic objective draws its own samples at every step, so ``X`` only sets how many
optimisation steps make an epoch. skorch then provides history, callbacks, a progress
bar, checkpointing and ``device``. Subclasses implement :meth:`StepNet.objective`.

A non-finite loss raises :class:`DivergenceError` *before* the optimiser step, and
:class:`LastGoodState` keeps a copy of the module's weights at the end of every
finite epoch so that the estimator can restore them.
"""

from __future__ import annotations

__all__ = ["DivergenceError", "EpochProgress", "LastGoodState", "StepNet"]

import copy

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback


class DivergenceError(FloatingPointError):
    """The training objective became NaN or infinite."""


class LastGoodState(Callback):
    """Keep a copy of the module's ``state_dict`` after each epoch with finite loss."""

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


class EpochProgress(Callback):
    """A tqdm bar over epochs (skorch's ProgressBar counts batches within one epoch).

    Parameters
    ----------
    total : int or None, default=None
        Length of the bar; the net's ``max_epochs`` when ``None``.
    desc : str, default="training"
        Label of the bar.
    """

    def __init__(self, total: int | None = None, desc: str = "training"):
        self.total = total
        self.desc = desc

    def on_train_begin(self, net, **kwargs):
        from tqdm.auto import tqdm

        self.bar_ = tqdm(total=self.total or net.max_epochs, desc=self.desc, leave=False)

    def on_epoch_end(self, net, **kwargs):
        self.bar_.set_postfix(loss=f"{net.history[-1].get('train_loss', float('nan')):.4g}")
        self.bar_.update(1)

    def on_train_end(self, net, **kwargs):
        self.bar_.close()
        self.bar_ = None  # a tqdm bar holds a stream: keep the net picklable


class _Identity(torch.nn.Module):
    def forward(self, *args):  # pragma: no cover - never used as a loss
        return args[0]


class StepNet(NeuralNet):
    """A skorch net trained on a stochastic objective, one step per "batch".

    Parameters
    ----------
    module : torch.nn.Module or class
        The trained module (a flow, a critic).
    steps_per_epoch : int
        Number of optimisation steps in one epoch.
    **kwargs
        Passed to :class:`skorch.NeuralNet` (``optimizer``, ``lr``, ``max_epochs``,
        ``callbacks``, ``device``, ``verbose``, ...).
    """

    def __init__(self, module, *args, steps_per_epoch: int = 50, **kwargs):
        kwargs.setdefault("criterion", _Identity)
        kwargs.setdefault("train_split", None)
        kwargs.setdefault("batch_size", 1)
        kwargs.setdefault("iterator_train__shuffle", False)
        super().__init__(module, *args, **kwargs)
        self.steps_per_epoch = steps_per_epoch

    @property
    def _default_callbacks(self):
        return super()._default_callbacks + [("last_good_state", LastGoodState())]

    def objective(self) -> tuple[torch.Tensor, dict]:
        """Return ``(loss, extras)``: the scalar to minimise and floats to record."""
        raise NotImplementedError  # abstract: subclasses define the objective

    def _anneal_lr(self) -> None:
        # Cosine decay to lr/10 over each call of run_steps: a stochastic objective
        # otherwise leaves the weights jittering around the optimum by ~lr.
        total = getattr(self, "_stage_total", 0)
        if not total:
            return
        t = min(self._stage_step / total, 1.0)
        factor = 0.1 + 0.9 * 0.5 * (1.0 + np.cos(np.pi * t))
        for group in self.optimizer_.param_groups:
            group["lr"] = self.lr * factor
        self._stage_step += 1

    def train_step_single(self, batch, **fit_params):
        self._anneal_lr()
        self._set_training(True)
        loss, extras = self.objective()
        if not torch.isfinite(loss):
            raise DivergenceError(f"non-finite training loss ({loss.item()}).")
        loss.backward()
        for key, value in extras.items():
            self.history.record_batch(key, float(value))
        return {"loss": loss, "y_pred": loss.detach()}

    def run_steps(self, epochs: int = 1, *, anneal: bool = False) -> "StepNet":
        """Run ``epochs`` epochs of ``steps_per_epoch`` steps, warm-starting.

        With ``anneal=True`` the learning rate follows a cosine decay from ``lr`` to
        ``lr / 10`` over these steps (restarting at ``lr`` on the next call).
        """
        self._stage_total = epochs * self.steps_per_epoch if anneal else 0
        self._stage_step = 0
        dummy = np.zeros((self.steps_per_epoch, 1), dtype=np.float32)
        return self.partial_fit(dummy, epochs=epochs)

    def restore_last_good_state(self) -> bool:
        """Restore the weights saved at the last finite epoch."""
        return dict(self.callbacks_)["last_good_state"].restore(self)
