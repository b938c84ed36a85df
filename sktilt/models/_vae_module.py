"""The torch modules of the VAE: encoder-decoder, decoder in data units, loss.

:class:`VAEModule` standardises its input and undoes it on the way out (buffers set by
:class:`~sktilt.VAE` from the training data), so that decoded samples are in the data's
units; :class:`VAEDecoder` is its frozen decoder, the decoder of the base model ``p``.
"""

from __future__ import annotations

__all__ = ["LIKELIHOODS", "NOISE_MODELS", "NegativeELBO", "NoiseScale", "VAEDecoder", "VAEModule"]

import copy
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .._utils import mlp

LIKELIHOODS = ("gaussian", "lognormal", "bernoulli")
NOISE_MODELS = ("constant", "level")
_LOG_2PI = math.log(2 * math.pi)


def raw_to_data(raw: torch.Tensor, likelihood: str, shift: torch.Tensor,
                scale: torch.Tensor) -> torch.Tensor:
    """Decoder output to data units: un-standardise (and ``exp`` for log-normal), or the
    sigmoid of Bernoulli logits."""
    if likelihood == "bernoulli":
        return torch.sigmoid(raw)
    out = raw * scale + shift
    return out.exp() if likelihood == "lognormal" else out


class NoiseScale(nn.Module):
    """Observation noise scale (standardised units) as a function of the decoded mean.

    ``"constant"``: one learned scale per feature, ``min_std + softplus(a)``.
    ``"level"``: ``min_std + (MAX_STD - min_std) * sigmoid(a + b * mean)`` per feature,
    so the scale follows the decoded level (``mean``, standardised): e.g. cold,
    heating-dominated hours of a load curve are relatively smoother than mild ones. Two
    numbers per feature, monotone in the level, so it extrapolates sanely into latent
    regions the data never reached (a free function of ``z`` put large noise there and
    made the tail noise-driven). The cap matters: a scale growing with the level makes
    ``log x`` grow like ``z * eps``, and ``exp(beta f)`` of that has no finite integral
    under ``N(0, I)``, so the tilt of such a model would not exist.

    Parameters
    ----------
    n_features : int
    min_std : float
        Floor of the scale: without it the likelihood of a near-constant feature grows
        without bound.
    model : {"constant", "level"}, default="constant"
    """

    #: Cap of the ``"level"`` scale, in standardised units (the feature's own spread is 1).
    MAX_STD = 2.0

    def __init__(self, n_features: int, min_std: float, model: str = "constant"):
        super().__init__()
        if model not in NOISE_MODELS:
            raise ValueError(f"noise_model must be one of {NOISE_MODELS}, got {model!r}.")
        self.min_std = float(min_std)
        if model == "level":  # starts at a scale of 1 whatever the level
            frac = (1.0 - self.min_std) / (self.MAX_STD - self.min_std)
            start = math.log(frac / (1.0 - frac))
        else:
            start = math.log(math.expm1(max(1.0 - self.min_std, 1e-3)))
        self.raw_std = nn.Parameter(torch.full((n_features,), start))
        self.slope = nn.Parameter(torch.zeros(n_features)) if model == "level" else None

    def forward(self, mean: torch.Tensor | None = None) -> torch.Tensor:
        if self.slope is None:
            return self.min_std + F.softplus(self.raw_std)
        level = self.raw_std if mean is None else self.raw_std + self.slope * mean
        return self.min_std + (self.MAX_STD - self.min_std) * torch.sigmoid(level)


