"""Base models: the generative model ``p`` that a :class:`~sktilt.BoltzmannTuner` tilts.

Three kinds of base are accepted:

* :class:`LatentSampler` -- a frozen torch decoder over a ``N(0, I)`` latent; tuning
  happens in the latent space (BTGM Sec. 3.3);
* any ``torch.distributions.Distribution`` with ``sample`` and ``log_prob`` over vectors
  (``MultivariateNormal``, a zuko flow's distribution); tuning happens in instance space;
* an unfitted or fitted estimator with ``fit(X)`` and ``get_base_sampler()`` returning
  one of the above (:class:`GaussianBase`, :class:`~sktilt.VAE`); the tuner fits it on
  ``X`` first when needed;
* a scikit-learn density estimator with ``sample`` and ``score_samples``
  (``GaussianMixture``, ``KernelDensity``, a ``Pipeline`` with a ``StandardScaler``
  in front, ...), see :mod:`sktilt.tilt._sklearn_bases`.

:func:`as_base` turns the first two into a :class:`Base`, the small interface the
training loop uses: where ``p`` lives (the flow's space), how to sample it, its density,
and the map to instance space.
"""

from __future__ import annotations

__all__ = ["Base", "DistributionBase", "GaussianBase", "LatentBase", "LatentSampler",
           "WhitenedBase", "as_base"]

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from numbers import Integral, Real

import numpy as np
import torch
import zuko
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data
from zuko.lazy import LazyDistribution

from .._random import draw_seed
from .._utils import check_n_samples, frozen_copy, to_numpy


class LatentSampler(BaseEstimator):
    """A frozen decoder over a standard normal latent: ``x = decoder(z)``, ``z ~ N(0, I)``.

    Parameters
    ----------
    decoder : callable
        Maps a float tensor of shape ``(n, latent_dim)`` to a tensor of shape
        ``(n, ...)`` in instance space. A ``torch.nn.Module`` is used in eval mode and
        never modified (the tuner works on a frozen copy).
    latent_dim : int
        Dimension of the latent space.

    Examples
    --------
    >>> import torch
    >>> from sktilt import LatentSampler
    >>> base = LatentSampler(torch.nn.Linear(3, 5), latent_dim=3)
    >>> base.sample(4, random_state=0).shape
    (4, 5)
    """

    def __init__(self, decoder: Callable[[torch.Tensor], torch.Tensor], latent_dim: int) -> None:
        self.decoder = decoder
        self.latent_dim = latent_dim

    def sample(self, n_samples: int = 1, *, random_state=None) -> np.ndarray:
        """Decode ``n_samples`` draws of the latent prior (numpy, instance space).

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int, RandomState, Generator or None, default=None
            Seed of the latent draws (``None``: fresh entropy).

        Returns
        -------
        X : ndarray of shape (n_samples, ...)
        """
        n = check_n_samples(n_samples)
        base = as_base(self)
        gen = torch.Generator().manual_seed(draw_seed(random_state))
        with torch.no_grad():
            z = torch.randn(n, base.dim, generator=gen)
            return to_numpy(base.to_instance(z))


class _Fixed(LazyDistribution):
    # A torch Distribution given by the user, as the lazy base of a zuko flow.
    def __init__(self, distribution: torch.distributions.Distribution):
        super().__init__()
        self.distribution = distribution

    def forward(self, c=None):
        return self.distribution


class Base(ABC):
    """What the training loop needs from ``p`` (see the module docstring).

    Attributes
    ----------
    dim : int
        Dimension of the space the flow acts on.
    latent : bool
        Whether that space is a latent space (decoded by :meth:`to_instance`).
    differentiable : bool
        Whether :meth:`log_prob` has a gradient in its argument (else the tuner uses
        score-function gradients throughout).
    components : int or None
        Number of components when ``p`` is a finite mixture (a tilted mixture has as
        many modes at most), else ``None``.
    """

    dim: int
    latent: bool
    differentiable: bool = True
    # A known finite mixture: its number of components (see the class docstring).
    components: int | None = None

    @abstractmethod
    def lazy(self) -> LazyDistribution:
        """``p`` as a zuko lazy distribution: the base of the tuned flow."""

    def sample(self, n: int, device="cpu") -> torch.Tensor:
        """``n`` draws of ``p`` in the flow's space (torch's global RNG)."""
        with torch.no_grad():
            return self.lazy()().sample((n,)).to(device=device, dtype=torch.float32)

    @abstractmethod
    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """``log p`` at ``z`` (flow space), shape ``(n,)``."""

    def to_instance(self, z: torch.Tensor) -> torch.Tensor:
        """Map flow-space points to instance space."""
        return z

    def to(self, device) -> Base:
        """Move what ``p`` holds to ``device``; returns ``self``."""
        return self


