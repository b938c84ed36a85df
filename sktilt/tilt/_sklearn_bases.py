"""scikit-learn density estimators as tuner bases.

A fitted estimator with ``sample`` and ``score_samples`` becomes a :class:`Base` here:

* Gaussian mixtures (``GaussianMixture``, ``BayesianGaussianMixture``, any covariance
  type) and gaussian-kernel ``KernelDensity`` (a mixture of ``n_train`` isotropic
  Gaussians of standard deviation ``bandwidth_``) are rewritten exactly as a
  :class:`MixtureBase`, a torch mixture: ``log p`` is differentiable, so the tuner's
  gradients stay pathwise;
* any other estimator goes through :class:`EstimatorBase`, which calls its numpy
  ``sample`` / ``score_samples``: ``log p`` has no gradient, so the tuner trains with
  score-function gradients throughout.

A ``Pipeline`` of ``StandardScaler`` steps (or ``"passthrough"``) in front of one of those
is the density of the *original* features: the scaler's log-Jacobian ``-sum(log scale_)``
is included (scikit-learn's ``Pipeline.score_samples`` leaves it out, so it is a density
of the scaled features). For a mixture the scaler is folded into the components.
"""

from __future__ import annotations

__all__ = ["EstimatorBase", "MixtureBase", "sklearn_base"]

import copy
import inspect
import math

import numpy as np
import torch
from sklearn.mixture import BayesianGaussianMixture, GaussianMixture
from sklearn.neighbors import KernelDensity
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from zuko.lazy import LazyDistribution

from .._utils import to_numpy
from ._bases import Base

# log_prob holds (rows x components x dim) floats at once; larger inputs go in row chunks.
_MAX_ELEMENTS = 2**23


class _Lazy(LazyDistribution):
    # A Base as the lazy base of a zuko flow (only sample / log_prob are used).
    def __init__(self, base: Base):
        super().__init__()
        self.base = base

    def forward(self, c=None):
        return _BaseDistribution(self.base)


class _BaseDistribution(torch.distributions.Distribution):
    arg_constraints: dict = {}

    def __init__(self, base: Base):
        self._base = base
        super().__init__(event_shape=(base.dim,), validate_args=False)

    def sample(self, sample_shape=()):
        n = math.prod(sample_shape)
        return self._base.sample(n).reshape(*sample_shape, self._base.dim)

    def log_prob(self, value):
        return self._base.log_prob(value)


