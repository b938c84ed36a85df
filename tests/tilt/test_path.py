"""BoltzmannPath: one beta-conditioned fit, exact along the Gaussian path."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import InvalidParameterError

from sktilt import BoltzmannPath, BoltzmannTuner, LatentSampler, LinearCriterion
from sktilt.tilt import TiltQualityWarning

A = np.array([1.0, 0.5, -0.5, 0.0, 0.3, 0.2, -0.1, 0.4])


@pytest.fixture(scope="module")
def path():
    base = LatentSampler(torch.nn.Identity(), latent_dim=A.size)
    return BoltzmannPath(base, LinearCriterion(A), max_kl_budget=4.0, random_state=0).fit()


def test_beta_along_the_path_is_exact_in_the_gaussian_case(path):
    # q_beta = N(beta a, I): KL = beta^2 |a|^2 / 2, so beta(C) = sqrt(2 C) / |a|
    assert path.converged_
    for budget in (0.25, 0.5, 1.0, 2.0, 3.0, 4.0):
        model = path.tuner_at(budget)
        assert model.beta_ == pytest.approx(np.sqrt(2 * budget) / np.linalg.norm(A), rel=0.03)
        assert model.kl_ == pytest.approx(budget, rel=0.05)
        np.testing.assert_allclose(model.sample_latent(20_000).mean(0), model.beta_ * A,
                                   atol=0.05)
    # the measured path follows KL = beta^2 |a|^2 / 2 where the reference is reliable too
    exact = path.path_["beta"] ** 2 * (A @ A) / 2
    assert np.all(np.abs(path.path_["kl"] - exact) <= 0.06 + 0.05 * exact)


def test_a_point_has_the_tuner_surface(path):
    model = path.tuner_at(1.0)
    assert model.fit() is model
    X = model.sample(1000, random_state=1)
    assert X.shape == (1000, A.size)
    np.testing.assert_array_equal(X, path.sample(1000, kl_budget=1.0, random_state=1))
    assert model.score_samples(X).shape == (1000,)
    est = model.tail_probability(3.0, n_samples=20_000)
    assert 0 < est.probability < 1 and est.std_error > 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert model.sample_tail(50, 2.0).shape == (50, A.size)


def test_budget_outside_the_path_is_a_clear_error(path):
    with pytest.raises(ValueError, match="Refit with a larger max_kl_budget"):
        path.tuner_at(10.0)
    with pytest.raises(ValueError, match="kl_budget must be in"):
        path.tuner_at(float("nan"))
    with pytest.raises(InvalidParameterError, match="max_kl_budget"):
        BoltzmannPath(LatentSampler(torch.nn.Identity(), latent_dim=2), LinearCriterion(),
                      max_kl_budget=-1.0).fit()


def test_path_agrees_with_separate_tuners_on_a_decoder():
    torch.manual_seed(0)
    decoder = torch.nn.Sequential(torch.nn.Linear(4, 32), torch.nn.Tanh(),
                                  torch.nn.Linear(32, 24))
    base = LatentSampler(decoder, latent_dim=4)
    crit = LinearCriterion()  # the sum of the curve
    path = BoltzmannPath(base, crit, max_kl_budget=3.0, random_state=0).fit()
    for budget in (1.0, 3.0):
        tuner = BoltzmannTuner(base, crit, kl_budget=budget, random_state=0).fit()
        model = path.tuner_at(budget)
        assert model.beta_ == pytest.approx(tuner.beta_, rel=0.1)
        gap = abs(model.criterion_mean_ - tuner.criterion_mean_)
        assert gap < 0.05 * (abs(tuner.criterion_mean_) + tuner.criterion_std_)


# ------------------------------------------------------------------ the tuner's beta loop
TINY = dict(n_eval_samples=2048, n_reference_samples=5000, n_path_points=4, random_state=0)
BASE2 = LatentSampler(torch.nn.Identity(), latent_dim=2)


def _bounded(x):
    return torch.tanh(x[:, 0])  # E_q f <= 1: a large KL budget is out of reach


def test_path_and_tuner_meet_a_budget_alike(path):
    # The same loop steers the tuner's beta and the path's beta_max: at the path's
    # largest budget both agree with the closed form beta = sqrt(2 C) / |a|, and with
    # each other, within Monte-Carlo error.
    budget = path.max_kl_budget
    base = LatentSampler(torch.nn.Identity(), latent_dim=A.size)
    tuner = BoltzmannTuner(base, LinearCriterion(A), kl_budget=budget, random_state=0).fit()
    exact = np.sqrt(2 * budget) / np.linalg.norm(A)
    assert path.converged_ and tuner.converged_
    assert path.beta_max_ == pytest.approx(exact, rel=0.03)
    assert tuner.beta_ == pytest.approx(exact, rel=0.03)
    kept = path.history_[-1]
    assert kept["beta"] == path.beta_max_
    for kl, se in ((kept["kl"], kept["kl_se"]), (tuner.kl_, tuner.kl_se_)):
        assert abs(kl - budget) <= max(path.tol * budget, 2 * se)
    assert abs(kept["kl"] - tuner.kl_) <= 2 * path.tol * budget + 3 * np.hypot(
        kept["kl_se"], tuner.kl_se_)


def test_path_records_its_evaluations_as_the_tuner(path):
    tuner = BoltzmannTuner(BASE2, LinearCriterion([1.0, 0.0]), kl_budget=0.5,
                           max_iter=100, random_state=0).fit()
    assert path.n_iter_ == len(path.history_) >= 1
    assert set(path.history_[0]) == set(tuner.history_[0])
    steps = [row["steps"] for row in path.history_]
    assert steps == sorted(steps) and steps[-1] == path.n_steps_
    for row in path.history_:
        # q_beta = N(beta a, I): KL = beta^2 |a|^2 / 2 and E_q f = beta |a|^2, which the
        # flow's draws reweighted to the exact tilt (good Pareto k) give too
        assert row["kl"] == pytest.approx(row["beta"] ** 2 * (A @ A) / 2, rel=0.05)
        assert row["pareto_k"] < 0.5 and row["reference_ess"] > 0
        assert row["reweighted_criterion_mean"] == pytest.approx(row["beta"] * (A @ A),
                                                                 rel=0.03)


def test_the_loop_is_shared():
    from sktilt.tilt import _beta_search, _path, _tuner

    assert _path.run_budget_search is _tuner.run_budget_search is _beta_search.run_budget_search


def test_unreachable_budget_warns_as_the_tuner():
    with pytest.warns(ConvergenceWarning, match="kl_budget=50 was not met") as tuner_w:
        BoltzmannTuner(BASE2, _bounded, kl_budget=50.0, max_iter=100, beta_max=30.0,
                       n_eval_samples=2048, n_reference_samples=5000, random_state=0).fit()
    with pytest.warns(ConvergenceWarning, match="max_kl_budget=50 was not met") as path_w:
        path = BoltzmannPath(BASE2, _bounded, max_kl_budget=50.0, max_iter=100,
                             beta_max=30.0, **TINY).fit()
    assert not path.converged_ and path.n_iter_ == len(path.history_) >= 1
    assert path.history_[-1]["kl"] < 50.0
    tail = "The budget may be unreachable for this criterion (f bounded above)"
    assert tail in str(tuner_w[0].message) and tail in str(path_w[0].message)
    assert path_w[0].filename == tuner_w[0].filename == __file__


def test_under_fit_warns_as_the_tuner(monkeypatch):
    # White-box, as test_warning_locations shifts a reference: every evaluation
    # under-fits, so neither fit is accepted and both keep their closest fit.
    from sktilt.tilt import ImportanceDiagnostics

    monkeypatch.setattr(ImportanceDiagnostics, "under_fits", lambda self, se: True)
    with warnings.catch_warnings(record=True) as tuner_w:
        warnings.simplefilter("always")
        BoltzmannTuner(BASE2, LinearCriterion([1.0, 0.0]), kl_budget=0.5, max_iter=100,
                       n_eval_samples=2048, n_reference_samples=5000, random_state=0).fit()
    with warnings.catch_warnings(record=True) as path_w:
        warnings.simplefilter("always")
        path = BoltzmannPath(BASE2, LinearCriterion([1.0, 0.0]), max_kl_budget=0.5,
                             max_iter=100, **TINY).fit()
    assert not path.converged_

    def seen(caught):
        return sorted({w.category.__name__ for w in caught
                       if w.category in (TiltQualityWarning, ConvergenceWarning)})

    assert seen(path_w) == seen(tuner_w) == ["ConvergenceWarning", "TiltQualityWarning"]
    for caught in (tuner_w, path_w):
        under = [w for w in caught if w.category is TiltQualityWarning]
        assert str(under[0].message).startswith("The fitted flow under-fits q_beta")
        assert under[0].filename == __file__


# ------------------------------------------------------------------ renamed parameters
RENAMED = [("n_steps", "max_iter", 50), ("hidden_features", "hidden_layer_sizes", (8,))]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("old, new, value", RENAMED)
def test_old_parameter_names_warn_and_still_work(old, new, value):
    fit = dict(max_kl_budget=0.5, max_iter=50, hidden_layer_sizes=(8,), **TINY)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        current = BoltzmannPath(BASE2, LinearCriterion([1.0, 0.0]), **fit).fit()
    fit.pop(new)
    path = BoltzmannPath(BASE2, LinearCriterion([1.0, 0.0]), **fit, **{old: value})
    assert path.get_params()[old] == value and clone(path).get_params()[old] == value
    with pytest.warns(FutureWarning, match=rf"BoltzmannPath\({old}=...\) is deprecated .* "
                                           rf"use {new}="):
        path.fit()
    # the old name means what the new one does: the same flow, the same fit
    assert path.n_steps_ == current.n_steps_ <= 50
    assert path.beta_max_ == current.beta_max_
    assert ([p.shape for p in path.flow_.parameters()]
            == [p.shape for p in current.flow_.parameters()])


@pytest.mark.parametrize("old, new, value", RENAMED)
def test_old_and_new_parameter_names_together_are_an_error(old, new, value):
    other = 60 if new == "max_iter" else (16,)
    path = BoltzmannPath(BASE2, LinearCriterion(), **{new: other, old: value})
    with pytest.raises(ValueError, match=f"both {new}=.* and its deprecated old name {old}"):
        path.fit()


def test_old_parameter_names_are_validated():
    with pytest.raises(InvalidParameterError, match="n_steps"):
        BoltzmannPath(BASE2, LinearCriterion(), n_steps="many").fit()
    assert BoltzmannPath(BASE2, LinearCriterion()).get_params()["n_steps"] == "deprecated"
