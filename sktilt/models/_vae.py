"""A variational auto-encoder for curves and images: a trainable base model ``p``.

:class:`VAE` is a :class:`skorch.NeuralNet` (history, callbacks, progress bar, device
and checkpointing come from skorch) trained by maximising the evidence lower bound

.. math:: \\mathrm{ELBO}(x) = E_{q(z|x)} \\log p(x | z) - \\mathrm{KL}(q(z|x) \\| N(0, I)).

Once fitted, :meth:`~sktilt.VAE.get_base_sampler` returns a :class:`~sktilt.LatentSampler`
whose frozen decoder maps ``z ~ N(0, I)`` to the decoded mean in the data's units, so
``BoltzmannTuner(VAE(...), criterion).fit(X)`` trains the VAE and then tunes it.
"""

from __future__ import annotations

__all__ = ["VAE"]

from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any, Literal

import numpy as np
import torch
from sklearn.base import TransformerMixin
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data
from skorch import NeuralNet
from skorch.callbacks import PassthroughScoring
from skorch.utils import to_tensor
from torch import nn

from .._config import torch_threads
from .._deprecation import DEPRECATED
from .._persistence import VersionedStateMixin
from .._random import draw_seed, resolve_seed, torch_generator, torch_seeded
from .._typing import Device, RandomStateLike
from .._utils import check_hidden_units, check_n_samples, draw_in_chunks, frozen_copy, to_numpy
from ..tilt import LatentSampler
from ._skorch import SkorchModelMixin, inference_copy, standardization_stats
from ._vae_module import LIKELIHOODS, NOISE_MODELS, NegativeELBO, VAEDecoder, VAEModule

# Rows per chunk of the inference methods: bounds memory beyond the output.
_CHUNK = 4096


