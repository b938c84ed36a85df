"""Warnings raised inside fit/sample/... point at the user's line, not at sklearn or sktilt.

``fit`` is wrapped by scikit-learn's ``_fit_context`` and the refiner fits a tuner inside
its own ``fit``, so a fixed ``stacklevel`` pointed at ``sklearn/base.py`` (issue #29).
Each test triggers one estimator's warning from this file and checks where it points.
"""

import dataclasses
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures

from sktilt import (AdversarialRefiner, AVOSimulatorFitter, BoltzmannPath, BoltzmannTuner,
                    GaussianProposal, LatentSampler)
from sktilt._utils import warn_at_caller
from sktilt.avo import FitQualityWarning
from sktilt.tilt import LinearCriterion, TiltQualityWarning

TINY = dict(n_transforms=1, hidden_layer_sizes=(8,), max_iter=20, max_beta_iter=2,
            n_eval_samples=512, n_reference_samples=1000, random_state=0)
BASE = LatentSampler(torch.nn.Identity(), latent_dim=2)


def _caught(category, call):
    """The warnings of ``category`` that ``call()`` raised (all of them recorded)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    found = [w for w in caught if issubclass(w.category, category)]
    assert found, f"no {category.__name__}; got {[str(w.message) for w in caught]}"
    return found


def _assert_here(found):
    for w in found:
        assert w.filename == __file__, f"{w.category.__name__} points at {w.filename}"


def _bounded(x):
    return torch.tanh(x[:, 0])  # E_q f <= 1: a large KL budget is out of reach


def test_helper_skips_sktilt_and_sklearn_frames():
    # called directly from here, the caller is this line
    found = _caught(UserWarning, lambda: warn_at_caller("direct"))
    _assert_here(found)
    first = test_helper_skips_sktilt_and_sklearn_frames.__code__.co_firstlineno
    assert found[0].lineno == first + 2


def test_tuner_convergence_warning():
    tuner = BoltzmannTuner(BASE, _bounded, kl_budget=50.0, **{**TINY, "beta_max": 30.0})
    _assert_here(_caught(ConvergenceWarning, tuner.fit))


def test_path_convergence_warning():
    # the tuner's beta loop, so the tuner's warning, from the path's fit
    path = BoltzmannPath(BASE, _bounded, max_kl_budget=50.0, beta_max=30.0, max_iter=50,
                         n_path_points=2, n_eval_samples=512, n_reference_samples=1000,
                         random_state=0)
    _assert_here(_caught(ConvergenceWarning, path.fit))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_tuner_tilt_quality_and_sample_tail_warnings():
    tuner = BoltzmannTuner(BASE, LinearCriterion([1.0, 0.0]), kl_budget=3.0, **TINY).fit()
    tuner._reference_f = tuner._reference_f + 1.0  # a reference the proposal contradicts
    _assert_here(_caught(TiltQualityWarning, lambda: tuner.tail_probability(2.5)))
    _assert_here(_caught(RuntimeWarning, lambda: tuner.sample_tail(
        2000, 2.5, oversample=1, random_state=3)))


def test_path_constraint_warning():
    path = BoltzmannPath(BASE, LinearCriterion([1.0, 0.0]), max_kl_budget=3.0,
                         constraints=[(LinearCriterion([0.0, 1.0]), ">=", 1.0)],
                         n_path_points=4, max_iter=100, n_reference_samples=2000,
                         random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the fit's own warnings are not under test
        path.fit()
    # White-box, as test_diagnostics shifts a reference: a bound of 5 that the path
    # (fitted for 1) is nowhere near, so the model at any budget reports it unmet.
    c = path.multipliers_.constraints[0]
    path.multipliers_.constraints = (dataclasses.replace(c, value=5.0),)
    found = _caught(ConvergenceWarning, lambda: path.sample(5, kl_budget=1.0))
    assert "does not meet" in str(found[0].message)
    _assert_here(found)


def _gaussian(theta, random_state):
    return theta + random_state.standard_normal(1)


def test_avo_fit_quality_warning():
    # exponential data, a unit-variance Gaussian location model: no theta matches
    X = np.random.default_rng(0).exponential(2.0, size=(2000, 1))
    fitter = AVOSimulatorFitter(_gaussian, GaussianProposal([0.0], [1.0]), max_iter=30,
                                random_state=0)
    _assert_here(_caught(FitQualityWarning, lambda: fitter.fit(X)))


def test_refiner_warning_through_its_inner_tuner():
    # data where the base has (almost) no mass: the discriminator separates them
    X = np.random.default_rng(0).normal(8.0, 0.5, (600, 1))
    base = torch.distributions.MultivariateNormal(torch.zeros(1), torch.eye(1))
    classifier = make_pipeline(PolynomialFeatures(2), LogisticRegression(max_iter=1000))
    refiner = AdversarialRefiner(base, classifier=classifier, random_state=0,
                                 tuner_params={"max_iter": 20, "n_reference_samples": 2000,
                                               "n_eval_samples": 1024})
    _assert_here(_caught(TiltQualityWarning, lambda: refiner.fit(X)))


@pytest.mark.parametrize("category", [ConvergenceWarning, TiltQualityWarning])
def test_pytest_warns_sees_the_categories(category):
    # the helper issues through warnings.warn: filters and pytest.warns still apply
    with pytest.warns(category, match="x"):
        warn_at_caller("x", category)
