"""AVOSimulatorFitter made of parts: 12 parameters, nested ones, the 0.1 keywords."""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold

import sktilt
from sktilt import (
    AVOSimulatorFitter,
    Critic,
    FlowProposal,
    GaussianProposal,
    MomentRefinement,
    Simulator,
)
from sktilt.datasets import poisson_simulator, poisson_simulator_batch

NEW = ["simulator", "proposal", "gamma", "summary", "critic", "refinement", "max_iter",
       "batch_size", "max_simulations", "n_jobs", "verbose", "random_state"]
X_POISSON = np.random.default_rng(0).poisson(7.0, size=(200, 1)).astype(float)
TINY = dict(max_iter=5, batch_size=16, critic=Critic(n_steps=1), random_state=0)


def _fitter(**params):
    params = {"simulator": Simulator(poisson_simulator_batch, vectorized=True),
              "proposal": GaussianProposal([np.log(5.0)], [0.5]),
              **{**TINY, "critic": clone(TINY["critic"])}, **params}
    return AVOSimulatorFitter(**params)


def _quiet_fit(fitter, X=X_POISSON, **fit_params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sktilt.FitQualityWarning)
        return fitter.fit(X, **fit_params)


# ------------------------------------------------------------------ parameters
def test_exactly_twelve_parameters_and_clone_round_trips():
    fitter = AVOSimulatorFitter(poisson_simulator, GaussianProposal([1.0], [1.0]))
    assert sorted(fitter.get_params(deep=False)) == sorted(NEW)
    params = fitter.get_params(deep=False)
    assert params["critic"] is None and params["refinement"] == "auto"
    assert params["max_simulations"] is None
    copy = clone(fitter)
    assert copy.get_params(deep=False).keys() == params.keys()
    assert copy.simulator is poisson_simulator


def test_init_and_set_params_never_raise():
    # sklearn's check_do_not_raise_errors_in_init_or_set_params on the 12 parameters
    for value in (-1, 3.0, "helloworld", np.array([1.0, 4.0]), [1], {}, []):
        params = dict.fromkeys(NEW, value)
        AVOSimulatorFitter(**params).set_params(**params)


def test_unknown_keyword_is_a_type_error():
    with pytest.raises(TypeError, match="unexpected keyword argument 'critic_rate'"):
        AVOSimulatorFitter(poisson_simulator, GaussianProposal([1.0], [1.0]), critic_rate=1)


def test_max_simulations_is_validated():
    with pytest.raises(ValueError, match="max_simulations"):
        _quiet_fit(_fitter(max_simulations=0))


# (old keyword, value, where it lands, the new spelling in the warning)
OLD = [
    ("vectorized", True, lambda f: f.simulator.vectorized,
     r"Simulator\(function, vectorized=True\)"),
    ("timeout", 5.0, lambda f: f.simulator.timeout, r"Simulator\(function, timeout=5.0\)"),
    ("on_failure", "raise", lambda f: f.simulator.on_failure, "on_failure='raise'"),
    ("max_failure_fraction", 0.2, lambda f: f.simulator.max_failure_fraction,
     r"Simulator\(function, max_failure_fraction=0.2\)"),
    ("common_random_numbers", True, lambda f: f.simulator.common_random_numbers,
     "common_random_numbers=True"),
    ("n_critic", 3, lambda f: f.critic.n_steps, r"critic=Critic\(n_steps=3\)"),
    ("critic_lr", 0.001, lambda f: f.critic.lr, r"use critic=Critic\(lr=0.001\)"),
    ("hidden_layer_sizes", (8,), lambda f: f.critic.hidden_layer_sizes,
     r"Critic\(hidden_layer_sizes=\(8,\)\)"),
    ("penalty", "r1", lambda f: f.critic.penalty, r"Critic\(penalty='r1'\)"),
    ("gradient_penalty", 5.0, lambda f: f.critic.penalty_weight,
     r"Critic\(penalty_weight=5.0\)"),
    ("device", "cpu", lambda f: f.critic.device, r"Critic\(device='cpu'\)"),
    ("lr", 0.05, lambda f: f.proposal.lr, r"GaussianProposal\(..., lr=0.05\)"),
    ("baseline", "mean", lambda f: f.proposal.baseline, "baseline='mean'"),
    ("averaging", 0.5, lambda f: f.proposal.averaging, "averaging=0.5"),
    ("callbacks", [], lambda f: f.proposal.callbacks, r"callbacks=\[\]"),
    ("min_scale", None, lambda f: f.proposal.min_scale, "min_scale=None"),
    ("moment_step", 0.3, lambda f: f.refinement.moment_step,
     r"MomentRefinement\(moment_step=0.3\)"),
    ("polish_simulations", 0, lambda f: f.refinement.polish_simulations,
     r"MomentRefinement\(polish_simulations=0\)"),
    ("final_batch_size", 400, None, "ignored"),
    ("validation_fraction", 0.25, lambda f: f._validation_fraction, r"fit\(X, X_val=...\)"),
]


