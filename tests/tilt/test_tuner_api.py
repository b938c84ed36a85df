"""BoltzmannTuner as a scikit-learn estimator: checks, cloning, pickling, errors."""

import pickle
import warnings

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

from sktilt import BoltzmannTuner, LatentSampler
from sktilt.tilt import CurveMaximum, LinearCriterion
from sktilt.metrics import PARETO_SCORING, pareto_front_from_cv
from sktilt.tilt import GaussianBase

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

TINY = dict(n_transforms=1, hidden_layer_sizes=(8,), max_iter=20, max_beta_iter=2,
            n_eval_samples=512, n_reference_samples=1000, random_state=0)


def _latent_tuner(**kw):
    torch.manual_seed(0)
    dec = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 6))
    params = {"criterion": CurveMaximum(), "kl_budget": 0.5, **TINY, **kw}
    return BoltzmannTuner(LatentSampler(dec, latent_dim=2), **params)


# --- scikit-learn common checks ----------------------------------------------------------
# The checks fit on random X with 1-10 features: a GaussianBase (fitted on X first, the
# meta-estimator path) and a coordinate-sum criterion adapt to any number of features.
# A LatentSampler base ignores X (its decoder fixes the dimension); score_samples only
# needs the criterion, which takes any width here.
EXPECTED_FAILED_LATENT = {
    "check_estimators_overwrite_params": (
        "joblib.hash of a torch module differs from its deep copy's even when untouched; "
        "test_base_model_unchanged_by_fit checks the decoder's state_dict instead"
    ),
}


def _expected_failed(estimator):
    return EXPECTED_FAILED_LATENT if isinstance(estimator.base_sampler, LatentSampler) else {}


@parametrize_with_checks(
    [BoltzmannTuner(GaussianBase(), LinearCriterion(), kl_budget=0.5, **TINY),
     _latent_tuner()],
    expected_failed_checks=_expected_failed,
)
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        check(estimator)


def test_base_model_unchanged_by_fit():
    tuner = _latent_tuner()
    decoder = tuner.base_sampler.decoder
    before = {k: v.clone() for k, v in decoder.state_dict().items()}
    flags = [p.requires_grad for p in decoder.parameters()]
    tuner.fit()
    for k, v in decoder.state_dict().items():
        assert torch.equal(v, before[k])
    assert [p.requires_grad for p in decoder.parameters()] == flags
    assert all(p.grad is None for p in decoder.parameters())


def test_clone_and_nested_set_params():
    tuner = _latent_tuner()
    tuner.set_params(base_sampler__latent_dim=3, criterion__temperature=0.5, kl_budget=2.0)
    assert tuner.base_sampler.latent_dim == 3
    assert tuner.criterion.temperature == 0.5
    cloned = clone(tuner)
    assert cloned.get_params()["criterion__temperature"] == 0.5
    assert cloned.kl_budget == 2.0 and cloned.base_sampler is not tuner.base_sampler


def test_same_random_state_same_results_and_pickle_round_trip(tmp_path):
    a = _latent_tuner().fit()
    b = _latent_tuner().fit()
    assert a.beta_ == b.beta_ and a.kl_ == b.kl_
    np.testing.assert_array_equal(a.sample(100), b.sample(100))
    # an int random_state makes sample() reproducible call to call
    np.testing.assert_array_equal(a.sample(10), a.sample(10))
    assert not np.array_equal(a.sample(10, random_state=1), a.sample(10, random_state=2))
    restored = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(restored.sample(100, random_state=5),
                                  a.sample(100, random_state=5))
    joblib.dump(a, tmp_path / "tuner.joblib")
    loaded = joblib.load(tmp_path / "tuner.joblib")
    np.testing.assert_array_equal(loaded.sample_latent(50), a.sample_latent(50))


def test_fit_does_not_touch_global_torch_rng():
    tuner = _latent_tuner()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    tuner.fit()
    np.testing.assert_array_equal(torch.rand(3), expected)