class VAEDecoder(nn.Module):
    """Decoder of the base model: latents to data units, optionally with observation noise.

    Without noise it maps ``z`` of shape ``(n, latent_dim)`` to the decoded means
    ``E[x | z]`` (the medians for a log-normal likelihood). With ``noise_std`` it is the
    whole generative model ``x ~ p(x | z)`` written as a deterministic map of a longer
    latent ``(z, eps)`` of shape ``(n, latent_dim + n_features)``, both ``N(0, I)``:
    ``x = T(m + noise_std(m) * eps)`` with ``m = decoder(z)``. Tilting it tilts ``p(x)``
    itself (BTGM Eq. 10, ``f~(z) = E_{x ~ p(x|z)} f(x)`` by reparameterisation), so
    criteria that depend on hour-scale noise (a weekly peak) see it.

    Parameters
    ----------
    decoder : torch.nn.Module
        Maps ``z`` to the raw output: the mean in standardised units (Gaussian, of
        ``log x`` for log-normal) or the logits (Bernoulli).
    shift, scale : torch.Tensor of shape (n_features,)
        Standardisation undone on the way out.
    likelihood : {"gaussian", "lognormal", "bernoulli"}
    noise_std : NoiseScale or None
        Observation noise scale in standardised units, a function of the decoded mean
        (Gaussian and log-normal only).
    """

    def __init__(self, decoder: nn.Module, shift: torch.Tensor, scale: torch.Tensor,
                 likelihood: str = "gaussian", noise_std: NoiseScale | None = None):
        super().__init__()
        self.decoder = decoder
        self.likelihood = likelihood
        self.register_buffer("shift", shift.detach().clone())
        self.register_buffer("scale", scale.detach().clone())
        self.noise_std = noise_std

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.noise_std is None:
            return raw_to_data(self.decoder(z), self.likelihood, self.shift, self.scale)
        k = z.shape[-1] - self.shift.shape[0]
        mean = self.decoder(z[..., :k])
        raw = mean + self.noise_std(mean) * z[..., k:]
        return raw_to_data(raw, self.likelihood, self.shift, self.scale)