@pytest.mark.parametrize("old, value, where, spelling", OLD, ids=[o[0] for o in OLD])
def test_each_old_keyword_lands_in_its_new_place_with_a_future_warning(old, value, where,
                                                                      spelling):
    proposal = GaussianProposal([1.0], [1.0])
    with pytest.warns(FutureWarning, match=f"{old}=.* is deprecated and will be removed in "
                                           f"sktilt 0.3; .*{spelling}") as caught:
        fitter = AVOSimulatorFitter(poisson_simulator, proposal, **{old: value})
    assert caught[0].filename == __file__  # points at the caller
    assert sorted(fitter.get_params(deep=False)) == sorted(NEW)
    if where is not None:
        assert where(fitter) == value
    assert proposal.get_params()["lr"] == "auto"  # the given proposal is not modified
    copy = clone(fitter)
    assert repr(copy) == repr(fitter)
    if old == "validation_fraction":
        assert copy._validation_fraction == 0.25
    # set_params takes the old keyword too
    with pytest.warns(FutureWarning, match=f"{old}="):
        other = AVOSimulatorFitter(poisson_simulator, proposal).set_params(**{old: value})
    if where is not None:
        assert where(other) == value


def test_old_keywords_combine_into_one_part():
    with pytest.warns(FutureWarning):
        fitter = AVOSimulatorFitter(poisson_simulator, GaussianProposal([1.0], [1.0]),
                                    critic_lr=1e-3, n_critic=2, moment_step=0.0,
                                    polish_simulations=0)
    assert fitter.critic.get_params() == Critic(lr=1e-3, n_steps=2).get_params()
    assert fitter.refinement is None  # neither moment step nor polish: Algorithm 1
    with pytest.warns(FutureWarning) as caught:
        flow = AVOSimulatorFitter(poisson_simulator, FlowProposal([1.0], [1.0]),
                                  min_scale=None, moment_step=0.5)
    assert any("a FlowProposal has no min_scale" in str(w.message) for w in caught)
    assert flow.refinement == "auto"  # no refinement outside a point fit


def test_the_deprecated_validation_fraction_still_holds_out_observations():
    X = np.random.default_rng(1).poisson(7.0, size=(400, 1)).astype(float)
    with pytest.warns(FutureWarning, match="validation_fraction"):
        fitter = _fitter(validation_fraction=0.25)
    _quiet_fit(fitter, X)
    assert fitter.two_sample_.n_observed == 100
    with pytest.warns(FutureWarning, match="validation_fraction"):
        tiny = _fitter(validation_fraction=0.0005)
    with pytest.raises(ValueError, match="validation_fraction=0.0005 leaves 0"):
        tiny.fit(X)
    with pytest.raises(ValueError, match="either X_val"):
        clone(fitter).fit(X, X_val=X[:50])


def test_x_val_is_the_check_sample():
    fitter = _quiet_fit(_fitter(), X_POISSON, X_val=X_POISSON[:37])
    assert fitter.two_sample_.n_observed == 37


