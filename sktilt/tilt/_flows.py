"""The tuned model ``q = T_# M`` as a zuko normalising flow (BTGM Eq. 8-9).

``M`` is a learnt Gaussian mixture (:class:`zuko.mixtures.GMM`, diagonal or full
covariances) over the base's space (the latent space for decoder models) and ``T`` a stack of
coupling layers, so ``log q(T(e)) = log M(e) - log|det J_T(e)|``. Why a mixture: the
tilts the tuner meets are often unions of regions -- ``f = max`` of a curve peaks at
one of many hours, each a mode of ``q_beta`` -- and a single flow trained by reverse KL
keeps the few modes nearest its start. A mixture started on the importance-weighted base
samples (mode-covering) and trained by a stratified reverse KL (every component sampled
at every step, :meth:`TiltFlow.stratified`) keeps them: on a 32-d decoder whose top 0.1 %
spreads over 30 outputs, ``E_q f`` rose from 4 % below the top-rho mean to 7 % above.

:class:`TiltFlow` is a :class:`zuko.lazy.Flow` over ``T^{-1}``: ``flow()`` is the
distribution ``q``. The layers ``T`` (0 or more) are:

* ``"realnvp"`` -- affine coupling layers (the default),
* ``"nsf"`` -- rational-quadratic spline coupling layers,
* ``"maf"`` -- affine autoregressive layers used in their one-pass direction, i.e. an
  inverse autoregressive flow (IAF): sampling is one pass, ``log q`` at an arbitrary
  point takes ``d`` passes.

They are built directly (not extracted from zuko's ready-made flows) and start at the
identity (the output layer of each hyper-network is zero). Coupling layers
(:class:`CouplingLayer`) compute the inverse and its log-determinant in one pass of their
hyper-network, which zuko's inverse does in two: the density at arbitrary points (the
"sticking the landing" gradient, the rare-event weights) then costs what sampling costs.
"""

from __future__ import annotations

__all__ = ["FLOWS", "CouplingLayer", "TiltFlow", "build_flow", "components_for"]

from collections.abc import Sequence
from functools import partial

import numpy as np
import torch
from torch import nn
from torch.distributions import Transform, constraints
from zuko.flows.autoregressive import MaskedAutoregressiveTransform
from zuko.flows.coupling import GeneralCouplingTransform
from zuko.lazy import (
    Flow,
    LazyComposedTransform,
    LazyInverse,
    LazyTransform,
    UnconditionalTransform,
)
from zuko.mixtures import GMM
from zuko.transforms import CouplingTransform, IdentityTransform, MonotonicRQSTransform

#: Flow families accepted by :func:`build_flow` and ``BoltzmannTuner(flow=...)``.
FLOWS = ("realnvp", "nsf", "maf")

