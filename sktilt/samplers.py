"""Base samplers: the generative model ``p`` that a :class:`~sktilt.BoltzmannTuner` tilts.

Three kinds of base are accepted:

* :class:`LatentSampler` -- a frozen torch decoder over a ``N(0, I)`` latent; tuning
  happens in the latent space (BTGM Sec. 3.3);
* any ``torch.distributions.Distribution`` with ``sample``/``rsample`` and
  ``log_prob`` over vectors (``MultivariateNormal``, a zuko flow's distribution);
  tuning happens in instance space;
* an *unfitted or fitted* estimator with ``fit(X)`` and ``get_base_sampler()``
  returning one of the above (e.g. :class:`GaussianBase`); the tuner fits it on ``X``
  first when needed.

:func:`as_base` turns any of them into a :class:`Base`, the small internal interface
the training loop uses.
"""

from __future__ import annotations

__all__ = ["Base", "GaussianBase", "LatentSampler", "as_base"]

import copy
import math

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted, validate_data


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

    def __init__(self, decoder, latent_dim: int):
        self.decoder = decoder
        self.latent_dim = latent_dim

    def sample(self, n_samples: int = 1, *, random_state=None) -> np.ndarray:
        """Decode ``n_samples`` draws of the latent prior (numpy, instance space).

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int, Generator or None, default=None
            Seed of the latent draws (``None``: fresh entropy).

        Returns
        -------
        X : ndarray of shape (n_samples, ...)
        """
        base = as_base(self)
        gen = torch.Generator().manual_seed(int(np.random.default_rng(random_state)
                                                .integers(2**31)))
        with torch.no_grad():
            z = torch.randn(n_samples, base.dim, generator=gen)
            return base.to_instance(z).cpu().numpy()


class Base:
    """What the training loop needs from ``p``: sample, log-density, decode."""

    def __init__(self, dim: int, latent: bool, decoder=None, distribution=None):
        self.dim = dim
        self.latent = latent
        self.decoder = decoder
        self.distribution = distribution

    def sample(self, n: int, device="cpu") -> torch.Tensor:
        """``n`` draws of ``p`` (latent space for latent bases), torch global RNG."""
        if self.latent:
            return torch.randn(n, self.dim, device=device)
        with torch.no_grad():
            return self.distribution.sample((n,)).to(device=device, dtype=torch.float32)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """``log p`` at ``z`` (latent space for latent bases), shape ``(n,)``."""
        if self.latent:
            return -0.5 * (z**2).sum(-1) - 0.5 * self.dim * math.log(2 * math.pi)
        return self.distribution.log_prob(z)

    def to_instance(self, z: torch.Tensor) -> torch.Tensor:
        """Map flow-space samples to instance space (decode; identity otherwise)."""
        return self.decoder(z) if self.latent else z

    def to(self, device) -> "Base":
        """Move the decoder to ``device``; returns ``self``."""
        if self.latent and isinstance(self.decoder, torch.nn.Module):
            self.decoder.to(device)
        return self


def _frozen_copy(decoder):
    if not isinstance(decoder, torch.nn.Module):
        return decoder
    frozen = copy.deepcopy(decoder)
    frozen.eval()
    for p in frozen.parameters():
        p.requires_grad_(False)
    return frozen


def as_base(base_sampler, *, param: str = "base_sampler") -> Base:
    """Validate ``base_sampler`` and wrap it as a :class:`Base` (decoder frozen copy)."""
    if isinstance(base_sampler, LatentSampler):
        dim = base_sampler.latent_dim
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise ValueError(f"{param}.latent_dim must be a positive int, got {dim!r}.")
        if not callable(base_sampler.decoder):
            raise TypeError(f"{param}.decoder must be callable (a torch module), got "
                            f"{type(base_sampler.decoder).__name__}.")
        decoder = _frozen_copy(base_sampler.decoder)
        try:
            with torch.no_grad():
                out = decoder(torch.zeros(2, int(dim)))
        except Exception as exc:
            raise ValueError(
                f"{param}.decoder failed on a latent batch of shape (2, {dim}): {exc}. "
                f"Check that latent_dim={dim} matches the decoder's input size."
            ) from exc
        if not isinstance(out, torch.Tensor) or out.ndim < 2 or out.shape[0] != 2:
            raise ValueError(
                f"{param}.decoder must return a tensor of shape (n, ...) for an input of "
                f"shape (n, latent_dim); got {getattr(out, 'shape', type(out))}."
            )
        return Base(int(dim), latent=True, decoder=decoder)
    if isinstance(base_sampler, torch.distributions.Distribution):
        shape = base_sampler.event_shape
        if len(shape) != 1 or len(base_sampler.batch_shape) != 0:
            raise ValueError(
                f"{param} must be a distribution over vectors (event_shape (d,), no batch "
                f"shape); got event_shape={tuple(shape)}, "
                f"batch_shape={tuple(base_sampler.batch_shape)}."
            )
        return Base(int(shape[0]), latent=False, distribution=base_sampler)
    if hasattr(base_sampler, "get_base_sampler"):
        return as_base(base_sampler.get_base_sampler(), param=param)
    raise TypeError(
        f"{param} must be a LatentSampler, a torch.distributions.Distribution with "
        f"log_prob, or an estimator with get_base_sampler(); got "
        f"{type(base_sampler).__name__}."
    )


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

    _parameter_constraints = {"reg_covar": [float]}

    def __init__(self, *, reg_covar: float = 1e-6):
        self.reg_covar = reg_covar

    def fit(self, X, y=None):
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