# ------------------------------------------------------------------ nested
def test_set_params_reaches_a_default_critic_without_sharing_it():
    a = AVOSimulatorFitter(poisson_simulator, GaussianProposal([1.0], [1.0]))
    b = AVOSimulatorFitter(poisson_simulator, GaussianProposal([1.0], [1.0]))
    a.set_params(critic__lr=1e-3)
    assert a.critic.lr == 1e-3 and b.critic is None
    assert a.get_params()["critic__lr"] == 1e-3
    a.set_params(refinement__polish_simulations=0, simulator__vectorized=True)
    assert a.refinement.get_params() == {"moment_step": 0.5, "polish_simulations": 0}
    assert a.simulator.function is poisson_simulator and a.simulator.vectorized
    assert b.refinement == "auto" and b.simulator is poisson_simulator


def test_grid_search_over_a_critic_parameter():
    search = GridSearchCV(AVOSimulatorFitter(
        Simulator(poisson_simulator_batch, vectorized=True),
        GaussianProposal([np.log(5.0)], [0.5]), max_iter=3, batch_size=16, random_state=0),
        {"critic__lr": [1e-3, 1e-2]}, cv=KFold(2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sktilt.FitQualityWarning)
        search.fit(X_POISSON)
    assert search.best_params_["critic__lr"] in (1e-3, 1e-2)
    assert search.best_estimator_.critic.lr == search.best_params_["critic__lr"]
    assert search.estimator.critic is None  # the searched estimator is left as it was


# ------------------------------------------------------------------ parts
def test_refinement_none_runs_no_moment_step_or_polish():
    refined = _quiet_fit(_fitter(max_iter=6,
                                 refinement=MomentRefinement(polish_simulations=500)))
    plain = _quiet_fit(_fitter(max_iter=6, refinement=None))
    assert any("moment_shift" in h for h in refined.history_)
    assert refined.polish_shift_ is not None
    assert not any("moment_shift" in h for h in plain.history_)
    assert plain.polish_shift_ is None


@pytest.mark.parametrize("params", [
    {"gamma": 0.0},
    {"gamma": -0.5},
    {"proposal": FlowProposal([np.log(5.0)], [0.5])},
])
def test_a_moment_refinement_outside_a_point_fit_raises(params):
    fitter = _fitter(refinement=MomentRefinement(), **params)
    with pytest.raises(ValueError, match=r"MomentRefinement\(\) refines a point fit"):
        fitter.fit(X_POISSON)
    assert _fitter(**params)._refinement_spec() is None  # "auto": none there


def test_simulator_options_take_effect():
    # vectorized: the function receives a batch
    shapes = []

    def batch_simulator(thetas, random_state):
        shapes.append(np.shape(thetas))
        return poisson_simulator_batch(thetas, random_state)

    _quiet_fit(_fitter(simulator=Simulator(batch_simulator, vectorized=True),
                       refinement=None, max_iter=1))
    assert shapes and all(len(s) == 2 for s in shapes)
    # on_failure="raise" and max_failure_fraction reach the fit
    def failing(theta, random_state):
        raise RuntimeError("boom")

    with pytest.raises(sktilt.SimulationError):
        _fitter(simulator=Simulator(failing, on_failure="raise")).fit(X_POISSON)
    # n_parameters passes through
    assert Simulator(poisson_simulator).n_parameters == getattr(poisson_simulator,
                                                                "n_parameters", None)


def test_critic_and_proposal_settings_take_effect():
    fitter = _quiet_fit(_fitter(critic=Critic(hidden_layer_sizes=(7,), lr=1e-3, n_steps=2,
                                              batch_size=8),
                                proposal=GaussianProposal([np.log(5.0)], [0.5], lr=0.02,
                                                          min_scale=None),
                                refinement=None))
    assert fitter.critic_.module_.mlp[0].out_features == 7
    assert fitter.critic_.lr == 1e-3 and fitter.critic_.objective.batch_size == 8
    assert fitter.proposal_net_.lr == 0.02
    assert fitter.scale_floor_ is None
    assert fitter.proposal_.lr == 0.02 and fitter.proposal_.min_scale is None  # fitted()


def test_specs_pickle_and_export():
    sim = Simulator(poisson_simulator, timeout=3.0)
    assert pickle.loads(pickle.dumps(sim)).get_params() == sim.get_params()
    for name in ("Critic", "MomentRefinement", "Simulator", "FitQualityWarning"):
        assert name in sktilt.__all__ and getattr(sktilt, name) is not None
    from sktilt.simulation import Simulator as from_simulation
    assert from_simulation is Simulator
