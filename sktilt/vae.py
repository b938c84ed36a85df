"""A variational auto-encoder for curves and images: a trainable base model ``p``.

:class:`VAE` is a :class:`skorch.NeuralNet` (history, callbacks, progress bar, device
and checkpointing come from skorch) trained by maximising the evidence lower bound

.. math:: \\mathrm{ELBO}(x) = E_{q(z|x)} \\log p(x | z) - \\mathrm{KL}(q(z|x) \\| N(0, I)).

Once fitted, :meth:`~sktilt.VAE.get_base_sampler` returns a :class:`~sktilt.LatentSampler`
whose frozen decoder maps ``z ~ N(0, I)`` to the decoded mean in the data's units, so
``BoltzmannTuner(VAE(...), criterion).fit(X)`` trains the VAE and then tunes it.
"""

from __future__ import annotations

__all__ = ["VAE", "VAEDecoder", "VAEModule", "NegativeELBO"]

import copy
import math
from collections.abc import Sequence
from numbers import Integral, Real

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import TransformerMixin
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data
from skorch import NeuralNet
from skorch.callbacks import PassthroughScoring
from skorch.utils import to_tensor
from torch import nn

from ._random import draw_seed, torch_generator, torch_seeded
from .samplers import LatentSampler

LIKELIHOODS = ("gaussian", "bernoulli")
_LOG_2PI = math.log(2 * math.pi)


