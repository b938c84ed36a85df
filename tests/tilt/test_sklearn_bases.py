"""scikit-learn density estimators as tuner bases, against independent references."""

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.base import BaseEstimator
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.mixture import BayesianGaussianMixture, GaussianMixture
from sklearn.neighbors import KernelDensity
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktilt import BoltzmannTuner, LinearCriterion
from sktilt.tilt import TiltQualityWarning
from sktilt.tilt._bases import as_base
from sktilt.tilt._sklearn_bases import MixtureBase
from sktilt.tilt._sklearn_bases import EstimatorBase


def _data(n=300, seed=0):
    # Two correlated clusters in 3-d, on different scales per feature.
    rng = np.random.default_rng(seed)
    cov = np.array([[1.0, 0.8, 0.3], [0.8, 1.0, 0.5], [0.3, 0.5, 1.0]])
    X = rng.multivariate_normal(np.zeros(3), cov, n)
    X[: n // 3] += [3.0, -1.0, 2.0]
    return X * [1.0, 5.0, 0.2] + [0.0, 10.0, -1.0]


def _log_prob(base, X):
    return base.log_prob(torch.as_tensor(X, dtype=torch.float32)).numpy()


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_gaussian_mixture_log_prob_matches_score_samples(covariance_type):
    X = _data()
    gmm = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    base = as_base(gmm)
    assert isinstance(base, MixtureBase) and base.differentiable
    np.testing.assert_allclose(_log_prob(base, X), gmm.score_samples(X), atol=2e-4)


def test_bayesian_mixture_is_the_mixture_its_sample_draws_from():
    X = _data()
    bgmm = BayesianGaussianMixture(n_components=3, random_state=0).fit(X)
    # The plug-in mixture of weights_, means_, covariances_ (what sample() draws from).
    ref = logsumexp([np.log(w) + multivariate_normal(m, c).logpdf(X)
                     for w, m, c in zip(bgmm.weights_, bgmm.means_, bgmm.covariances_)], axis=0)
    np.testing.assert_allclose(_log_prob(as_base(bgmm), X), ref, atol=2e-4)


@pytest.mark.parametrize("weighted", [False, True])
def test_gaussian_kde_log_prob_matches_score_samples(weighted):
    X = _data(200)
    sw = np.random.default_rng(1).uniform(0.5, 2.0, len(X)) if weighted else None
    kde = KernelDensity(bandwidth=0.7).fit(X, sample_weight=sw)
    base = as_base(kde)
    assert isinstance(base, MixtureBase) and base.components == len(X)
    Y = _data(50, seed=3)
    np.testing.assert_allclose(_log_prob(base, Y), kde.score_samples(Y), atol=2e-4)


@pytest.mark.parametrize("density", [GaussianMixture(2, random_state=0),
                                     KernelDensity(bandwidth=0.5)],
                         ids=["gmm", "kde"])
def test_pipeline_with_scaler_is_a_density_of_the_original_features(density):
    X = _data()
    pipe = make_pipeline(StandardScaler(), density).fit(X)
    base = as_base(pipe)
    assert isinstance(base, MixtureBase)
    # Pipeline.score_samples is a density of the scaled features: add the Jacobian.
    log_det = np.log(pipe[0].scale_).sum()
    np.testing.assert_allclose(_log_prob(base, X), pipe.score_samples(X) - log_det,
                               atol=3e-4)


def test_pipeline_with_a_generic_estimator_goes_through_numpy():
    X = _data()
    pipe = make_pipeline(StandardScaler(), _NumpyDensity(2)).fit(X)
    base = as_base(pipe)
    assert isinstance(base, EstimatorBase) and not base.differentiable
    np.testing.assert_allclose(_log_prob(base, X),
                               pipe.score_samples(X) - np.log(pipe[0].scale_).sum(), atol=1e-4)
    torch.manual_seed(0)
    x = base.sample(20000).numpy()
    np.testing.assert_allclose(x.mean(0), X.mean(0), atol=0.05 * X.std(0).max())


def test_mixture_sampling_draws_the_index_first_with_the_right_moments():
    rng = np.random.default_rng(0)
    k, d = 500, 4
    weights, means = rng.uniform(0.1, 1.0, k), rng.normal(size=(k, d)) * 3
    tril = np.linalg.cholesky(np.eye(d) + 0.5)  # one shared correlated covariance
    base = MixtureBase(weights, means, scale_tril=np.broadcast_to(tril, (k, d, d)))
    torch.manual_seed(0)
    x = base.sample(200_000).double().numpy()
    w = weights / weights.sum()
    mean = w @ means
    cov = tril @ tril.T + (means - mean).T @ ((means - mean) * w[:, None])
    np.testing.assert_allclose(x.mean(0), mean, atol=0.05)
    np.testing.assert_allclose(np.cov(x.T), cov, atol=0.15)
    # A large mixture samples without drawing every component (memory ~ n, not n k).
    big = MixtureBase(np.ones(20_000), rng.normal(size=(20_000, d)), scale=0.1)
    assert big.sample(100_000).shape == (100_000, d)


def test_unfitted_estimator_is_cloned_fitted_and_exposed():
    X = _data()
    gmm = GaussianMixture(2, covariance_type="full", random_state=0)
    tuner = BoltzmannTuner(gmm, LinearCriterion([1.0, 0.0, 0.0]), kl_budget=0.5,
                           max_iter=50, random_state=0).fit(X)
    assert tuner.base_sampler_ is not gmm and tuner.base_estimator_ is tuner.base_sampler_
    assert not hasattr(gmm, "means_")  # the given estimator is never fitted
    np.testing.assert_allclose(tuner.base_sampler_.means_,
                               GaussianMixture(2, random_state=0).fit(X).means_)
    assert tuner.n_features_in_ == 3 and tuner.sample(5, random_state=0).shape == (5, 3)
    # A fitted one is used as is.
    fitted = tuner.base_sampler_
    again = BoltzmannTuner(fitted, LinearCriterion([1.0, 0.0, 0.0]), kl_budget=0.5,
                           max_iter=50, random_state=0).fit()
    assert again.base_sampler_ is fitted


def _linear_tilt(w, mu, S, a, beta):
    # N(mu_k, S_k) exp(beta a.x) = N(mu_k + beta S_k a, S_k) with weight
    # w_k exp(beta a.mu_k + beta^2 a'S_k a / 2): log Z, E_q f and KL.
    am, aSa = mu @ a, np.einsum("i,kij,j->k", a, S, a)
    lw = np.log(w) + beta * am + 0.5 * beta**2 * aSa
    log_z = logsumexp(lw)
    mean_f = np.exp(lw - log_z) @ (am + beta * aSa)
    return mean_f, beta * mean_f - log_z


def _correlated_data(n=600, seed=0):
    # Two clusters in 4-d, each close to a 2-d plane (correlations up to 0.99).
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2)) @ np.array([[1.0, 0.9, 0.8, -0.7], [0.0, 0.4, -0.5, 0.6]])
    X += 0.1 * rng.normal(size=(n, 4))
    X[: n // 3] += [2.0, -1.0, 1.0, 0.0]
    return StandardScaler().fit_transform(X)


@pytest.fixture(scope="module")
def correlated_tilt():
    """A full-covariance 2-component mixture, a linear criterion, and the exact tilt."""
    gmm = GaussianMixture(2, covariance_type="full", random_state=0).fit(_correlated_data())
    a, budget = np.array([1.0, -1.0, 1.0, 1.0]) / 2, 3.0
    args = (gmm.weights_, gmm.means_, gmm.covariances_, a)
    lo, hi = 1e-3, 20.0
    for _ in range(60):  # bisect KL(beta) = budget (KL grows with beta)
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _linear_tilt(*args, mid)[1] < budget else (lo, mid)
    return gmm, a, budget, lo, _linear_tilt(*args, lo)[0]


def test_linear_tilt_of_a_correlated_mixture_matches_closed_form_at_defaults(
        correlated_tilt):
    gmm, a, budget, beta, mean_f = correlated_tilt
    tuner = BoltzmannTuner(gmm, LinearCriterion(a), kl_budget=budget, random_state=0).fit()
    assert tuner.gradient_ == "pathwise" and tuner.flow_.full_covariance
    assert tuner.criterion_mean_ == pytest.approx(mean_f, rel=0.02)
    assert tuner.kl_ == pytest.approx(budget, rel=0.02)
    assert tuner.beta_ == pytest.approx(beta, rel=0.02)
    # The samples themselves: their mean f is the exact tilt's.
    f = tuner.sample(20000, random_state=1) @ a
    assert f.mean() == pytest.approx(mean_f, rel=0.02)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_diagonal_mixture_falls_short_and_names_the_setting_that_fixes_it(correlated_tilt):
    gmm, a, budget, _, mean_f = correlated_tilt
    with pytest.warns(TiltQualityWarning, match="covariance_type='full'"):
        tuner = BoltzmannTuner(gmm, LinearCriterion(a), kl_budget=budget,
                               covariance_type="diagonal", random_state=0).fit()
    assert not tuner.flow_.full_covariance
    assert tuner.criterion_mean_ < 0.95 * mean_f  # 12-16 % short over 3 seeds


class _NumpyDensity(BaseEstimator):
    """A density estimator sktilt has no torch form for (a GaussianMixture inside)."""

    def __init__(self, n_components=1):
        self.n_components = n_components

    def fit(self, X, y=None):
        self.gmm_ = GaussianMixture(self.n_components, random_state=0).fit(X)
        self.n_features_in_ = X.shape[1]
        return self

    def sample(self, n_samples=1, random_state=None):
        gmm = GaussianMixture(self.n_components, random_state=random_state)
        gmm.__dict__.update({k: v for k, v in self.gmm_.__dict__.items() if k.endswith("_")})
        return gmm.sample(n_samples)[0]

    def score_samples(self, X):
        return self.gmm_.score_samples(X)


def test_numpy_base_trains_by_score_function_and_meets_the_tilt():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 2)) @ np.array([[1.0, 0.0], [0.6, 0.8]])
    a, budget = np.array([1.0, 0.5]), 1.0
    tuner = BoltzmannTuner(_NumpyDensity(), LinearCriterion(a), kl_budget=budget,
                           random_state=0).fit(X)
    assert isinstance(tuner.base_.inner, EstimatorBase) and tuner.gradient_ == "score"
    gmm = tuner.base_sampler_.gmm_
    beta = np.sqrt(2 * budget / (a @ gmm.covariances_[0] @ a))  # one Gaussian
    mean_f = gmm.means_[0] @ a + beta * a @ gmm.covariances_[0] @ a
    assert tuner.kl_ == pytest.approx(budget, rel=0.05)
    assert tuner.criterion_mean_ == pytest.approx(mean_f, rel=0.05)