class LatentBase(Base):
    """``N(0, I)`` over ``dim`` latents, decoded by a frozen ``decoder``."""

    latent = True

    def __init__(self, dim: int, decoder):
        self.dim, self.decoder = int(dim), decoder
        self._lazy = zuko.lazy.UnconditionalDistribution(
            zuko.distributions.DiagNormal, torch.zeros(self.dim), torch.ones(self.dim),
            buffer=True)

    def lazy(self):
        return self._lazy

    def sample(self, n, device="cpu"):
        return torch.randn(n, self.dim, device=device)

    def log_prob(self, z):
        return -0.5 * (z**2).sum(-1) - 0.5 * self.dim * math.log(2 * math.pi)

    def to_instance(self, z):
        return self.decoder(z)

    def to(self, device):
        if isinstance(self.decoder, torch.nn.Module):
            self.decoder.to(device)
        self._lazy.to(device)
        return self


class DistributionBase(Base):
    """A user's torch distribution over vectors, tuned in instance space."""

    latent = False

    def __init__(self, distribution: torch.distributions.Distribution):
        self.distribution = distribution
        self.dim = int(distribution.event_shape[0])
        self._lazy = _Fixed(distribution)

    def lazy(self):
        return self._lazy

    def log_prob(self, z):
        return self.distribution.log_prob(z)


def as_base(base_sampler, *, param: str = "base_sampler") -> Base:
    """Validate ``base_sampler`` and wrap it as a :class:`Base` (decoder frozen copy).

    An estimator providing ``get_base_sampler()`` must be fitted here.
    """
    if isinstance(base_sampler, LatentSampler):
        return _latent_base(base_sampler, param)
    if isinstance(base_sampler, torch.distributions.Distribution):
        shape = base_sampler.event_shape
        if len(shape) != 1 or len(base_sampler.batch_shape) != 0:
            raise ValueError(
                f"{param} must be a distribution over vectors (event_shape (d,), no batch "
                f"shape); got event_shape={tuple(shape)}, "
                f"batch_shape={tuple(base_sampler.batch_shape)}."
            )
        return DistributionBase(base_sampler)
    if hasattr(base_sampler, "get_base_sampler"):
        return as_base(base_sampler.get_base_sampler(), param=param)
    if any(hasattr(base_sampler, a) for a in ("score_samples", "sample", "steps")):
        from ._sklearn_bases import sklearn_base  # it builds on this module

        try:
            check_is_fitted(base_sampler)
        except NotFittedError:
            raise NotFittedError(
                f"{param} {type(base_sampler).__name__} is not fitted: fit it first, or "
                "pass it to BoltzmannTuner and call fit(X) with its training data."
            ) from None
        return sklearn_base(base_sampler, param=param)
    raise TypeError(
        f"{param} must be a LatentSampler, a torch.distributions.Distribution with "
        f"log_prob, an estimator with get_base_sampler(), or a density estimator with "
        f"sample and score_samples (e.g. GaussianMixture); got "
        f"{type(base_sampler).__name__}."
    )