def mlp(n_in: int, hidden_units: Sequence[int], n_out: int, *,
        dropout: float = 0.0) -> nn.Sequential:
    """A SiLU multi-layer perceptron ``n_in -> hidden_units -> n_out``."""
    layers: list[nn.Module] = []
    width = int(n_in)
    for h in hidden_units:
        layers += [nn.Linear(width, int(h)), nn.SiLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = int(h)
    layers.append(nn.Linear(width, int(n_out)))
    return nn.Sequential(*layers)


def standardization_stats(X: np.ndarray, *, floor: float = 0.1):
    """Per-feature mean and scale of ``X``.

    The scale is the standard deviation floored at ``floor`` times its mean over the
    features: constant features (digit corners) would otherwise divide by zero, and
    rarely active ones would be blown up to huge standardised values.
    """
    mean, std = X.mean(0), X.std(0)
    ref = float(std.mean())
    scale = np.maximum(std, floor * ref) if ref > 0 else np.ones_like(std)
    return mean.astype(np.float32), scale.astype(np.float32)


def check_hidden_units(hidden_units, param: str = "hidden_units") -> tuple[int, ...]:
    try:
        units = tuple(hidden_units)
    except TypeError:
        units = (hidden_units,)
    if not all(isinstance(h, Integral) and not isinstance(h, bool) and h >= 1
               for h in units):
        raise ValueError(f"{param} must be a sequence of positive ints, got {hidden_units!r}.")
    return tuple(int(h) for h in units)


def net_is_trained(net) -> bool:
    """Whether a skorch net was trained on data (skorch itself only says "initialised")."""
    module = getattr(net, "module_", None)
    if not net.initialized_ or module is None:
        return False
    trained = getattr(module, "trained", None)  # a custom module may lack the flag
    return bool(trained) if trained is not None else len(net.history) > 0


class VAEDecoder(nn.Module):
    """Decoder mapping latents ``(n, latent_dim)`` to decoded means in data units.

    Parameters
    ----------
    decoder : torch.nn.Module
        Maps ``z`` to the raw output: the mean in standardised units (Gaussian) or the
        logits (Bernoulli).
    shift, scale : torch.Tensor of shape (n_features,)
        Standardisation undone on the way out (Gaussian likelihood).
    likelihood : {"gaussian", "bernoulli"}
    """

    def __init__(self, decoder: nn.Module, shift: torch.Tensor, scale: torch.Tensor,
                 likelihood: str = "gaussian"):
        super().__init__()
        self.decoder = decoder
        self.likelihood = likelihood
        self.register_buffer("shift", shift.detach().clone())
        self.register_buffer("scale", scale.detach().clone())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        raw = self.decoder(z)
        if self.likelihood == "bernoulli":
            return torch.sigmoid(raw)
        return raw * self.scale + self.shift


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

    Attributes
    ----------
    shift, scale : torch.Tensor
        Standardisation buffers (set by :class:`VAE` from the training data).
    trained : torch.Tensor
        Boolean buffer, ``True`` once trained on data (saved with the weights).
    """

    def __init__(self, n_features: int, latent_dim: int = 8,
                 hidden_units: Sequence[int] = (256, 128), likelihood: str = "gaussian",
                 min_std: float = 0.05):
        super().__init__()
        self.n_features, self.latent_dim = int(n_features), int(latent_dim)
        self.likelihood, self.min_std = likelihood, float(min_std)
        self.encoder = mlp(self.n_features, hidden_units, 2 * self.latent_dim)
        self.decoder = mlp(self.latent_dim, tuple(hidden_units)[::-1], self.n_features)
        self.register_buffer("shift", torch.zeros(self.n_features))
        self.register_buffer("scale", torch.ones(self.n_features))
        self.register_buffer("trained", torch.tensor(False))
        if likelihood == "gaussian":
            # std = min_std + softplus(raw_std), starting at 1 (standardised units)
            start = math.log(math.expm1(max(1.0 - self.min_std, 1e-3)))
            self.raw_std = nn.Parameter(torch.full((self.n_features,), start))

    def set_standardization(self, shift, scale) -> None:
        """Set the standardisation buffers (per-feature mean and scale of the data)."""
        self.shift.copy_(torch.as_tensor(shift, dtype=torch.float32))
        self.scale.copy_(torch.as_tensor(scale, dtype=torch.float32))

    def encode(self, x: torch.Tensor):
        """Posterior mean and log-variance of ``q(z | x)``."""
        mu, log_var = self.encoder((x - self.shift) / self.scale).chunk(2, dim=-1)
        return mu, log_var.clamp(-15.0, 10.0)  # keeps exp() finite early in training

    def raw_to_data(self, raw: torch.Tensor) -> torch.Tensor:
        """Decoder output to data units: un-standardise, or sigmoid of the logits."""
        if self.likelihood == "bernoulli":
            return torch.sigmoid(raw)
        return raw * self.scale + self.shift

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
        std = self.min_std + F.softplus(self.raw_std)
        t = (x - self.shift) / self.scale
        # - log(scale): change of variables from standardised to data units
        log_p = (-0.5 * ((t - raw) / std) ** 2 - std.log() - 0.5 * _LOG_2PI
                 - self.scale.log())
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

    def decoder_module(self) -> VAEDecoder:
        """A detached copy of the decoder mapping ``z`` to data units."""
        return VAEDecoder(copy.deepcopy(self.decoder), self.shift, self.scale,
                          self.likelihood)


class NegativeELBO(nn.Module):
    """Batch loss ``mean(nll + beta_kl * kl)`` (the default ``criterion`` of :class:`VAE`)."""

    def forward(self, nll: torch.Tensor, kl: torch.Tensor, beta_kl: float) -> torch.Tensor:
        return (nll + beta_kl * kl).mean()


class VAE(TransformerMixin, NeuralNet):
    """Variational auto-encoder on tabular ``X`` (curves, flattened images).

    Parameters
    ----------
    module : torch module class or instance, default=VAEModule
        Called with ``n_features`` (inferred from ``X``), ``latent_dim``,
        ``hidden_units``, ``likelihood`` and any ``module__*`` parameters; an instance
        without ``module__*`` parameters is used as is (pretrained weights). A custom
        module subclasses :class:`~sktilt.vae.VAEModule` (or provides its methods).
    latent_dim : int, default=8
        Dimension of the latent space (where :class:`~sktilt.BoltzmannTuner` tunes).
    hidden_units : tuple of int, default=(256, 128)
        Encoder widths; the decoder mirrors them.
    likelihood : {"gaussian", "bernoulli"}, default="gaussian"
        Observation model. ``"gaussian"`` learns a per-feature noise scale (floored by
        ``module__min_std``, default 0.05 in standardised units). ``"bernoulli"`` needs
        ``X`` in ``[0, 1]`` (grey levels are accepted; the ELBO is then a
        cross-entropy rather than a log-density).
    beta_kl : float, default=1.0
        Weight of the KL term during training (beta-VAE); :meth:`score_samples`
        always reports the plain ELBO.
    standardize : bool, default=True
        Standardise features inside the module (undone by the decoder), so that the
        decoded samples are in the units of ``X``.
    random_state : int, RandomState instance or None, default=None
        Seeds the weights, the batch order and the latent noise of :meth:`fit` (in a
        forked torch RNG: the caller's RNG is untouched), and the default draws of
        :meth:`sample` and :meth:`score_samples`. :meth:`partial_fit` on its own
        draws from torch's global RNG.
    criterion : default=NegativeELBO
        Called as ``criterion(nll, kl, beta_kl)`` with per-sample tensors.
    optimizer : default=torch.optim.Adam
    lr : float, default=1e-3
    max_epochs : int, default=100
    batch_size : int, default=128
    train_split : default=None
        All of ``X`` trains; pass e.g. ``skorch.dataset.ValidSplit(5)`` to record
        ``valid_loss`` (computed at the posterior mean, without latent noise).
    verbose : int, default=0
    device : str, default="cpu"
    **kwargs
        Other :class:`skorch.NeuralNet` parameters (``callbacks``, ``warm_start``,
        ``module__min_std``, ``iterator_train__shuffle`` (default ``True``), ...).

    Attributes
    ----------
    module_ : VAEModule
        The trained module.
    history : skorch.History
        Per epoch: ``train_loss`` (the negative beta-ELBO), ``train_nll`` and
        ``train_kl`` (its two terms, in nats per sample).
    n_features_in_ : int
        Number of features of ``X``.

    Examples
    --------
    >>> import numpy as np
    >>> from sktilt.vae import VAE
    >>> X = np.random.default_rng(0).normal(size=(200, 6)).astype("float32")
    >>> vae = VAE(latent_dim=2, hidden_units=(32,), max_epochs=5, random_state=0).fit(X)
    >>> vae.sample(3).shape, vae.transform(X).shape
    ((3, 6), (200, 2))
    >>> vae.get_base_sampler().latent_dim
    2
    """

    _base_kind = "latent"  # read by BoltzmannTuner before the VAE is fitted

    def __init__(self, module=VAEModule, *, latent_dim: int = 8,
                 hidden_units: Sequence[int] = (256, 128), likelihood: str = "gaussian",
                 beta_kl: float = 1.0, standardize: bool = True, random_state=None,
                 criterion=NegativeELBO, optimizer=torch.optim.Adam, lr: float = 1e-3,
                 max_epochs: int = 100, batch_size: int = 128, train_split=None,
                 verbose: int = 0, device: str = "cpu", **kwargs):
        kwargs.setdefault("iterator_train__shuffle", True)
        super().__init__(module, criterion=criterion, optimizer=optimizer, lr=lr,
                         max_epochs=max_epochs, batch_size=batch_size,
                         train_split=train_split, verbose=verbose, device=device, **kwargs)
        self.latent_dim = latent_dim
        self.hidden_units = hidden_units
        self.likelihood = likelihood
        self.beta_kl = beta_kl
        self.standardize = standardize
        self.random_state = random_state

    # -------------------------------------------------------------- plumbing
    @property
    def _default_callbacks(self):
        callbacks = list(super()._default_callbacks)
        # lower_is_better=None: a smaller KL alone is not "better", so no *_best keys
        extra = [(f"{prefix}_{key}", PassthroughScoring(f"{prefix}_{key}", None,
                                                        on_train=prefix == "train"))
                 for prefix in ("train", "valid") for key in ("nll", "kl")]
        # print_log must stay last to print the terms of the epoch
        return callbacks[:-1] + extra + callbacks[-1:]

    def _check_params(self) -> None:
        dim = self.latent_dim
        if isinstance(dim, bool) or not isinstance(dim, Integral) or dim < 1:
            raise ValueError(f"latent_dim must be a positive int, got {dim!r}.")
        check_hidden_units(self.hidden_units)
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got "
                             f"{self.likelihood!r}.")
        if (isinstance(self.beta_kl, bool) or not isinstance(self.beta_kl, Real)
                or not self.beta_kl >= 0):
            raise ValueError(f"beta_kl must be a non-negative float, got {self.beta_kl!r}.")

    def _validate_X(self, X, *, reset: bool) -> np.ndarray:
        X = validate_data(self, X, reset=reset, dtype=np.float32,
                          ensure_min_samples=2 if reset else 1)
        if self.likelihood == "bernoulli" and (X.min() < 0 or X.max() > 1):
            raise ValueError(
                "likelihood='bernoulli' needs X in [0, 1]; got values in "
                f"[{X.min():.4g}, {X.max():.4g}]. Rescale X or use likelihood='gaussian'."
            )
        return X

    def _set_data_stats(self, X: np.ndarray) -> None:
        if self.standardize:
            self.data_stats_ = standardization_stats(X)
        else:
            n = X.shape[1]
            self.data_stats_ = (np.zeros(n, np.float32), np.ones(n, np.float32))

    def initialize_module(self):
        params = self.get_params_for("module")
        if isinstance(self.module, nn.Module) and not params:
            self.module_ = self.module  # a pretrained instance is used as is
            return self
        kwargs = {"latent_dim": int(self.latent_dim),
                  "hidden_units": check_hidden_units(self.hidden_units),
                  "likelihood": self.likelihood}
        if hasattr(self, "n_features_in_"):
            kwargs["n_features"] = self.n_features_in_
        kwargs.update(params)
        if "n_features" not in kwargs:
            raise ValueError("VAE.initialize() needs the number of features: call "
                             "fit(X), or pass module__n_features.")
        module = self.initialized_instance(self.module, kwargs)
        if hasattr(self, "data_stats_"):
            module.set_standardization(*self.data_stats_)
        self.module_ = module
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return net_is_trained(self)

    # ------------------------------------------------------------------- fit
    def fit(self, X, y=None, **fit_params) -> VAE:
        """Train on ``X`` of shape (n_samples, n_features); ``y`` is ignored."""
        self._check_params()
        warm = self.warm_start and self.initialized_
        X = self._validate_X(X, reset=not warm)
        with torch_seeded(draw_seed(self.random_state)):
            if not warm:
                self._set_data_stats(X)
                self.initialize()
            # skorch's partial_fit: X is validated already (twice would lose feature names)
            NeuralNet.partial_fit(self, X, None, _routing_method="fit", **fit_params)
        return self

    def partial_fit(self, X, y=None, classes=None, **fit_params) -> VAE:
        """Train ``max_epochs`` more epochs (initialising from ``X`` if needed)."""
        if not self.initialized_:
            self._check_params()
            X = self._validate_X(X, reset=True)
            self._set_data_stats(X)
            self.initialize()
        else:
            X = self._validate_X(X, reset=False)
        super().partial_fit(X, None, **fit_params)
        return self

    def on_epoch_end(self, net, **kwargs):
        # mark trained before the callbacks run, so that checkpoints carry the flag
        super().on_epoch_end(net, **kwargs)
        if isinstance(getattr(self.module_, "trained", None), torch.Tensor):
            self.module_.trained.fill_(True)

    def get_loss(self, y_pred, y_true=None, X=None, training=False):
        """Negative (beta-)ELBO of the batch; also records its two terms."""
        _, raw, mu, log_var = y_pred
        x = to_tensor(X, device=self.device)
        nll = -self.module_.log_likelihood(x, raw)
        kl = self.module_.kl_divergence(mu, log_var)
        prefix = "train" if training else "valid"
        self.history.record_batch(f"{prefix}_nll", float(nll.detach().mean()))
        self.history.record_batch(f"{prefix}_kl", float(kl.detach().mean()))
        return self.criterion_(nll, kl, float(self.beta_kl))

    # --------------------------------------------------------------- inference
    def _batched(self, X, fn, chunk: int = 4096) -> np.ndarray:
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        self.module_.eval()
        out = []
        with torch.no_grad():
            for start in range(0, len(X), chunk):
                x = torch.as_tensor(X[start:start + chunk], device=self.device)
                out.append(fn(x).cpu().numpy())
        return np.concatenate(out)

    def encode(self, X) -> np.ndarray:
        """Posterior means ``E[z | x]``, shape (n_samples, latent_dim)."""
        return self._batched(X, lambda x: self.module_.encode(x)[0])

    def transform(self, X) -> np.ndarray:
        """Latent means (as :meth:`encode`), for use in a Pipeline."""
        return self.encode(X)

    def decode(self, Z) -> np.ndarray:
        """Decoded means in data units for latents ``Z`` (n_samples, latent_dim)."""
        check_is_fitted(self)
        Z = np.asarray(Z, dtype=np.float32)
        if Z.ndim != 2 or Z.shape[1] != self.module_.latent_dim:
            raise ValueError(f"Z must have shape (n, {self.module_.latent_dim}), got "
                             f"{Z.shape}.")
        self.module_.eval()
        with torch.no_grad():
            return self.module_.decode(torch.as_tensor(Z, device=self.device)).cpu().numpy()

    def inverse_transform(self, Z) -> np.ndarray:
        """Decode latents (as :meth:`decode`)."""
        return self.decode(Z)

    def reconstruct(self, X) -> np.ndarray:
        """Decoded posterior means ``decode(encode(X))`` in data units."""
        return self._batched(X, lambda x: self.module_.decode(self.module_.encode(x)[0]))

    def predict(self, X) -> np.ndarray:
        """Reconstructions (as :meth:`reconstruct`)."""
        return self.reconstruct(X)

    @available_if(lambda self: False)
    def predict_proba(self, X):  # pragma: no cover - hidden: a VAE has no classes
        raise AttributeError("VAE has no predict_proba; use reconstruct or transform.")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]  # computes in float32
        tags.non_deterministic = False  # given random_state
        return tags

    def score_samples(self, X, *, n_draws: int = 8) -> np.ndarray:
        """ELBO per sample, a lower bound on ``log p(x)`` (nats, data units).

        The reconstruction term is averaged over ``n_draws`` latent draws seeded by
        ``random_state`` and shared by all rows (common random numbers: a row's score
        does not depend on the others); the KL term is exact; ``beta_kl`` is not
        applied. With the Gaussian likelihood it bounds the log-density of ``x`` in the
        units of ``X``; with the Bernoulli likelihood and non-binary ``X`` it is a
        negative cross-entropy, comparable between models but not a density.

        Returns
        -------
        elbo : ndarray of shape (n_samples,)
        """
        if isinstance(n_draws, bool) or not isinstance(n_draws, Integral) or n_draws < 1:
            raise ValueError(f"n_draws must be a positive int, got {n_draws!r}.")
        check_is_fitted(self)
        gen = torch_generator(draw_seed(self.random_state))
        eps = torch.randn(n_draws, self.module_.latent_dim, generator=gen).to(self.device)
        return self._batched(X, lambda x: self.module_.elbo(x, eps)).astype(np.float64)

    def score(self, X, y=None) -> float:
        """Mean ELBO over ``X`` (higher is better; used by GridSearchCV)."""
        return float(np.mean(self.score_samples(X)))

    def decoder_module(self) -> VAEDecoder:
        """Frozen CPU copy of the decoder: ``z -> E[x | z]`` in the units of ``X``."""
        check_is_fitted(self)
        decoder = self.module_.decoder_module().cpu().eval()
        for p in decoder.parameters():
            p.requires_grad_(False)
        return decoder

    def get_base_sampler(self) -> LatentSampler:
        """The fitted generative model as a :class:`~sktilt.LatentSampler`."""
        return LatentSampler(self.decoder_module(), latent_dim=self.module_.latent_dim)

    def sample(self, n_samples: int = 1, *, random_state=None) -> np.ndarray:
        """Decoded means of ``z ~ N(0, I)``, shape (n_samples, n_features).

        ``random_state=None`` uses the estimator's (so an int gives the same samples at
        every call, as :class:`~sktilt.BoltzmannTuner` does).
        """
        check_is_fitted(self)
        if isinstance(n_samples, bool) or not isinstance(n_samples, Integral) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive int, got {n_samples!r}.")
        rs = self.random_state if random_state is None else random_state
        gen = torch_generator(draw_seed(rs))
        z = torch.randn(int(n_samples), self.module_.latent_dim, generator=gen)
        return self.decode(z.numpy())
