"""Library settings: the torch thread limit inside fits restores the caller's setting."""

import numpy as np
import pytest
import torch

import sktilt
from sktilt import (AVOSimulatorFitter, Critic, GaussianProposal, config_context, get_config,
                    set_config)
from sktilt._config import _from_environment, torch_threads


def _poisson(theta, random_state):
    return random_state.poisson(np.exp(theta), size=1).astype(float)


class _SeesThreads:
    """A simulator that records torch's thread count while the fit runs (sequential)."""

    def __init__(self, fail_at=None):
        self.seen, self.fail_at = [], fail_at

    def __call__(self, theta, random_state):
        self.seen.append(torch.get_num_threads())
        if self.fail_at is not None and len(self.seen) >= self.fail_at:
            raise KeyboardInterrupt  # propagates out of simulate and fit: Ctrl-C
        return _poisson(theta, random_state)


def _fitter(simulator):
    return AVOSimulatorFitter(simulator, GaussianProposal(loc=[1.5], scale=[1.0]),
                              max_iter=3, batch_size=16, critic=Critic(n_steps=2),
                              refinement=None,
                              random_state=0)


X_OBS = np.random.default_rng(0).poisson(5.0, size=(50, 1)).astype(float)


def test_fit_runs_with_the_configured_threads_and_restores_the_callers(caller_threads):
    assert get_config()["torch_threads"] == 1  # the default (no SKTILT_TORCH_THREADS)
    sim = _SeesThreads()
    _fitter(sim).fit(X_OBS)
    assert set(sim.seen) == {1}
    assert torch.get_num_threads() == caller_threads


def test_interrupted_fit_restores_the_callers_threads(caller_threads):
    sim = _SeesThreads(fail_at=40)
    with pytest.raises(KeyboardInterrupt):
        _fitter(sim).fit(X_OBS)
    assert sim.seen[-1] == 1
    assert torch.get_num_threads() == caller_threads


def test_none_leaves_torch_alone(caller_threads):
    sim = _SeesThreads()
    with config_context(torch_threads=None):
        _fitter(sim).fit(X_OBS)
    assert set(sim.seen) == {caller_threads}
    assert torch.get_num_threads() == caller_threads
    assert get_config()["torch_threads"] == 1  # the context gave the setting back


def test_nested_and_raising_contexts_restore(caller_threads):
    with torch_threads(2):
        assert torch.get_num_threads() == 2
        with pytest.raises(ValueError), torch_threads(1):
            assert torch.get_num_threads() == 1
            raise ValueError
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == caller_threads


def test_set_config_validates_and_persists():
    old = get_config()
    try:
        set_config(torch_threads=2)
        assert sktilt.get_config() == {"torch_threads": 2}
        set_config()  # omitted: unchanged
        assert get_config()["torch_threads"] == 2
        for bad in (0, -1, 1.5, True, "2"):
            with pytest.raises(ValueError, match="torch_threads"):
                set_config(torch_threads=bad)
    finally:
        set_config(**old)


def test_environment_variable(monkeypatch):
    monkeypatch.setenv("SKTILT_TORCH_THREADS", "none")
    assert _from_environment() is None
    monkeypatch.setenv("SKTILT_TORCH_THREADS", "4")
    assert _from_environment() == 4
    monkeypatch.setenv("SKTILT_TORCH_THREADS", "zero")
    with pytest.raises(ValueError, match="SKTILT_TORCH_THREADS"):
        _from_environment()