class MixtureBase(Base):
    """A Gaussian mixture ``sum_k w_k N(means[k], L_k L_k^T)`` as a differentiable base.

    Sampling draws the component index first, then one Gaussian draw, so memory grows
    with the number of samples, not samples times components (a kernel density estimate
    is a mixture of one component per training point).

    Parameters
    ----------
    weights : array-like of shape (K,)
        Mixture weights (normalised here).
    means : array-like of shape (K, d)
        Component means.
    scale_tril : array-like of shape (K, d, d) or None, default=None
        Lower Cholesky factors of the component covariances.
    scale : float, array-like of shape (d,) or None, default=None
        Instead of ``scale_tril``: standard deviations shared by every component, one
        per feature or one for all (a gaussian KDE's bandwidth).

    Attributes
    ----------
    components, dim : int
        ``K`` and ``d``.

    Examples
    --------
    >>> import torch
    >>> from sktilt.tilt._sklearn_bases import MixtureBase
    >>> base = MixtureBase([0.5, 0.5], [[0.0], [3.0]], scale=1.0)
    >>> base.sample(4).shape
    torch.Size([4, 1])
    >>> round(float(base.log_prob(torch.tensor([[1.5]]))), 4)  # log N(1.5; 0, 1)
    -2.0439
    """

    latent = False

    def __init__(self, weights, means, scale_tril=None, scale=None):
        if (scale_tril is None) == (scale is None):
            raise ValueError("MixtureBase needs exactly one of scale_tril and scale.")
        w = torch.as_tensor(np.asarray(weights, dtype=np.float64))
        self.log_weights = (w / w.sum()).log().float()
        self.means = torch.as_tensor(np.array(means, dtype=np.float32))
        self.components, self.dim = (int(n) for n in self.means.shape)
        self.scale = (None if scale is None else torch.as_tensor(
            np.broadcast_to(np.asarray(scale, dtype=np.float64), (self.dim,)).copy(),
            dtype=torch.float32))
        self.scale_tril = (None if scale_tril is None
                           else torch.as_tensor(np.array(scale_tril, dtype=np.float32)))
        if self.scale_tril is not None:
            eye = torch.eye(self.dim, dtype=torch.float64)
            L = torch.as_tensor(np.array(scale_tril, dtype=np.float64))
            # Precompute the inverse factors (in float64, then stored in float32).
            self._inv_tril = torch.linalg.solve_triangular(L, eye.expand_as(L),
                                                           upper=False).float()
            self._half_log_det = L.diagonal(dim1=-2, dim2=-1).log().sum(-1).float()
        self._lazy = _Lazy(self)

    def lazy(self):
        return self._lazy

    def sample(self, n, device="cpu"):
        with torch.no_grad():
            index = torch.distributions.Categorical(logits=self.log_weights).sample((n,))
            noise = torch.randn(n, self.dim)
            if self.scale is not None:
                x = self.means[index] + self.scale * noise
            else:
                x = self.means[index] + (self.scale_tril[index] @ noise[:, :, None])[..., 0]
        return x.to(device)

    def log_prob(self, z):
        rows = max(1, _MAX_ELEMENTS // (self.components * self.dim))
        if z.shape[0] > rows:
            return torch.cat([self.log_prob(part) for part in z.split(rows)])
        const = -0.5 * self.dim * math.log(2 * math.pi)
        means = self.means.to(z.device)
        if self.scale is not None:  # a shared diagonal: squared distances by one matmul
            scale = self.scale.to(z.device)
            zs, ms = z / scale, means / scale
            sq = ((zs**2).sum(-1, keepdim=True) - 2 * zs @ ms.T
                  + (ms**2).sum(-1)).clamp_min(0.0)
            log_comp = -0.5 * sq - scale.log().sum()
        else:
            inv = self._inv_tril.to(z.device)
            y = torch.einsum("kij,nj->nki", inv, z) - (inv @ means[..., None])[..., 0]
            log_comp = -0.5 * (y**2).sum(-1) - self._half_log_det.to(z.device)
        return torch.logsumexp(log_comp + self.log_weights.to(z.device), -1) + const

    def to(self, device):
        # Parameters stay where they are; log_prob moves them to z's device per call.
        return self


class EstimatorBase(Base):
    """Any fitted estimator with ``sample`` and ``score_samples``, called in numpy.

    ``log p`` has no gradient here: a tuner on this base uses score-function gradients
    for both the KL and the criterion (slower to converge than pathwise ones).

    Parameters
    ----------
    estimator : estimator
        Fitted; ``sample(n)`` (returning ``X`` or ``(X, y)``) and ``score_samples(X)``.
    dim : int
        Number of features.
    """

    latent = False
    differentiable = False

    def __init__(self, estimator, dim: int, *, shift=None, scale=None):
        self.estimator, self.dim = estimator, int(dim)
        # An affine map in front (a StandardScaler folded in): x = shift + scale * u.
        self.shift = np.zeros(self.dim) if shift is None else np.asarray(shift, float)
        self.scale = np.ones(self.dim) if scale is None else np.asarray(scale, float)
        self._lazy = _Lazy(self)

    def lazy(self):
        return self._lazy

    def sample(self, n, device="cpu"):
        seed = int(torch.randint(0, 2**31 - 1, ()).item())  # follows torch's global RNG
        u = _sample_seeded(self.estimator, n, seed)
        x = self.shift + self.scale * np.asarray(u, dtype=np.float64).reshape(n, self.dim)
        return torch.as_tensor(x, dtype=torch.float32, device=device)

    def log_prob(self, z):
        u = (to_numpy(z.detach(), np.float64) - self.shift) / self.scale
        log_p = np.asarray(self.estimator.score_samples(u), dtype=np.float64)
        log_p = log_p - np.log(self.scale).sum()
        return torch.as_tensor(log_p, dtype=z.dtype, device=z.device)


def _sample_seeded(estimator, n: int, seed: int):
    # scikit-learn samplers seed from their own random_state (GaussianMixture) or a
    # keyword (KernelDensity); either way a fixed seed would repeat the same draws.
    if "random_state" in inspect.signature(estimator.sample).parameters:
        out = estimator.sample(n, random_state=seed)
    elif "random_state" in getattr(estimator, "get_params", dict)():
        out = copy.copy(estimator).set_params(random_state=seed).sample(n)
    else:
        out = estimator.sample(n)
    return out[0] if isinstance(out, tuple) else out


def _split_pipeline(estimator, param: str):
    # The StandardScaler steps in front, folded into one x = shift + scale * u.
    if not isinstance(estimator, Pipeline):
        return estimator, None, None
    shift, scale = 0.0, 1.0
    for name, step in estimator.steps[:-1]:
        if step is None or step == "passthrough":
            continue
        if not isinstance(step, StandardScaler):
            raise TypeError(
                f"{param} is a Pipeline with step {name!r} = {type(step).__name__}: only "
                "StandardScaler steps (whose Jacobian is known) may precede the density "
                "estimator. Transform the data before fitting, or pass the final "
                "estimator itself.")
        m = np.zeros(step.n_features_in_) if step.mean_ is None else step.mean_
        s = np.ones(step.n_features_in_) if step.scale_ is None else step.scale_
        # x = m + s * (inner); composed with the map of the steps before it.
        shift, scale = shift + scale * m, scale * s
    final = estimator.steps[-1][1]
    d = _n_features(final)
    return (final, np.broadcast_to(shift, (d,)).astype(float),
            np.broadcast_to(scale, (d,)).astype(float))


def _n_features(estimator) -> int:
    if isinstance(estimator, KernelDensity):
        return int(np.asarray(estimator.tree_.data).shape[1])
    return int(estimator.n_features_in_)


def _mixture_covariances(gmm) -> np.ndarray:
    """``covariances_`` of any covariance type as (K, d, d)."""
    k, d = gmm.means_.shape
    cov = np.asarray(gmm.covariances_, dtype=np.float64)
    if gmm.covariance_type == "full":
        return cov
    if gmm.covariance_type == "tied":
        return np.broadcast_to(cov, (k, d, d))
    if gmm.covariance_type == "diag":
        return cov[:, :, None] * np.eye(d)
    return cov[:, None, None] * np.eye(d)  # spherical


def sklearn_base(estimator, *, param: str = "base_sampler") -> Base:
    """A fitted scikit-learn density estimator (or scaled Pipeline) as a :class:`Base`.

    See the module docstring for which estimators are exact (a :class:`MixtureBase`)
    and which go through numpy (an :class:`EstimatorBase`).
    """
    final, shift, scale = _split_pipeline(estimator, param)
    if not hasattr(final, "score_samples"):
        raise TypeError(
            f"{param} {type(final).__name__} has no score_samples: a scikit-learn base "
            "needs sample(n) and score_samples(X) (a density model such as "
            "GaussianMixture or KernelDensity).")
    if isinstance(final, (GaussianMixture, BayesianGaussianMixture)):
        # BayesianGaussianMixture: the plug-in mixture its sample() draws from.
        weights, means = final.weights_, np.asarray(final.means_, dtype=np.float64)
        tril = np.linalg.cholesky(_mixture_covariances(final))
        if shift is not None:
            means, tril = shift + scale * means, scale[:, None] * tril
        return MixtureBase(weights, means, scale_tril=tril)
    if isinstance(final, KernelDensity):
        if final.kernel != "gaussian" or final.metric != "euclidean":
            raise ValueError(
                f"{param} KernelDensity(kernel={final.kernel!r}, metric={final.metric!r}) "
                "has no exact differentiable form: use kernel='gaussian' and "
                "metric='euclidean' (a mixture of Gaussians at the training points).")
        data = np.asarray(final.tree_.data, dtype=np.float64)
        sw = final.tree_.sample_weight
        weights = np.ones(len(data)) if sw is None else np.asarray(sw, dtype=np.float64)
        h = float(final.bandwidth_)
        if shift is None:
            return MixtureBase(weights, data, scale=h)
        return MixtureBase(weights, shift + scale * data, scale=h * scale)
    if not hasattr(final, "sample"):
        raise TypeError(
            f"{param} {type(final).__name__} has no sample method: a scikit-learn base "
            "needs sample(n) and score_samples(X).")
    return EstimatorBase(final, _n_features(final), shift=shift, scale=scale)
