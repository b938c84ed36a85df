"""The one training layer: StepNet runs, learning-rate schedules, divergence, Ctrl-C."""

import math
import pickle

import numpy as np
import pytest
import torch
from skorch.callbacks import EpochScoring

from sktilt._training import CosineDecay, DivergenceError, EpochProgress, StepNet, cosine_decay


def _quadratic(module, *, target):
    """(w - target)^2: minimised at w = target; `target` travels as a fit_param."""
    loss = ((module.weight - target) ** 2).sum()
    return loss, {"w": module.weight.item()}


def _net(**kw):
    module = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(module.weight)
    return StepNet(module, _quadratic, optimizer=torch.optim.SGD, lr=0.1, **kw).initialize()


def test_cosine_decay_closed_form():
    assert cosine_decay(0, total=10, final_fraction=0.1) == 1.0
    assert cosine_decay(5, total=10, final_fraction=0.1) == pytest.approx(0.55)
    assert cosine_decay(10, total=10, final_fraction=0.1) == pytest.approx(0.1)
    assert cosine_decay(50, total=10, final_fraction=0.1) == pytest.approx(0.1)


def test_run_takes_n_steps_with_fit_params_and_records_extras():
    net = _net()
    net.run(50, target=torch.tensor(2.0))
    # gradient descent on (w - 2)^2 with lr 0.1: w_k = 2 (1 - 0.8^k)
    assert net.module_.weight.item() == pytest.approx(2 * (1 - 0.8**50), rel=1e-5)
    row = net.history[-1]
    assert len(row["batches"]) == 50 and "w" in row["batches"][0]
    net.run(3, target=torch.tensor(-1.0))  # warm start, new per-run state
    assert len(net.history) == 2


def test_cosine_decay_restarts_per_run_or_spans_runs():
    per_run = _net(callbacks=[("lr", CosineDecay(0.1))])
    for _ in range(2):
        per_run.run(11, target=torch.tensor(1.0))
        lrs = [b["event_lr"] for b in per_run.history[-1]["batches"]]
        np.testing.assert_allclose(lrs, [0.1 * cosine_decay(k, total=11, final_fraction=0.1)
                                         for k in range(11)])
    spanning = _net(callbacks=[("lr", CosineDecay(0.3, total_steps=6))])
    lrs = []
    for _ in range(6):
        spanning.run(1, target=torch.tensor(1.0))
        lrs.append(spanning.history[-1]["batches"][-1]["event_lr"])
    np.testing.assert_allclose(lrs, [0.1 * cosine_decay(k, total=6, final_fraction=0.3)
                                     for k in range(6)])


def test_divergence_restores_the_last_good_run_and_raises():
    net = _net()
    net.run(5, target=torch.tensor(1.0))
    good = net.module_.weight.detach().clone()
    with pytest.raises(DivergenceError) as info:
        net.run(5, target=torch.tensor(math.nan))
    assert info.value.restored
    assert torch.equal(net.module_.weight, good)
    fresh = _net()
    with pytest.raises(DivergenceError) as info:
        fresh.run(5, target=torch.tensor(math.inf))
    assert not info.value.restored  # nothing finite to go back to


def test_keyboard_interrupt_propagates_unlike_skorch_partial_fit():
    calls = {"n": 0}

    def interrupted(module, *, target):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return _quadratic(module, target=target)

    net = StepNet(torch.nn.Linear(1, 1, bias=False), interrupted, optimizer=torch.optim.SGD,
                  lr=0.1).initialize()
    with pytest.raises(KeyboardInterrupt):
        net.run(10, target=torch.tensor(1.0))
    assert calls["n"] == 3


def _one(net, X=None, y=None):
    return 1.0


def test_user_callbacks_and_progress_bar_pickle():
    net = _net(callbacks=[EpochScoring(_one, name="one", on_train=True),
                          EpochProgress(total=3, across_runs=True)])
    for _ in range(2):
        net.run(2, target=torch.tensor(1.0))
    assert net.history[-1]["one"] == 1.0
    restored = pickle.loads(pickle.dumps(net))
    assert torch.equal(restored.module_.weight, net.module_.weight)
