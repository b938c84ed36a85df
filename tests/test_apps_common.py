"""cached_fit: a verified JSON + torch-weights cache that never unpickles what it reads."""

import hashlib
import json

import joblib
import numpy as np
import pytest
import torch
from sklearn.linear_model import LinearRegression
from sklearn.utils.validation import check_is_fitted

import sktilt
from sktilt import VAE, TorchClassifier
from sktilt.apps._common import cached_fit

RNG = np.random.default_rng(0)
X = RNG.normal(size=(64, 5)).astype(np.float32) * [1, 2, 3, 4, 5] + 10
Y = np.array(["cat", "dog", "eel"])[RNG.integers(0, 3, 64)]


def make_vae():
    return VAE(latent_dim=2, hidden_layer_sizes=(8,), max_iter=2, batch_size=32, random_state=0)


def make_classifier():
    return TorchClassifier(hidden_layer_sizes=(8,), max_iter=2, batch_size=32, random_state=0)


class Logs(list):
    def __call__(self, line):
        self.append(line)

    def text(self):
        return "\n".join(self)


@pytest.fixture
def fits(monkeypatch):
    """Counts the real fits of VAE and TorchClassifier."""
    counts = []
    for cls in (VAE, TorchClassifier):
        real = cls.fit

        def counting(self, *args, _real=real, **kwargs):
            counts.append(type(self).__name__)
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(cls, "fit", counting)
    return counts


