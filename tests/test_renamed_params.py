"""Constructor parameters take scikit-learn's names (``hidden_layer_sizes``, ``max_iter``);
the old names work for one release, with a ``FutureWarning`` naming the new spelling.

For each renamed parameter: the old name gives the fit the new one gives, setting both is
an error, and ``get_params`` / ``clone`` / ``set_params`` carry the old name. Also: the
models' inference runs with the library's torch thread setting.
"""

import inspect
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone

from sktilt import (VAE, AdversarialRefiner, BoltzmannTuner, FlowProposal, LatentSampler,
                    LinearCriterion, TorchClassifier, config_context)
from sktilt._deprecation import DEPRECATED
from sktilt._training import _epochs

pytestmark = [pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
              pytest.mark.filterwarnings("ignore::sktilt.tilt.TiltQualityWarning")]

X = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
Y = (X[:, 0] > 0).astype(int)
BASE = LatentSampler(torch.nn.Identity(), latent_dim=2)


def _tuner(**kw):
    params = dict(kl_budget=0.5, n_transforms=1, max_beta_iter=1, n_eval_samples=512,
                  n_reference_samples=1000, random_state=0, **kw)
    return BoltzmannTuner(BASE, LinearCriterion([1.0, 0.0]), **params)


def _vae(**kw):
    return VAE(latent_dim=2, batch_size=32, random_state=0, **kw)


def _classifier(**kw):
    return TorchClassifier(batch_size=32, random_state=0, **kw)


# (make, old, new, value, fit, result): fit(estimator) fits it, result(fitted) is what
# the old and the new spelling must give alike.
def _fit_tuner(est):
    return est.fit()


def _tuner_result(t):
    return t.beta_, [v.clone() for v in t.flow_.state_dict().values()]


def _fit_vae(est):
    return est.fit(X)


def _vae_result(v):
    return len(v.history), v.transform(X)


def _fit_classifier(est):
    return est.fit(X, Y)


def _classifier_result(c):
    return len(c.history), c.predict_proba(X)


def _fit_flow(est):
    return est


def _flow_result(q):
    return q.sample(8, random_state=0)


RENAMED = [
    (_tuner, "hidden_features", "hidden_layer_sizes", (8,), _fit_tuner, _tuner_result,
     dict(max_iter=20)),
    (_tuner, "n_steps", "max_iter", 20, _fit_tuner, _tuner_result,
     dict(hidden_layer_sizes=(8,))),
    (FlowProposal, "hidden_features", "hidden_layer_sizes", (8,), _fit_flow, _flow_result,
     dict(loc=[0.0, 1.0], scale=[1.0, 2.0])),
    (_vae, "hidden_units", "hidden_layer_sizes", (8,), _fit_vae, _vae_result,
     dict(max_iter=2)),
    (_vae, "max_epochs", "max_iter", 2, _fit_vae, _vae_result,
     dict(hidden_layer_sizes=(8,))),
    (_classifier, "hidden_units", "hidden_layer_sizes", (8,), _fit_classifier,
     _classifier_result, dict(max_iter=2)),
    (_classifier, "max_epochs", "max_iter", 2, _fit_classifier, _classifier_result,
     dict(hidden_layer_sizes=(8,))),
]
IDS = [f"{make.__name__.strip('_')}-{old}" for make, old, *_ in RENAMED]


def _equal(a, b):
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return np.array_equal(a, b)


def _use(est, fit):
    """Fit (or, for a proposal, build) ``est``."""
    return fit(est) if fit is not _fit_flow else (est.build(), est)[1]


@pytest.mark.parametrize("make, old, new, value, fit, result, other", RENAMED, ids=IDS)
def test_old_name_warns_and_fits_as_the_new_one(make, old, new, value, fit, result, other):
    expected = result(_use(make(**{new: value}, **other), fit))
    with pytest.warns(FutureWarning, match=f"{old}=.*deprecated.*removed in sktilt 0.3; "
                                           f"use {new}="):
        got = result(_use(make(**{old: value}, **other), fit))
    assert _equal(got, expected)