def _latent_base(sampler: LatentSampler, param: str) -> LatentBase:
    dim = sampler.latent_dim
    if isinstance(dim, bool) or not isinstance(dim, (Integral, np.integer)) or dim < 1:
        raise ValueError(f"{param}.latent_dim must be a positive int, got {dim!r}.")
    if not callable(sampler.decoder):
        raise TypeError(f"{param}.decoder must be callable (a torch module), got "
                        f"{type(sampler.decoder).__name__}.")
    decoder = frozen_copy(sampler.decoder)
    try:
        with torch.no_grad():
            out = decoder(torch.zeros(2, int(dim)))
    except Exception as exc:  # the user's decoder may raise anything on a wrong shape
        raise ValueError(
            f"{param}.decoder failed on a latent batch of shape (2, {dim}): {exc}. "
            f"Check that latent_dim={dim} matches the decoder's input size."
        ) from exc
    if not isinstance(out, torch.Tensor) or out.ndim < 2 or out.shape[0] != 2:
        raise ValueError(
            f"{param}.decoder must return a tensor of shape (n, ...) for an input of "
            f"shape (n, latent_dim); got {getattr(out, 'shape', type(out))}."
        )
    return LatentBase(int(dim), decoder)


class GaussianBase(BaseEstimator):
    """Multivariate normal fitted to data, usable as a tuner's ``base_sampler``.

    A minimal trainable generative model: ``fit(X)`` estimates the mean and a
    (ridge-regularised) covariance; :meth:`get_base_sampler` returns the matching
    ``torch.distributions.MultivariateNormal``.

    Parameters
    ----------
    reg_covar : float, default=1e-6
        Added to the covariance diagonal for numerical stability.
    """

    _parameter_constraints = {"reg_covar": [Interval(Real, 0, None, closed="left")]}

    def __init__(self, *, reg_covar: float = 1e-6) -> None:
        self.reg_covar = reg_covar

    def fit(self, X, y=None) -> GaussianBase:
        """Estimate the mean and covariance of ``X`` (n_samples, n_features).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored.

        Returns
        -------
        self : GaussianBase
        """
        self._validate_params()
        X = validate_data(self, X, ensure_min_samples=2, dtype=np.float64)
        self.mean_ = X.mean(0)
        cov = np.atleast_2d(np.cov(X, rowvar=False))
        self.covariance_ = cov + self.reg_covar * np.eye(X.shape[1])
        return self

    def get_base_sampler(self) -> torch.distributions.MultivariateNormal:
        """The fitted model as a ``torch.distributions.MultivariateNormal`` (float32)."""
        check_is_fitted(self)
        return torch.distributions.MultivariateNormal(
            torch.as_tensor(self.mean_, dtype=torch.float32),
            covariance_matrix=torch.as_tensor(self.covariance_, dtype=torch.float32),
        )


class WhitenedBase(Base):
    """An instance-space base seen through ``x = mean + L z`` (``L L^T`` its covariance).

    The flow then acts on ``z``, where ``p`` has zero mean and identity covariance: its
    steps (Adam's, of about ``lr`` per parameter) are in units of the base's own spread
    along every direction, however correlated or thin the base is. KL, ``log q/p`` and
    the criterion are unchanged by the map.
    """

    latent = False

    def __init__(self, base: Base, mean: torch.Tensor, scale_tril: torch.Tensor):
        self.inner, self.dim = base, base.dim
        self.differentiable, self.components = base.differentiable, base.components
        self.mean = mean.float()
        self.scale_tril = scale_tril.float()
        self._log_det = float(scale_tril.diagonal().log().sum())

    @classmethod
    def from_samples(cls, base: Base, n: int = 65536) -> WhitenedBase:
        """Whiten by the mean and covariance of ``n`` draws of ``base`` (global RNG)."""
        x = base.sample(n).double()
        mean = x.mean(0)
        cov = torch.cov(x.T).reshape(base.dim, base.dim)
        cov = cov + 1e-9 * cov.diagonal().mean() * torch.eye(base.dim, dtype=cov.dtype)
        return cls(base, mean, torch.linalg.cholesky(cov))

    def lazy(self):
        return self.inner.lazy()

    def sample(self, n, device="cpu"):
        x = self.inner.sample(n, device=device)
        return torch.linalg.solve_triangular(self.scale_tril.to(x.device),
                                             (x - self.mean.to(x.device)).T, upper=False).T

    def log_prob(self, z):
        return self.inner.log_prob(self.to_instance(z)) + self._log_det

    def to_instance(self, z):
        return self.mean.to(z.device) + z @ self.scale_tril.to(z.device).T

    def to(self, device):
        self.inner.to(device)
        return self