class _SampleOnly(BaseEstimator):
    def fit(self, X, y=None):
        self.n_features_in_ = X.shape[1]
        return self

    def sample(self, n_samples=1):
        return np.zeros((n_samples, self.n_features_in_))


@pytest.mark.parametrize("base_sampler, error, match", [
    (_SampleOnly().fit(np.zeros((3, 2))), TypeError, "base_sampler _SampleOnly has no "
                                                       "score_samples"),
    (KernelDensity(kernel="tophat").fit(np.zeros((3, 2))), ValueError,
     "base_sampler KernelDensity.*kernel='gaussian'"),
    (make_pipeline(PCA(2), GaussianMixture()).fit(np.random.default_rng(0).normal(
        size=(20, 3))), TypeError, "base_sampler is a Pipeline with step 'pca'"),
    (GaussianMixture(), ValueError, "base_sampler GaussianMixture is not fitted"),
])
def test_bad_bases_name_base_sampler_and_the_fix(base_sampler, error, match):
    with pytest.raises(error, match=match):
        BoltzmannTuner(base_sampler, LinearCriterion([1.0, 0.0])).fit()


def test_as_base_on_an_unfitted_estimator_says_how_to_fit_it():
    with pytest.raises(NotFittedError, match="base_sampler GaussianMixture is not fitted"):
        as_base(GaussianMixture())


