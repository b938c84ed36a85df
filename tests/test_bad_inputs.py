"""Bad inputs, one row per case: (call, expected exception, a word the message must hold).

Every public constructor and method given a hostile value must fail with a clear error
that names the parameter (or the fix), never a torch/numpy/zuko traceback or a silent
result.
"""

import functools

import numpy as np
import pytest
import torch
from sklearn.preprocessing import FunctionTransformer

from sktilt import (
    AVOSimulatorFitter,
    BoltzmannPath,
    BoltzmannTuner,
    Critic,
    FlowProposal,
    GaussianProposal,
    LatentSampler,
    LinearCriterion,
    Simulator,
    TorchClassifier,
    simulate,
)
from sktilt.models import VAE

BASE = LatentSampler(torch.nn.Identity(), latent_dim=2)
LINEAR = LinearCriterion([1.0, 0.0])
FAST = dict(max_iter=30, n_reference_samples=2000)
X = np.random.default_rng(0).normal(size=(100, 3)).astype(np.float32)
Y2 = np.arange(100) % 2
X_AVO = np.random.default_rng(0).normal(size=(200, 1))


def _sim(theta, random_state):
    return theta + random_state.standard_normal(1)


def _two_features(theta, random_state):  # X_AVO has one
    return np.r_[theta, theta]


@functools.cache
def _fitted_tuner():
    return BoltzmannTuner(BASE, LINEAR, **FAST, random_state=0).fit()


@functools.cache
def _fitted_avo():
    return AVOSimulatorFitter(_sim, GaussianProposal([0.0], [1.0]), max_iter=3,
                              random_state=0).fit(X_AVO)


@functools.cache
def _fitted_vae():
    return VAE(max_iter=1, random_state=0).fit(X)


def tuner(**kw):
    return BoltzmannTuner(BASE, LINEAR, **{**FAST, **kw}).fit()


def avo(**kw):
    return AVOSimulatorFitter(**{"simulator": _sim, "proposal": GaussianProposal([0.0], [1.0]),
                                 "max_iter": 3, **kw}).fit(X_AVO)


