"""joblib files of fitted estimators carry their sktilt version; another minor is refused."""

import joblib
import numpy as np
import pytest
import torch

import sktilt
from sktilt import (
    AVOSimulatorFitter,
    BoltzmannTuner,
    GaussianProposal,
    LatentSampler,
    LinearCriterion,
    TorchClassifier,
)
from sktilt._persistence import IncompatibleVersionError, compatible
from sktilt.models import VAE

X = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32)


def _sim(theta, random_state):
    return theta + random_state.standard_normal(1)


def _estimators():
    yield BoltzmannTuner(LatentSampler(torch.nn.Identity(), latent_dim=2),
                         LinearCriterion([1.0, 0.0]), max_iter=30, n_reference_samples=2000,
                         random_state=0).fit()
    yield AVOSimulatorFitter(_sim, GaussianProposal([0.0], [1.0]), max_iter=3,
                             random_state=0).fit(X[:, :1].astype(float))
    yield VAE(max_iter=1, random_state=0).fit(X)
    yield TorchClassifier(max_iter=1, random_state=0).fit(X, (X[:, 0] > 0).astype(int))


def test_compatible_versions():
    assert compatible("0.2.0", "0.2.5.dev0") and not compatible("0.1.3", "0.2.0")


@pytest.mark.parametrize("estimator", list(_estimators()), ids=lambda e: type(e).__name__)
def test_round_trip_and_refusal_of_another_minor_version(estimator, tmp_path, monkeypatch):
    path = tmp_path / "model.joblib"
    joblib.dump(estimator, path)
    loaded = joblib.load(path)
    assert type(loaded) is type(estimator)
    assert "_sktilt_version" not in vars(loaded)
    monkeypatch.setattr(sktilt, "__version__", "0.9.0")
    with pytest.raises(IncompatibleVersionError, match=r"saved by sktilt 0\.2.*sktilt 0\.9"):
        joblib.load(path)