@pytest.mark.parametrize("make, old, new, value, fit, result, other", RENAMED, ids=IDS)
def test_old_and_new_name_together_is_an_error(make, old, new, value, fit, result, other):
    default = inspect.signature(type(make(**other))).parameters[new].default
    both = value if not _equal(value, default) else (16,) if new.startswith("hidden") else 3
    with pytest.raises(ValueError, match=f"both {new}=.*{old}=.*set only {new}"):
        _use(make(**{old: value, new: both}, **other), fit)


@pytest.mark.parametrize("make, old, new, value, fit, result, other", RENAMED, ids=IDS)
def test_old_name_through_get_params_clone_and_set_params(make, old, new, value, fit, result,
                                                          other):
    est = make(**other)
    assert inspect.signature(type(est)).parameters[old].default == DEPRECATED
    assert est.get_params()[old] == DEPRECATED
    est.set_params(**{old: value})
    assert est.get_params()[old] == value
    copy = clone(est)
    assert copy.get_params()[old] == value and _equal(copy.get_params()[new],
                                                      est.get_params()[new])
    with pytest.warns(FutureWarning, match=f"use {new}="):
        _use(copy, fit)
    est.set_params(**{old: DEPRECATED, new: value})  # back to the new spelling: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        _use(est, fit)


def test_refiner_passes_old_tuner_names_to_its_tuner():
    data = np.random.default_rng(0).normal(1.0, 1.0, (200, 1))
    base = torch.distributions.MultivariateNormal(torch.zeros(1), 2.0 * torch.eye(1))
    small = {"n_reference_samples": 1000, "n_eval_samples": 512, "hidden_layer_sizes": (8,)}

    def refine(**tuner_params):
        refiner = AdversarialRefiner(base, n_normalizer_samples=500, validation_fraction=0,
                                     tuner_params={**small, **tuner_params}, random_state=0)
        return refiner.fit(data).sample(5)

    expected = refine(max_iter=20)
    with pytest.warns(FutureWarning, match="n_steps=.*use max_iter=20"):
        got = refine(n_steps=20)
    np.testing.assert_array_equal(got, expected)
    with pytest.raises(ValueError, match="unknown BoltzmannTuner") as err:
        refine(n_step=20)
    assert "'max_iter'" in str(err.value) and "'n_steps'" not in str(err.value)


def test_epoch_progress_reads_max_iter():
    from skorch import NeuralNet

    assert _epochs(_vae(max_iter=3)) == 3
    assert _epochs(_vae(max_epochs=4)) == 4  # the old name, when set, is the one used
    assert _epochs(NeuralNet(torch.nn.Linear(1, 1), torch.nn.MSELoss, max_epochs=5)) == 5


# ------------------------------------------------------------------ torch threads
def _record_threads(module: torch.nn.Module, seen: list) -> None:
    # the hook travels with the module's copies (inference runs on a float64 copy)
    module.register_forward_pre_hook(lambda *_: seen.append(torch.get_num_threads()))


def test_models_train_and_infer_with_the_configured_threads(caller_threads):
    with config_context(torch_threads=1):
        vae = _vae(hidden_layer_sizes=(8,), max_iter=1).fit(X)
        seen = []
        _record_threads(vae.module_.encoder, seen)
        _record_threads(vae.module_.decoder, seen)
        for method in (vae.transform, vae.encode, vae.reconstruct, vae.predict,
                       vae.score_samples, vae.score):
            method(X)
        vae.decode(np.zeros((2, 2), np.float32))
        vae.sample(3)
        assert len(seen) >= 8 and set(seen) == {1}
        assert torch.get_num_threads() == caller_threads

        clf = _classifier(hidden_layer_sizes=(8,), max_iter=1)
        seen = []
        clf.fit(X, Y)  # training: the net's module exists only once fit starts
        _record_threads(clf.module_.net, seen)
        clf.predict_proba(X)
        clf.predict(X)
        clf.partial_fit(X, Y)
        assert len(seen) >= 3 and set(seen) == {1}
        assert torch.get_num_threads() == caller_threads



def test_models_report_epochs_as_n_iter():
    vae = _vae(hidden_layer_sizes=(8,), max_iter=2)
    assert not hasattr(vae, "n_iter_")
    assert vae.fit(X).n_iter_ == 2
    assert vae.partial_fit(X).n_iter_ == 4
    assert _classifier(hidden_layer_sizes=(8,), max_iter=3).fit(X, Y).n_iter_ == 3