class VAE(VersionedStateMixin, SkorchModelMixin, TransformerMixin, NeuralNet):
    """Variational auto-encoder on tabular ``X`` (curves, flattened images).

    Parameters
    ----------
    module : torch module class or instance, default=VAEModule
        Called with ``n_features`` (inferred from ``X``), ``latent_dim``,
        ``hidden_units`` (the value of ``hidden_layer_sizes``), ``likelihood`` and any
        ``module__*`` parameters; an instance
        without ``module__*`` parameters is used as is (pretrained weights). A custom
        module subclasses :class:`~sktilt.models.VAEModule` (or provides its methods).
    latent_dim : int, default=8
        Dimension of the latent space (where :class:`~sktilt.BoltzmannTuner` tunes).
    hidden_layer_sizes : tuple of int, default=(256, 128)
        Encoder widths; the decoder mirrors them.
    likelihood : {"gaussian", "lognormal", "bernoulli"}, default="gaussian"
        Observation model. ``"gaussian"`` learns a per-feature noise scale (floored by
        ``module__min_std``, default 0.05 in standardised units). ``"lognormal"`` is
        the Gaussian model of ``log x`` (``X > 0``): multiplicative noise with a heavy
        right tail and positive samples, e.g. electricity loads whose hourly spikes make
        the weekly peaks. ``"bernoulli"`` needs
        ``X`` in ``[0, 1]`` (grey levels are accepted; the ELBO is then a
        cross-entropy rather than a log-density).
    noise_model : {"constant", "level"}, default="constant"
        Scale of the Gaussian or log-normal observation noise
        (``NoiseScale``): one learned scale per feature, or per
        feature and varying with the decoded level (``min_std + softplus(a + b *
        mean)``). ``"level"`` lets high-load (heating) hours be relatively smoother
        than mild ones, which puts a load model's peak tail in high-consumption weeks.
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
    max_iter : int, default=100
        Training epochs of :meth:`fit` (and of each :meth:`partial_fit`); skorch's
        ``max_epochs``.
    batch_size : int, default=128
    train_split : default=None
        All of ``X`` trains; pass e.g. ``skorch.dataset.ValidSplit(5)`` to record
        ``valid_loss`` (computed at the posterior mean, without latent noise).
    verbose : int, default=0
    device : str, default="cpu"
    hidden_units : tuple of int
        .. deprecated:: 0.2
           Use ``hidden_layer_sizes``; removed in 0.3.
    max_epochs : int
        .. deprecated:: 0.2
           Use ``max_iter``; removed in 0.3.
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
    n_iter_ : int
        Epochs trained (``len(history)``).

    Examples
    --------
    >>> import numpy as np
    >>> from sktilt import VAE
    >>> X = np.random.default_rng(0).normal(size=(200, 6)).astype("float32")
    >>> vae = VAE(latent_dim=2, hidden_layer_sizes=(32,), max_iter=5, random_state=0).fit(X)
    >>> vae.sample(3).shape, vae.transform(X).shape
    ((3, 6), (200, 2))
    >>> vae.get_base_sampler().latent_dim
    2
    """

    def __init__(self, module: type[nn.Module] | nn.Module = VAEModule, *,
                 latent_dim: int = 8, hidden_layer_sizes: Sequence[int] = (256, 128),
                 likelihood: Literal["gaussian", "lognormal", "bernoulli"] = "gaussian",
                 noise_model: Literal["constant", "level"] = "constant", beta_kl: float = 1.0,
                 standardize: bool = True,
                 random_state: RandomStateLike | np.random.Generator = None,
                 criterion: type[nn.Module] | nn.Module = NegativeELBO,
                 optimizer: type[torch.optim.Optimizer] = torch.optim.Adam, lr: float = 1e-3,
                 max_iter: int = 100, batch_size: int = 128, train_split: Any = None,
                 verbose: int = 0, device: Device = "cpu",
                 hidden_units: Sequence[int] | Literal["deprecated"] = DEPRECATED,
                 max_epochs: int | Literal["deprecated"] = DEPRECATED, **kwargs: Any) -> None:
        kwargs.setdefault("iterator_train__shuffle", True)
        # skorch's max_epochs holds the deprecated old name; fit_loop reads max_iter
        super().__init__(module, criterion=criterion, optimizer=optimizer, lr=lr,
                         max_epochs=max_epochs, batch_size=batch_size,
                         train_split=train_split, verbose=verbose, device=device, **kwargs)
        self.latent_dim = latent_dim
        self.hidden_layer_sizes = hidden_layer_sizes
        self.max_iter = max_iter
        self.hidden_units = hidden_units
        self.likelihood = likelihood
        self.noise_model = noise_model
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
        self._check_training_params()
        dim = self.latent_dim
        if isinstance(dim, bool) or not isinstance(dim, Integral) or dim < 1:
            raise ValueError(f"latent_dim must be a positive int, got {dim!r}.")
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got "
                             f"{self.likelihood!r}.")
        if self.noise_model not in NOISE_MODELS:
            raise ValueError(f"noise_model must be one of {NOISE_MODELS}, got "
                             f"{self.noise_model!r}.")
        if self.noise_model != "constant" and self.likelihood == "bernoulli":
            raise ValueError(f"noise_model={self.noise_model!r} needs a continuous "
                             "likelihood ('gaussian' or 'lognormal'); a Bernoulli model "
                             "has no noise scale. Use noise_model='constant'.")
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
        if self.likelihood == "lognormal" and X.min() <= 0:
            raise ValueError(
                f"likelihood='lognormal' needs X > 0; got a minimum of {X.min():.4g}. Shift "
                "X (e.g. X + 0.01) or use likelihood='gaussian'.")
        return X

    def _set_data_stats(self, X: np.ndarray) -> None:
        if self.likelihood == "lognormal":
            X = np.log(X)  # the module standardises log x
        if self.standardize:
            self.data_stats_ = standardization_stats(X)
        else:
            n = X.shape[1]
            self.data_stats_ = (np.zeros(n, np.float32), np.ones(n, np.float32))

    def _module_kwargs(self) -> dict:
        kwargs = {"latent_dim": int(self.latent_dim),
                  "hidden_units": check_hidden_units(self._param("hidden_layer_sizes")),
                  "likelihood": self.likelihood}
        if self.likelihood != "bernoulli":
            kwargs["noise_model"] = self.noise_model
        if hasattr(self, "n_features_in_"):
            kwargs["n_features"] = self.n_features_in_
        elif "n_features" not in self.get_params_for("module"):
            raise ValueError("VAE.initialize() needs the number of features: call "
                             "fit(X), or pass module__n_features.")
        return kwargs

    def _prepare_module(self, module) -> None:
        if hasattr(self, "data_stats_"):
            module.set_standardization(*self.data_stats_)

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
            self._train(X, None, **fit_params)  # X is validated already
        return self

    def partial_fit(self, X, y=None, classes=None, **fit_params) -> VAE:
        """Train ``max_iter`` more epochs (initialising from ``X`` if needed)."""
        if not self.initialized_:
            self._check_params()
            X = self._validate_X(X, reset=True)
            self._set_data_stats(X)
            self.initialize()
        else:
            X = self._validate_X(X, reset=False)
        return self._train(X, None, **fit_params)

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
    def _batched(self, X, fn, dtype=np.float32) -> np.ndarray:
        """``fn(module, x)`` on chunks of ``X``, computed on a float64 copy of the module
        (see :func:`~sktilt.models._skorch.inference_copy`: a row's result then does not
        depend on the batch it is in) and returned as ``dtype``."""
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        module, torch_dtype = inference_copy(self.module_, self.device)
        starts = iter(range(0, len(X), _CHUNK))

        def draw(m):
            start = next(starts)
            x = torch.as_tensor(X[start:start + m], device=self.device, dtype=torch_dtype)
            return (to_numpy(fn(module, x), dtype),)

        with torch.no_grad(), torch_threads():
            return draw_in_chunks(len(X), _CHUNK, draw)[0]

    def encode(self, X) -> np.ndarray:
        """Posterior means ``E[z | x]``, shape (n_samples, latent_dim)."""
        return self._batched(X, lambda module, x: module.encode(x)[0])

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
        with torch.no_grad(), torch_threads():
            return self.module_.decode(torch.as_tensor(Z, device=self.device)).cpu().numpy()

    def inverse_transform(self, Z) -> np.ndarray:
        """Decode latents (as :meth:`decode`)."""
        return self.decode(Z)

    def reconstruct(self, X) -> np.ndarray:
        """Decoded posterior means ``decode(encode(X))`` in data units."""
        return self._batched(X, lambda module, x: module.decode(module.encode(x)[0]))

    def predict(self, X) -> np.ndarray:
        """Reconstructions (as :meth:`reconstruct`)."""
        return self.reconstruct(X)

    @available_if(lambda self: False)
    def predict_proba(self, X):  # pragma: no cover - hidden: a VAE has no classes
        raise AttributeError("VAE has no predict_proba; use reconstruct or transform.")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]  # returns float32
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
        eps = torch.randn(n_draws, self.module_.latent_dim, generator=gen)
        # float64 throughout: a row's ELBO sums n_features log-densities over n_draws
        # decodes, and in float32 it moved by ~5e-7 with the batch size (issue #29)
        return self._batched(X, lambda module, x: module.elbo(x, eps.to(x)), np.float64)

    def score(self, X, y=None) -> float:
        """Mean ELBO over ``X`` (higher is better; used by GridSearchCV)."""
        return float(np.mean(self.score_samples(X)))

    def decoder_module(self) -> VAEDecoder:
        """Frozen CPU copy of the decoder: ``z -> E[x | z]`` in the units of ``X``."""
        check_is_fitted(self)
        return frozen_copy(self.module_.decoder_module().cpu())

    def get_base_sampler(self, *, observation_noise: bool = False) -> LatentSampler:
        """The fitted generative model as a :class:`~sktilt.LatentSampler`.

        Parameters
        ----------
        observation_noise : bool, default=False
            ``False``: ``x = E[x | z]`` (the decoded mean; a log-normal's median), over
            ``latent_dim`` latents. ``True``: the whole model ``x ~ p(x | z)``, written
            as a map of ``latent_dim + n_features`` standard normal latents ``(z, eps)``
            (:class:`~sktilt.models.VAEDecoder`); criteria that depend on the noise (the
            peak of a load curve) then see it. Needs a continuous likelihood.
        """
        check_is_fitted(self)
        decoder = frozen_copy(self.module_.decoder_module(observation_noise).cpu())
        dim = self.module_.latent_dim + (self.n_features_in_ if observation_noise else 0)
        return LatentSampler(decoder, latent_dim=dim)

    def sample(self, n_samples: int = 1, *, observation_noise: bool = False,
               random_state=None) -> np.ndarray:
        """Samples of the model, shape (n_samples, n_features).

        ``observation_noise=False``: decoded means of ``z ~ N(0, I)`` (smooth curves);
        ``True``: ``x ~ p(x | z)``, the model's full distribution (see
        :meth:`get_base_sampler`). ``random_state=None`` uses the estimator's (so an int
        gives the same samples at every call, as :class:`~sktilt.BoltzmannTuner` does).
        """
        check_is_fitted(self)
        n = check_n_samples(n_samples)
        gen = torch_generator(resolve_seed(self.random_state, random_state))
        self.module_.eval()
        decoder = self.module_.decoder_module(observation_noise) if observation_noise else None
        dim = self.module_.latent_dim + (self.n_features_in_ if observation_noise else 0)

        def draw(m):
            z = torch.randn(m, dim, generator=gen).to(self.device)
            x = self.module_.decode(z) if decoder is None else decoder(z)
            return (to_numpy(x),)

        with torch.no_grad(), torch_threads():
            return draw_in_chunks(n, _CHUNK, draw)[0]