def test_pathwise_gradient_on_a_numpy_base_is_refused():
    X = np.random.default_rng(0).normal(size=(100, 2))
    with pytest.raises(ValueError, match="gradient='pathwise'.*base_sampler _NumpyDensity"):
        BoltzmannTuner(_NumpyDensity(), LinearCriterion([1.0, 0.0]),
                       gradient="pathwise").fit(X)


def test_path_refuses_a_numpy_base():
    from sktilt import BoltzmannPath

    base = _NumpyDensity().fit(np.random.default_rng(0).normal(size=(100, 2)))
    with pytest.raises(ValueError, match="base_sampler _NumpyDensity is evaluated in numpy"):
        BoltzmannPath(base, LinearCriterion([1.0, 0.0])).fit()


def test_linear_tilt_of_a_kde_matches_closed_form_at_defaults():
    # A gaussian KDE is a mixture of isotropic Gaussians at the training points.
    X = _correlated_data(80, seed=2)[:, :3]
    kde = KernelDensity(bandwidth=0.5).fit(X)
    a, budget = np.array([1.0, 1.0, -1.0]) / np.sqrt(3), 2.0
    args = (np.full(len(X), 1 / len(X)), X, np.broadcast_to(0.25 * np.eye(3), (len(X), 3, 3)), a)
    lo, hi = 1e-3, 20.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _linear_tilt(*args, mid)[1] < budget else (lo, mid)
    tuner = BoltzmannTuner(kde, LinearCriterion(a), kl_budget=budget, random_state=0).fit()
    assert tuner.flow_.components == 32  # one per training point, at most 32
    assert tuner.criterion_mean_ == pytest.approx(_linear_tilt(*args, lo)[0], rel=0.03)
    assert tuner.kl_ == pytest.approx(budget, rel=0.03)