class _InverseCoupling(Transform):
    """The inverse of a coupling transform, with its log-determinant in the same pass."""

    domain = constraints.real_vector
    codomain = constraints.real_vector
    bijective = True

    def __init__(self, coupling: CouplingTransform):
        super().__init__()
        self.coupling = coupling

    @property
    def inv(self) -> Transform:
        return self.coupling

    def _call(self, y: torch.Tensor) -> torch.Tensor:
        return self.coupling._inverse(y)

    def _inverse(self, x: torch.Tensor) -> torch.Tensor:
        return self.coupling(x)

    def log_abs_det_jacobian(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return -self.coupling.log_abs_det_jacobian(x, y)

    def call_and_ladj(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y_a, y_b = self.coupling.split(y)
        univariate = self.coupling.meta(y_a)  # the one hyper-network pass
        x_b = univariate.inv(y_b)
        ladj = -univariate.log_abs_det_jacobian(x_b, y_b)
        return self.coupling.merge(y_a, x_b, y.shape), ladj


class _Coupling(CouplingTransform):
    @property
    def inv(self) -> Transform:
        return _InverseCoupling(self)


class CouplingLayer(GeneralCouplingTransform):
    """zuko's :class:`~zuko.flows.coupling.GeneralCouplingTransform`, one-pass both ways.

    The same layer (hyper-network, mask, univariate transform); only its inverse's
    ``call_and_ladj`` differs, evaluating the hyper-network once instead of twice.
    """

    def forward(self, c: torch.Tensor | None = None) -> Transform:
        return _Coupling(partial(self.meta, c), self.mask)


class TiltFlow(Flow):
    """``q = T_# M`` as a lazy zuko flow; ``flow(c)`` is the distribution ``q`` (given ``c``).

    Parameters
    ----------
    layers : sequence of LazyTransform
        The layers of ``T`` in sampling order (mixture sample to tuned sample); may be
        empty.
    mixture : zuko.mixtures.GMM
        ``M``, with diagonal or (unconditional) full covariances.
    """

    def __init__(self, layers: Sequence[LazyTransform], mixture: GMM) -> None:
        forward = (LazyComposedTransform(*layers) if layers
                   else UnconditionalTransform(IdentityTransform))
        super().__init__(LazyInverse(forward), mixture)

    @property
    def components(self) -> int:
        """Number of mixture components ``K``."""
        return self.base.components

    def _forward(self, c, batch_shape) -> Transform:
        # T given the context, broadcast over the extra batch dimensions of the samples.
        if c is not None:
            c = c.reshape(c.shape[:1] + (1,) * (len(batch_shape) - 1) + c.shape[1:]).expand(
                *batch_shape, c.shape[-1])
        return self.transform(c).inv

    def stratified(self, m: int, c: torch.Tensor | None = None):
        """Reparameterised samples of every component, and the weights of an exact average.

        ``E_q[h] = sum_k w_k E_{q_k}[h]`` with ``q_k = T_# M_k``: averaging ``h`` over these
        samples with these weights is unbiased, and differentiable in the mixture weights
        too (no discrete sampling).

        Returns
        -------
        z : tensor of shape (m, K, d), or (n, K, d) with a context ``c`` of shape (n, c)
            (one sample per component per context row, ``m`` ignored).
        weights : tensor of shape (m, K) or (n, K), summing to one over all samples.
        """
        mixture = self.base(c)
        e = mixture.base.rsample(() if c is not None else (m,))
        weights = torch.softmax(mixture.logits, dim=-1)
        weights = weights.expand(e.shape[:-1]) / (1 if c is not None else m)
        if c is not None:
            weights = weights / e.shape[0]
        return self._forward(c, e.shape[:-1])(e), weights

    def draw(self, n: int, c: torch.Tensor | None = None) -> torch.Tensor:
        """``n`` exact samples of ``q`` (a component index each, then its Gaussian).

        zuko's ``Mixture.sample`` draws every component for every sample; this draws one.
        A context ``c`` of shape (n, c) gives one sample per row; of shape (1, c), ``n``
        samples at that one context (the mixture's hyper-network then runs once).
        """
        mixture = self.base(c)
        if self.full_covariance:
            if c is not None:
                raise NotImplementedError("full-covariance mixtures are unconditional")
            index = torch.distributions.Categorical(logits=mixture.logits).sample((n,))
            noise = torch.randn(n, mixture.base.loc.shape[-1], device=index.device)
            e = mixture.base.loc[index] + (mixture.base.scale_tril[index]
                                           @ noise[:, :, None])[..., 0]
            return self._forward(None, e.shape[:-1])(e)
        logits, mean, std = mixture.logits, mixture.base.mean, mixture.base.stddev
        if c is None or c.shape[0] == 1:
            index = torch.distributions.Categorical(logits=logits.reshape(-1)).sample((n,))
            mean, std = mean.reshape(-1, mean.shape[-1]), std.reshape(-1, std.shape[-1])
            mean, std = mean[index], std[index]
        else:
            index = torch.distributions.Categorical(logits=logits).sample()
            rows = torch.arange(index.shape[0], device=index.device)
            mean, std = mean[rows, index], std[rows, index]
        e = mean + std * torch.randn_like(mean)
        return self._forward(None if c is None else c.expand(n, -1), e.shape[:-1])(e)

    def log_prob(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """``log q(z)`` given the context ``c``: one row per sample, or (1, c) for all."""
        if c is None or c.shape[0] != 1:
            return self(c).log_prob(z)
        e, ladj = self.transform(c.expand(z.shape[0], -1)).call_and_ladj(z)
        if ladj.dim() == z.dim():  # an elementwise transform (the identity): per feature
            ladj = ladj.sum(-1)
        return self.base(c).log_prob(e) + ladj

    @property
    def full_covariance(self) -> bool:
        """Whether the mixture's components have full covariances (else diagonal)."""
        return self.base.covariance_type == "full"

    @torch.no_grad()
    def init_mixture_(self, weights, means, stds) -> None:
        """Set the mixture's weights (K,), means (K, d) and scales.

        ``stds`` are standard deviations (K, d) for a diagonal mixture, covariance
        matrices (K, d, d) for a full one. (zuko's ``GMM.initialize`` stores
        log-variances where the diagonal model expects log-scales; this sets the
        parameters of :func:`standard_mixture` directly.)
        """
        mixture = self.base
        params = [torch.as_tensor(np.log(weights), dtype=torch.float32),
                  torch.as_tensor(means, dtype=torch.float32)]
        if self.full_covariance:
            tril = np.linalg.cholesky(np.asarray(stds, dtype=np.float64))
            d = tril.shape[-1]
            rows, cols = np.tril_indices(d, -1)  # row-major, as zuko scatters them
            diag = np.maximum(np.diagonal(tril, axis1=-2, axis2=-1) - mixture.epsilon,
                              1e-12)
            params += [torch.as_tensor(np.log(diag), dtype=torch.float32),
                       torch.as_tensor(tril[:, rows, cols], dtype=torch.float32)]
        else:
            params.append(torch.as_tensor(np.log(stds), dtype=torch.float32))
        if hasattr(mixture, "hyper"):  # conditional: a constant start, as zuko does
            mixture.hyper[-1].weight.mul_(1e-2)
            mixture.hyper[-1].bias.copy_(torch.cat([p.flatten() for p in params]))
        else:
            for p, value in zip(mixture.phi, params):
                p.copy_(value)


def _zero_output_layer_(layer: nn.Module) -> None:
    # The last linear layer of a coupling / autoregressive layer's hyper-network
    # outputs the univariate transform's parameters: zero parameters are the identity
    # for the affine and the spline transforms alike.
    linears = [m for m in layer.hyper.modules() if isinstance(getattr(m, "weight", None),
                                                              torch.Tensor)]
    with torch.no_grad():
        linears[-1].weight.zero_()
        if getattr(linears[-1], "bias", None) is not None:
            linears[-1].bias.zero_()


def build_layers(features: int, *, flow: str = "realnvp", transforms: int = 0,
                 hidden_features: Sequence[int] = (64, 64), bins: int = 8,
                 bound: float = 10.0, context: int = 0) -> list[LazyTransform]:
    """Identity-initialised layers of ``T``.

    Parameters
    ----------
    features : int
        Dimension of the space the flow acts on.
    flow : {"realnvp", "nsf", "maf"}
        Family of layers, see the module docstring.
    transforms : int
        Number of coupling / autoregressive layers (0: ``q`` is the mixture itself).
    hidden_features : sequence of int
        Hidden layer sizes of each hyper-network.
    bins : int
        Number of spline bins (``"nsf"`` only).
    bound : float
        Spline (co)domain bound ``B`` (``"nsf"`` only); the spline is the identity outside
        ``[-B, B]``, so it must cover the tilted distribution's bulk.
    context : int
        Number of context features the hyper-networks take (0: unconditional).

    Returns
    -------
    layers : list of zuko.lazy.LazyTransform
    """
    if flow not in FLOWS:
        raise ValueError(f"flow must be one of {FLOWS}, got {flow!r}.")
    hidden = tuple(int(h) for h in hidden_features)
    layers: list[LazyTransform] = []
    if features > 1:
        for i in range(transforms):
            order = torch.arange(features)
            if flow == "maf":
                layer = MaskedAutoregressiveTransform(
                    features, context, order=order if i % 2 == 0 else order.flip(0),
                    hidden_features=hidden)
            else:
                spline = {} if flow == "realnvp" else {
                    "univariate": partial(MonotonicRQSTransform, bound=bound),
                    "shapes": [(bins,), (bins,), (bins - 1,)]}
                layer = CouplingLayer(features, context, mask=order % 2 == i % 2,
                                      hidden_features=hidden, **spline)
            _zero_output_layer_(layer)
            layers.append(layer)
    return layers


def standard_mixture(features: int, components: int, context: int = 0,
                     hidden_features: Sequence[int] = (64, 64),
                     covariance_type: str = "diagonal") -> GMM:
    """A GMM whose every component is ``N(0, I)`` (so ``q = p`` for a latent base).

    ``covariance_type`` is ``"diagonal"`` or ``"full"`` (unconditional only).
    """
    if covariance_type == "full" and context:
        raise ValueError("a conditional mixture has diagonal covariances.")
    mixture = GMM(features, context, components=components, covariance_type=covariance_type,
                  hidden_features=tuple(hidden_features))
    with torch.no_grad():
        if context:  # the hyper-network starts constant: zero weights, bias = the params
            last = mixture.hyper[-1]
            last.weight.zero_()
            last.bias.zero_()
        else:
            for p in mixture.phi:
                p.zero_()
    return mixture


def build_flow(features: int, *, components: int = 1, context: int = 0,
               hidden_features: Sequence[int] = (64, 64), covariance_type: str = "diagonal",
               **kwargs) -> TiltFlow:
    """A :class:`TiltFlow` starting at ``N(0, I)``; ``kwargs`` go to :func:`build_layers`.

    ``components`` is the number ``K`` of mixture components, ``context`` the number of
    context features (e.g. 1 for a flow conditioned on beta) and ``covariance_type`` the
    mixture's (``"diagonal"`` or, unconditional only, ``"full"``).
    """
    return TiltFlow(build_layers(features, context=context, hidden_features=hidden_features,
                                 **kwargs),
                    standard_mixture(features, components, context, hidden_features,
                                     covariance_type))


def components_for(dim: int, n_components="auto") -> int:
    """Mixture components for a ``dim``-dimensional flow space: ``min(32, 8 + dim // 4)``
    for ``"auto"`` (the tilts of a 32-d decoder's peak spread over ~30 outputs)."""
    return min(32, 8 + dim // 4) if n_components == "auto" else int(n_components)