@pytest.mark.parametrize("budget", [0.0, -1.0, float("nan")])
def test_invalid_kl_budget(budget):
    with pytest.raises(InvalidParameterError, match="kl_budget"):
        _latent_tuner(kl_budget=budget).fit()


def test_criterion_wrong_shape_and_non_finite():
    def wrong_shape(x):
        return x  # (n, 6), not (n,)

    def with_nan(x):
        out = x.sum(1)
        out[0] = float("nan")
        return out

    with pytest.raises(ValueError, match="criterion must map a batch of shape"):
        _latent_tuner(criterion=wrong_shape).fit()
    with pytest.raises(ValueError, match="criterion returned 1 non-finite"):
        _latent_tuner(criterion=with_nan).fit()


def test_decoder_latent_dim_mismatch_and_unsupported_base():
    dec = torch.nn.Linear(4, 6)
    with pytest.raises(ValueError, match="latent_dim=3 matches the decoder"):
        BoltzmannTuner(LatentSampler(dec, latent_dim=3), CurveMaximum()).fit()
    with pytest.raises(ValueError, match="latent_dim must be a positive int"):
        BoltzmannTuner(LatentSampler(dec, latent_dim=0), CurveMaximum()).fit()
    with pytest.raises(TypeError, match="base_sampler must be a LatentSampler"):
        BoltzmannTuner(np.zeros(3), CurveMaximum()).fit()


def test_sample_errors():
    tuner = _latent_tuner()
    with pytest.raises(NotFittedError):
        tuner.sample(5)
    tuner.fit()
    for bad in (0, -3, 2.5):
        with pytest.raises(ValueError, match="n_samples must be a positive int"):
            tuner.sample(bad)


class NaNInTheTail:
    """Curve maximum that is NaN where it exceeds ``limit``: a model that breaks down in a
    region the base model almost never visits, but the tilt does."""

    def __init__(self, limit):
        self.limit = limit

    def __call__(self, x):
        out = x.max(1).values
        return out + 0.0 * torch.log(self.limit - out)  # NaN above the limit


def test_nan_mid_fit_keeps_a_consistent_flow():
    # The base reaches f = 0.67 in 10^5 draws; the tilt toward budget 6 goes past 0.70.
    tuner = _latent_tuner(criterion=NaNInTheTail(0.70), kl_budget=6.0, max_iter=300)
    with pytest.warns(RuntimeWarning, match="diverged .* kept the flow evaluated at"):
        tuner.fit()
    # what the tuner reports describes the flow it kept: fresh draws agree with it
    f_kept = tuner.criterion(torch.as_tensor(tuner.sample(20_000, random_state=1))).numpy()
    assert np.isfinite(tuner.kl_) and np.isfinite(tuner.criterion_mean_)
    assert np.isnan(f_kept).mean() < 0.01
    assert abs(np.nanmean(f_kept) - tuner.criterion_mean_) < 5 * tuner.criterion_mean_se_
    assert len(tuner.history_) == tuner.n_iter_ >= 1 and tuner.beta_ > 0
    assert tuner.history_[-1]["beta"] == tuner.beta_ and not tuner.converged_


def test_nan_everywhere_the_tilt_starts_is_a_clear_error():
    tuner = _latent_tuner(criterion=NaNInTheTail(0.60), kl_budget=6.0, max_iter=300)
    # one error that names the culprit, no "kept the flow" warning before it
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(FloatingPointError, match="the criterion returned NaN/inf"):
            tuner.fit()
    assert not hasattr(tuner, "beta_")


def test_sample_million_in_chunks():
    tuner = _latent_tuner().fit()
    X = tuner.sample(10**6)
    assert X.shape == (10**6, 6) and X.dtype == np.float32 and np.isfinite(X).all()