class VAEModule(nn.Module):
    """Encoder/decoder pair of :class:`VAE` (a plain torch module).

    Parameters
    ----------
    n_features : int
        Input dimension (inferred from ``X`` by :class:`VAE`).
    latent_dim : int, default=8
    hidden_units : tuple of int, default=(256, 128)
        Encoder widths; the decoder uses them in reverse order.
    likelihood : {"gaussian", "bernoulli"}, default="gaussian"
        Gaussian: per-feature learned noise scale in standardised units, at least
        ``min_std``. Bernoulli: ``x`` in ``[0, 1]``, the decoder outputs logits.
    min_std : float, default=0.05
        Floor of the Gaussian noise scale (standardised units): without it the
        likelihood of a near-constant feature grows without bound.
    noise_model : {"constant", "level"}, default="constant"
        How the noise scale varies (:class:`NoiseScale`): one per feature, or per
        feature and with the decoded level.

    Attributes
    ----------
    shift, scale : torch.Tensor
        Standardisation buffers (set by :class:`VAE` from the training data).
    trained : torch.Tensor
        Boolean buffer, ``True`` once trained on data (saved with the weights).
    """

    def __init__(self, n_features: int, latent_dim: int = 8,
                 hidden_units: Sequence[int] = (256, 128), likelihood: str = "gaussian",
                 min_std: float = 0.05, noise_model: str = "constant"):
        super().__init__()
        self.n_features, self.latent_dim = int(n_features), int(latent_dim)
        self.likelihood, self.min_std = likelihood, float(min_std)
        self.encoder = mlp(self.n_features, hidden_units, 2 * self.latent_dim)
        self.decoder = mlp(self.latent_dim, tuple(hidden_units)[::-1], self.n_features)
        self.register_buffer("shift", torch.zeros(self.n_features))
        self.register_buffer("scale", torch.ones(self.n_features))
        self.register_buffer("trained", torch.tensor(False))
        if likelihood in ("gaussian", "lognormal"):
            self.noise = NoiseScale(self.n_features, self.min_std, noise_model)

    def set_standardization(self, shift, scale) -> None:
        """Set the standardisation buffers (per-feature mean and scale of the data)."""
        self.shift.copy_(torch.as_tensor(shift, dtype=torch.float32))
        self.scale.copy_(torch.as_tensor(scale, dtype=torch.float32))

    def encode(self, x: torch.Tensor):
        """Posterior mean and log-variance of ``q(z | x)``."""
        mu, log_var = self.encoder(self.to_standardized(x)).chunk(2, dim=-1)
        return mu, log_var.clamp(-15.0, 10.0)  # keeps exp() finite early in training

    def raw_to_data(self, raw: torch.Tensor) -> torch.Tensor:
        """Decoder output to data units (see :func:`raw_to_data`)."""
        return raw_to_data(raw, self.likelihood, self.shift, self.scale)

    def to_standardized(self, x: torch.Tensor) -> torch.Tensor:
        """Data to the standardised units the encoder reads (``log x`` for log-normal)."""
        if self.likelihood == "lognormal":
            x = x.clamp_min(torch.finfo(x.dtype).tiny).log()
        return (x - self.shift) / self.scale

    def noise_std(self, mean: torch.Tensor | None = None) -> torch.Tensor:
        """Observation noise in standardised units at the decoded ``mean`` (raw
        decoder output), shape of ``mean`` or (n_features,) at level 0."""
        return self.noise(mean)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decoded mean ``E[x | z]`` in data units."""
        return self.raw_to_data(self.decoder(z))

    def forward(self, x: torch.Tensor):
        """``(x_mean, raw, mu, log_var)``; ``z`` is sampled in train mode, ``mu`` in eval."""
        mu, log_var = self.encode(x)
        z = mu + torch.randn_like(mu) * (0.5 * log_var).exp() if self.training else mu
        raw = self.decoder(z)
        return self.raw_to_data(raw), raw, mu, log_var

    def log_likelihood(self, x: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
        """``log p(x | z)`` per sample, a density in data units (Gaussian)."""
        if self.likelihood == "bernoulli":
            return -F.binary_cross_entropy_with_logits(raw, x, reduction="none").sum(-1)
        std = self.noise_std(raw)
        t = self.to_standardized(x)
        # - log(scale) (and - log x for log-normal): change of variables to data units
        log_p = (-0.5 * ((t - raw) / std) ** 2 - std.log() - 0.5 * _LOG_2PI
                 - self.scale.log())
        if self.likelihood == "lognormal":
            log_p = log_p - x.clamp_min(torch.finfo(x.dtype).tiny).log()
        return log_p.sum(-1)

    @staticmethod
    def kl_divergence(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
        """``KL(N(mu, exp(log_var)) || N(0, I))`` per sample."""
        return 0.5 * (mu**2 + log_var.exp() - 1.0 - log_var).sum(-1)

    def elbo(self, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """ELBO per sample, reconstruction term averaged over the standard normal
        draws ``eps`` of shape (n_draws, latent_dim), shared by all samples."""
        mu, log_var = self.encode(x)
        std = (0.5 * log_var).exp()
        rec = sum(self.log_likelihood(x, self.decoder(mu + e * std)) for e in eps)
        return rec / len(eps) - self.kl_divergence(mu, log_var)

    def decoder_module(self, observation_noise: bool = False) -> VAEDecoder:
        """A detached copy of the decoder mapping ``z`` (or ``(z, eps)``) to data units."""
        noise = None
        if observation_noise:
            if self.likelihood == "bernoulli":
                raise ValueError("observation_noise=True needs a continuous likelihood "
                                 "('gaussian' or 'lognormal'), not 'bernoulli'.")
            noise = copy.deepcopy(self.noise)
        return VAEDecoder(copy.deepcopy(self.decoder), self.shift, self.scale,
                          self.likelihood, noise)


class NegativeELBO(nn.Module):
    """Batch loss ``mean(nll + beta_kl * kl)`` (the default ``criterion`` of :class:`VAE`)."""

    def forward(self, nll: torch.Tensor, kl: torch.Tensor, beta_kl: float) -> torch.Tensor:
        return (nll + beta_kl * kl).mean()