class Malicious:
    """Unpickling it runs code: it writes ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('pwned')",)


def test_a_valid_cache_round_trips_to_identical_outputs(tmp_path, fits):
    logs = Logs()
    first = cached_fit(make_vae(), X, tmp_path, "vae", log=logs)
    assert fits == ["VAE"] and logs == []  # nothing cached yet: fitted silently
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vae.json", "vae.pt"]
    meta = json.loads((tmp_path / "vae.json").read_text())
    assert meta["sktilt_version"] == sktilt.__version__
    assert meta["estimator"] == "sktilt.models._vae.VAE"
    assert meta["weights_sha256"] == hashlib.sha256((tmp_path / "vae.pt").read_bytes()
                                                    ).hexdigest()

    state = torch.get_rng_state()
    fresh = make_vae()
    again = cached_fit(fresh, X, tmp_path, "vae", log=logs)
    assert fits == ["VAE"]  # not refit
    assert logs == [f"loaded cached vae from {tmp_path / 'vae.pt'}"]
    assert torch.equal(torch.get_rng_state(), state)  # loading leaves torch's RNG be
    assert again is not first
    check_is_fitted(again)
    assert bool(again.module_.trained)
    assert again.n_features_in_ == 5
    for a, b in zip(again.data_stats_, first.data_stats_):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(again.sample(50, random_state=1),
                                  first.sample(50, random_state=1))
    np.testing.assert_array_equal(again.predict(X), first.predict(X))
    np.testing.assert_array_equal(again.transform(X), first.transform(X))
    np.testing.assert_array_equal(again.score_samples(X), first.score_samples(X))
    assert again.history[:, "train_loss"] == first.history[:, "train_loss"]


def test_a_classifier_round_trips_with_its_labels(tmp_path, fits):
    with pytest.raises(ValueError, match="needs y"):
        cached_fit(make_classifier(), X, tmp_path, "clf")
    first = cached_fit(make_classifier(), X, tmp_path, "clf", y=Y, log=Logs())
    logs = Logs()
    again = cached_fit(make_classifier(), X, tmp_path, "clf", y=Y, log=logs)
    assert fits == ["TorchClassifier"] and logs[0].startswith("loaded cached clf")
    assert again.classes_.tolist() == ["cat", "dog", "eel"]
    np.testing.assert_array_equal(again.predict_proba(X), first.predict_proba(X))
    np.testing.assert_array_equal(again.predict(X), first.predict(X))
    # other labels are other data
    cached_fit(make_classifier(), X, tmp_path, "clf", y=Y[::-1], log=logs)
    assert fits == ["TorchClassifier"] * 2 and "other parameters or data" in logs[-1]


def test_only_skorch_models_are_cached(tmp_path):
    with pytest.raises(TypeError, match="caches VAE and TorchClassifier"):
        cached_fit(LinearRegression(), X, tmp_path, "lr")


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_a_planted_pickle_is_never_loaded(tmp_path, fits):
    """An old-style ``vae.joblib`` (even with the right key) and pickles disguised as
    weights, with metadata that vouches for them, run nothing: the model is refit."""
    marker = tmp_path / "marker"
    params = {k: v for k, v in make_vae().get_params(deep=False).items()
              if k not in ("callbacks", "verbose")}
    old_key = joblib.hash((repr(sorted(params.items())), X))  # the earlier cache's key
    joblib.dump((old_key, Malicious(marker)), tmp_path / "vae.joblib")
    logs = Logs()
    cached_fit(make_vae(), X, tmp_path, "vae", log=logs)
    assert not marker.exists() and fits == ["VAE"]
    assert "ignoring" in logs[0] and "vae.joblib" in logs[0]

    meta_path, weights_path = tmp_path / "vae.json", tmp_path / "vae.pt"
    meta = json.loads(meta_path.read_text())
    for plant in ("torch.save", "pickle"):
        if plant == "torch.save":
            torch.save(Malicious(marker), weights_path)
        else:
            joblib.dump(Malicious(marker), weights_path)
        meta["weights_sha256"] = hashlib.sha256(weights_path.read_bytes()).hexdigest()
        meta_path.write_text(json.dumps(meta))
        logs = Logs()
        model = cached_fit(make_vae(), X, tmp_path, "vae", log=logs)
        assert not marker.exists(), plant
        assert "vae.pt does not load" in logs[-1] and logs[-1].endswith("fitting it again")
        check_is_fitted(model)
    assert fits == ["VAE"] * 3
    joblib.load(tmp_path / "vae.joblib")  # the plant was live: unpickling it runs code
    assert marker.read_text() == "pwned"


def _flip_a_byte(tmp_path):
    data = bytearray((tmp_path / "vae.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "vae.pt").write_bytes(bytes(data))


def _edit_meta(**changes):
    def edit(tmp_path):
        meta = json.loads((tmp_path / "vae.json").read_text())
        meta.update(changes)
        (tmp_path / "vae.json").write_text(json.dumps(meta))
    return edit


def _vouched_weights(state_dict):
    """Replace the weights by ``state_dict`` and fix the hash in the metadata."""
    def edit(tmp_path):
        torch.save(state_dict(), tmp_path / "vae.pt")
        digest = hashlib.sha256((tmp_path / "vae.pt").read_bytes()).hexdigest()
        _edit_meta(weights_sha256=digest)(tmp_path)
    return edit


def _untrained():
    return make_vae().set_params(module__n_features=5).initialize().module_.state_dict()


def _wrong_shapes():
    return VAE(latent_dim=3, hidden_layer_sizes=(8,), module__n_features=5).initialize(
    ).module_.state_dict()


@pytest.mark.parametrize("tamper, why", [
    (_flip_a_byte, "vae.pt does not match its metadata"),
    (lambda p: (p / "vae.pt").write_bytes(b""), "vae.pt does not match its metadata"),
    (lambda p: (p / "vae.pt").unlink(), "vae.pt is not readable"),
    (lambda p: (p / "vae.json").write_text("{not json"), "vae.json is not readable JSON"),
    (lambda p: (p / "vae.json").unlink(), "vae.json is not readable JSON"),
    (lambda p: (p / "vae.json").write_text("[1, 2]"), "not a cache of this format"),
    (lambda p: ((p / "vae.pt").unlink(), (p / "vae.pt").symlink_to("/dev/zero")),
     "vae.pt is not a regular file"),
    (_edit_meta(key="0" * 32), "made with other parameters or data"),
    (_edit_meta(sktilt_version="0.1.0"), "made by sktilt '0.1.0', this is"),
    (_edit_meta(estimator="sktilt.models._classifier.TorchClassifier"),
     "holds a 'sktilt.models._classifier.TorchClassifier', not a sktilt.models._vae.VAE"),
    (_vouched_weights(lambda: {"weight": torch.zeros(3)}), "vae.pt does not load"),
    (_vouched_weights(_wrong_shapes), "vae.pt does not load (RuntimeError"),
    (_vouched_weights(_untrained), "holds an untrained model"),
])
def test_a_tampered_foreign_or_corrupt_cache_is_refit(tmp_path, fits, tamper, why):
    first = cached_fit(make_vae(), X, tmp_path, "vae", log=Logs())
    tamper(tmp_path)
    logs = Logs()
    model = cached_fit(make_vae(), X, tmp_path, "vae", log=logs)
    assert fits == ["VAE", "VAE"]
    assert len(logs) == 1 and why in logs[0] and logs[0].endswith("; fitting it again")
    np.testing.assert_array_equal(model.sample(10, random_state=1),
                                  first.sample(10, random_state=1))  # same seed, same fit
    logs = Logs()
    cached_fit(make_vae(), X, tmp_path, "vae", log=logs)  # rewritten: valid again
    assert fits == ["VAE", "VAE"] and logs[0].startswith("loaded cached vae")


def test_other_parameters_or_data_are_refit(tmp_path, fits):
    cached_fit(make_vae(), X, tmp_path, "vae", log=Logs())
    logs = Logs()
    cached_fit(make_vae().set_params(lr=0.01), X, tmp_path, "vae", log=logs)
    cached_fit(make_vae(), X + 1, tmp_path, "vae", log=logs)
    assert fits == ["VAE"] * 3
    assert all("other parameters or data" in line for line in logs)
    # display-only parameters do not invalidate it
    cached_fit(make_vae().set_params(verbose=1, callbacks=[]), X + 1, tmp_path, "vae",
               log=logs)
    assert fits == ["VAE"] * 3 and logs[-1].startswith("loaded cached vae")