CASES = [
    # BoltzmannTuner: construction-time parameters (checked at fit)
    ("tuner hidden_layer_sizes=(0,)", lambda: tuner(hidden_layer_sizes=(0,), n_transforms=1),
     ValueError, "hidden_layer_sizes"),
    ("tuner hidden_layer_sizes=(-3,)", lambda: tuner(hidden_layer_sizes=(-3,), n_transforms=1),
     ValueError, "hidden_layer_sizes"),
    ("tuner device without CUDA", lambda: tuner(device="cuda:7"), ValueError, "device"),
    ("tuner lr=nan", lambda: tuner(lr=float("nan")), ValueError, "lr"),
    ("tuner lr=0", lambda: tuner(lr=0.0), ValueError, "lr"),
    ("tuner random_state=-1", lambda: tuner(random_state=-1), ValueError, "random_state"),
    ("tuner kl_budget=-1", lambda: tuner(kl_budget=-1.0), ValueError, "kl_budget"),
    ("tuner kl_budget=nan", lambda: tuner(kl_budget=float("nan")), ValueError, "kl_budget"),
    ("tuner max_iter=0", lambda: tuner(max_iter=0), ValueError, "max_iter"),
    ("tuner criterion returns a list", lambda: BoltzmannTuner(
        BASE, lambda x: list(x[:, 0]), **FAST).fit(), TypeError, "criterion must return"),
    ("tuner decoder returns NaN", lambda: BoltzmannTuner(
        LatentSampler(lambda z: z * np.nan, latent_dim=2), LINEAR, **FAST).fit(),
     ValueError, "decoder returned non-finite"),
    ("tuner score_samples wrong features",
     lambda: _fitted_tuner().score_samples(np.zeros((3, 5), np.float32)), ValueError,
     "shaped like them"),
    ("tuner constraint infeasible", lambda: tuner(kl_budget=0.5, constraints=[
        (LinearCriterion([0.0, 1.0]), ">=", 3.0)]), ValueError, "constraints[0]"),
    ("tuner criterion NaN", lambda: BoltzmannTuner(BASE, lambda x: x[:, 0] * np.nan,
                                                   **FAST).fit(), ValueError, "non-finite"),
    ("tuner criterion wrong shape", lambda: BoltzmannTuner(BASE, lambda x: x, **FAST).fit(),
     ValueError, "shape (n,)"),
    ("tuner criterion returns text", lambda: BoltzmannTuner(
        BASE, lambda x: ["a"] * len(x), **FAST).fit(), TypeError, "criterion"),
    # BoltzmannTuner: methods of a fitted tuner
    ("tuner sample(-1)", lambda: _fitted_tuner().sample(-1), ValueError, "n_samples"),
    ("tuner sample(2.5)", lambda: _fitted_tuner().sample(2.5), ValueError, "n_samples"),
    ("tuner sample('3')", lambda: _fitted_tuner().sample("3"), ValueError, "n_samples"),
    ("tuner tail_probability(nan)", lambda: _fitted_tuner().tail_probability(np.nan),
     ValueError, "threshold"),
    ("tuner reference_curve([nan])", lambda: _fitted_tuner().reference_curve([np.nan]),
     ValueError, "betas"),
    ("tuner score_samples wrong width",
     lambda: _fitted_tuner().score_samples(np.zeros((3, 5))), ValueError, "shape"),
    ("tuner score_samples 1-D", lambda: _fitted_tuner().score_samples(np.zeros(2)),
     ValueError, "2D"),
    ("tuner sample_tail(n, nan)", lambda: _fitted_tuner().sample_tail(5, np.nan),
     ValueError, "threshold"),
    ("tuner base latent_dim=0", lambda: BoltzmannTuner(
        LatentSampler(torch.nn.Identity(), latent_dim=0), LINEAR, **FAST).fit(),
     ValueError, "latent_dim"),
    ("path max_kl_budget=-1", lambda: BoltzmannPath(BASE, LINEAR, max_kl_budget=-1).fit(),
     ValueError, "max_kl_budget"),
    ("path device without CUDA", lambda: BoltzmannPath(BASE, LINEAR, device="cuda:7").fit(),
     ValueError, "device"),
    # VAE and TorchClassifier (skorch nets)
    ("vae hidden_layer_sizes=(0,)", lambda: VAE(hidden_layer_sizes=(0,), max_iter=1).fit(X),
     ValueError, "hidden_layer_sizes"),
    ("vae max_iter=0", lambda: VAE(max_iter=0).fit(X), ValueError, "max_iter"),
    ("vae noise_model='free'", lambda: VAE(noise_model="free", max_iter=1).fit(X),
     ValueError, "noise_model"),
    ("vae bernoulli with level noise",
     lambda: VAE(likelihood="bernoulli", noise_model="level", max_iter=1).fit(X > 0),
     ValueError, "noise_model='constant'"),
    ("vae lr=-1", lambda: VAE(lr=-1.0, max_iter=1).fit(X), ValueError, "lr"),
    ("vae lr=nan", lambda: VAE(lr=float("nan"), max_iter=1).fit(X), ValueError, "lr"),
    ("vae device without CUDA", lambda: VAE(device="cuda:7", max_iter=1).fit(X),
     ValueError, "device"),
    ("vae random_state=-1", lambda: VAE(random_state=-1, max_iter=1).fit(X), ValueError,
     "random_state"),
    ("vae X with NaN", lambda: VAE(max_iter=1).fit(np.full((10, 3), np.nan)),
     ValueError, "NaN"),
    ("vae X 1-D", lambda: VAE(max_iter=1).fit(np.zeros(10)), ValueError, "2D"),
    ("vae latent_dim=0", lambda: VAE(latent_dim=0, max_iter=1).fit(X), ValueError,
     "latent_dim"),
    ("vae sample(-1)", lambda: _fitted_vae().sample(-1), ValueError, "n_samples"),
    ("vae transform wrong width", lambda: _fitted_vae().transform(np.zeros((2, 5))),
     ValueError, "features"),
    ("classifier one class", lambda: TorchClassifier(max_iter=1).fit(X, np.zeros(100)),
     ValueError, "single class"),
    ("classifier y NaN", lambda: TorchClassifier(max_iter=1).fit(X, np.full(100, np.nan)),
     ValueError, "NaN"),
    ("classifier y length", lambda: TorchClassifier(max_iter=1).fit(X, Y2[:50]),
     ValueError, "inconsistent"),
    ("classifier hidden_layer_sizes=(0,)",
     lambda: TorchClassifier(hidden_layer_sizes=(0,), max_iter=1).fit(X, Y2), ValueError,
     "hidden_layer_sizes"),
    ("classifier batch_size=0", lambda: TorchClassifier(batch_size=0, max_iter=1).fit(
        X, Y2), ValueError, "batch_size"),
    # proposals
    ("GaussianProposal(loc=[])", lambda: GaussianProposal(loc=[]).build(), ValueError, "loc"),
    ("GaussianProposal scale<0", lambda: GaussianProposal([0.0], [-1.0]).build(),
     ValueError, "scale"),
    ("GaussianProposal loc outside bounds", lambda: GaussianProposal(
        [-1.0], [1.0], bounds="positive").build(), ValueError, "bounds"),
    ("FlowProposal(loc=[])", lambda: FlowProposal(loc=[]).build(), ValueError, "loc"),
    # AVOSimulatorFitter
    ("avo summary emitting NaN", lambda: avo(summary=FunctionTransformer(
        lambda x: x * np.nan)), ValueError, "summary"),
    ("avo device without CUDA", lambda: avo(critic=Critic(device="cuda:7")), ValueError,
     "device"),
    ("avo hidden_layer_sizes=(0,)", lambda: avo(critic=Critic(hidden_layer_sizes=(0,))),
     ValueError, "hidden_layer_sizes"),
    ("avo random_state=-1", lambda: avo(random_state=-1), ValueError, "random_state"),
    ("avo lr=nan", lambda: avo(proposal=GaussianProposal([0.0], [1.0], lr=float("nan"))),
     ValueError, "lr"),
    ("avo timeout=0", lambda: avo(simulator=Simulator(_sim, timeout=0)), ValueError,
     "timeout"),
    ("avo simulator of the wrong shape", lambda: avo(simulator=_two_features, n_jobs=2),
     ValueError, "shape (2,) for theta"),
    ("avo X with NaN", lambda: AVOSimulatorFitter(_sim, GaussianProposal([0.0], [1.0])).fit(
        np.full((10, 1), np.nan)), ValueError, "NaN"),
    ("avo X 1-D", lambda: AVOSimulatorFitter(_sim, GaussianProposal([0.0], [1.0])).fit(
        np.zeros(10)), ValueError, "2-D"),
    ("avo sample(-1)", lambda: _fitted_avo().sample(-1), ValueError, "n_samples"),
    ("avo sample_parameters(2.5)", lambda: _fitted_avo().sample_parameters(2.5), ValueError,
     "n_samples"),
    ("avo score wrong width", lambda: _fitted_avo().score(np.zeros((5, 3))), ValueError,
     "features"),
    # simulate
    ("simulate 3-D thetas", lambda: simulate(_sim, np.zeros((2, 2, 1))), ValueError,
     "thetas"),
    ("simulate NaN thetas", lambda: simulate(_sim, np.full((2, 1), np.nan)), ValueError,
     "thetas"),
    ("simulate timeout<0", lambda: simulate(_sim, np.zeros((2, 1)), timeout=-1), ValueError,
     "timeout"),
    ("simulate check_first, wrong shape", lambda: simulate(
        _two_features, np.zeros((4, 1)), n_features=1, n_jobs=2, check_first=True),
     ValueError, "(1,) was expected"),
    ("simulate not callable", lambda: simulate("sim", np.zeros((2, 1))), TypeError,
     "simulator"),
]


@pytest.mark.parametrize("call, error, word", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_input_gives_a_clear_error(call, error, word):
    with pytest.raises(error) as info:
        call()
    assert word.lower() in str(info.value).lower()
    # raised by sktilt or scikit-learn's validation, not from deep inside torch or numpy
    frames = [str(f.path) for f in info.traceback]
    assert any("sktilt" in f or "sklearn" in f for f in frames[-2:]), frames[-3:]