def test_unreachable_budget_warns_and_keeps_best():
    def bounded(x):
        return torch.tanh(x[:, 0])  # E_q f <= 1: KL grows only logarithmically

    base = LatentSampler(torch.nn.Identity(), latent_dim=2)
    tuner = BoltzmannTuner(base, bounded, kl_budget=50.0, **{**TINY, "beta_max": 30.0})
    with pytest.warns(Warning, match="not met"):
        tuner.fit()
    assert tuner.kl_ < 50.0 and not tuner.converged_


def test_grid_search_gives_pareto_front():
    base = LatentSampler(torch.nn.Identity(), latent_dim=2)
    tuner = BoltzmannTuner(base, LinearCriterion([1.0, 0.0]),
                           **{**TINY, "max_iter": 240, "n_transforms": 0, "max_beta_iter": 4,
                              "n_eval_samples": 8192})
    X = np.zeros((4, 1))
    search = GridSearchCV(tuner, {"kl_budget": [0.25, 1.0, 2.0]}, scoring=PARETO_SCORING,
                          refit=False, cv=[(np.arange(4), np.arange(4))]).fit(X)
    kl = search.cv_results_["mean_test_kl"]
    crit = search.cv_results_["mean_test_criterion_mean"]
    np.testing.assert_allclose(kl, [0.25, 1.0, 2.0], rtol=0.1)
    # exact front for f = z_0: E_q f = beta = sqrt(2 KL)
    np.testing.assert_allclose(crit, np.sqrt(2 * kl), rtol=0.05)
    front = pareto_front_from_cv(search.cv_results_)
    assert list(front["kl"]) == sorted(front["kl"]) and len(front["params"]) == 3


def test_score_samples_is_log_density_ratio():
    # q_beta / p = exp(beta a.x) / Z with log Z = beta^2 |a|^2 / 2 for p = N(0, I)
    base = LatentSampler(torch.nn.Identity(), latent_dim=2)
    tuner = BoltzmannTuner(base, LinearCriterion([1.0, 0.0]), kl_budget=0.5,
                           **{**TINY, "n_reference_samples": 200_000}).fit()
    X = np.array([[0.0, 0.0], [1.0, 5.0], [-2.0, 0.0]], dtype=np.float32)
    b = tuner.beta_
    expected = b * X[:, 0] - b**2 / 2
    np.testing.assert_allclose(tuner.score_samples(X), expected, atol=0.02)
    assert tuner.score(X) == pytest.approx(expected.mean(), abs=0.02)


def test_reference_curve_and_skorch_callbacks(capsys):
    from skorch.callbacks import Callback

    class CountEpochs(Callback):
        def initialize(self):
            self.n = 0
            return self

        def on_epoch_end(self, net, **kw):
            self.n += 1

    base = LatentSampler(torch.nn.Identity(), latent_dim=2)
    counter = CountEpochs()
    tuner = BoltzmannTuner(base, LinearCriterion([1.0, 1.0]), kl_budget=1.0,
                           **{**TINY, "max_iter": 40, "max_beta_iter": 3},
                           callbacks=[counter], verbose=1).fit()
    out = capsys.readouterr().out
    assert "[BoltzmannTuner] step" in out
    # one skorch epoch (run) per beta iteration, seen by the user's callback
    seen = dict(tuner.net_.callbacks_)["CountEpochs"].n  # the fit works on a clone
    assert len(tuner.net_.history) == seen >= tuner.n_iter_ >= 1  # a run per beta update
    curve = tuner.reference_curve([0.0, 0.5, 1.0], n_samples=200_000)
    # exact for f = z1 + z2 under N(0, I): E_q f = 2 beta, KL = beta^2
    np.testing.assert_allclose(curve["criterion_mean"], [0.0, 1.0, 2.0], atol=0.03)
    np.testing.assert_allclose(curve["kl"], [0.0, 0.25, 1.0], atol=0.03)
    assert (curve["ess"] > 1000).all()
