"""The tuned model ``q = T_# p`` as a zuko normalising flow (BTGM Eq. 8-9).

``T`` is applied to samples of the base ``p`` (its latent space for decoder models), so
``log q(T(e)) = log p(e) - log|det J_T(e)|``. :class:`TiltFlow` is a
:class:`zuko.lazy.Flow` over ``T^{-1}``: calling it gives a distribution whose
``rsample_and_log_prob`` samples *through* ``T`` in one pass, the fast direction of
every family here:

* ``"realnvp"`` -- affine coupling layers (fast both ways; the default),
* ``"nsf"`` -- rational-quadratic spline coupling layers,
* ``"maf"`` -- affine autoregressive layers used in their one-pass direction, i.e. an
  inverse autoregressive flow (IAF): sampling is one pass, but ``log q`` at an arbitrary
  point (needed by the score-function gradient) takes ``d`` passes.

The layers are built directly (not extracted from zuko's ready-made flows); the last
one is a global elementwise affine map (:class:`GlobalAffine`), so translating or
rescaling mass far into a tail is one layer's job. Every flow starts at the identity: the
output layer of each layer's hyper-network and the affine map are zero.
"""

from __future__ import annotations

__all__ = ["FLOWS", "GlobalAffine", "TiltFlow", "build_flow"]

import math
from collections.abc import Sequence
from functools import partial

import torch
from torch import nn
from zuko.flows.autoregressive import MaskedAutoregressiveTransform
from zuko.flows.coupling import GeneralCouplingTransform
from zuko.lazy import Flow, LazyComposedTransform, LazyDistribution, LazyInverse, LazyTransform
from zuko.transforms import DependentTransform, MonotonicAffineTransform, MonotonicRQSTransform

#: Flow families accepted by :func:`build_flow` and ``BoltzmannTuner(flow=...)``.
FLOWS = ("realnvp", "nsf", "maf")

# MonotonicAffineTransform bounds the log-slope to [log 1e-3, -log 1e-3] by squashing it
# as a / (1 + |a| / L): the global map stays well conditioned.
_AFFINE_LOG_SLOPE_BOUND = -math.log(1e-3)


class GlobalAffine(LazyTransform):
    """Elementwise ``x -> exp(a) * x + b`` with learnt ``a``, ``b`` (zero at start)."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.shift = nn.Parameter(torch.zeros(features))
        self.log_scale = nn.Parameter(torch.zeros(features))

    @torch.no_grad()
    def set_(self, shift, scale) -> None:
        """Set the map to ``x -> scale * x + shift`` (``scale`` in [1e-2, 1e2])."""
        shift = torch.as_tensor(shift, dtype=self.shift.dtype)
        log_scale = torch.log(torch.as_tensor(scale, dtype=self.shift.dtype))
        self.shift.copy_(shift)
        # invert MonotonicAffineTransform's squashing of the log-slope
        self.log_scale.copy_(log_scale / (1 - log_scale.abs() / _AFFINE_LOG_SLOPE_BOUND))

    def forward(self, c: torch.Tensor | None = None):
        # DependentTransform sums the log-det over the features.
        return DependentTransform(MonotonicAffineTransform(self.shift, self.log_scale), 1)


class TiltFlow(Flow):
    """``q = T_# p`` as a lazy zuko flow; ``flow()`` is the distribution ``q``.

    Parameters
    ----------
    layers : sequence of LazyTransform
        The layers of ``T`` in sampling order (base sample to tuned sample).
    base : LazyDistribution
        ``p``.
    """

    def __init__(self, layers: Sequence[LazyTransform], base: LazyDistribution) -> None:
        super().__init__(LazyInverse(LazyComposedTransform(*layers)), base)

    @property
    def forward_transform(self) -> LazyTransform:
        """``T`` (base sample to tuned sample), the fast direction."""
        return self.transform.inv

    def global_affine(self) -> GlobalAffine:
        """The final elementwise affine layer of ``T``."""
        return next(m for m in self.modules() if isinstance(m, GlobalAffine))


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


def build_layers(features: int, *, flow: str = "realnvp", transforms: int = 4,
                 hidden_features: Sequence[int] = (64, 64), bins: int = 8,
                 bound: float = 10.0, context: int = 0) -> list[LazyTransform]:
    """Identity-initialised layers of ``T``, the global affine map last.

    Parameters
    ----------
    features : int
        Dimension of the space the flow acts on.
    flow : {"realnvp", "nsf", "maf"}
        Family of layers, see the module docstring.
    transforms : int
        Number of coupling / autoregressive layers (0 keeps only the global affine map).
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
                layer = GeneralCouplingTransform(features, context, mask=order % 2 == i % 2,
                                                 hidden_features=hidden, **spline)
            _zero_output_layer_(layer)
            layers.append(layer)
    layers.append(GlobalAffine(features))
    return layers


def build_flow(base: LazyDistribution, features: int, **kwargs) -> TiltFlow:
    """An identity-initialised :class:`TiltFlow` over ``base`` (kwargs: :func:`build_layers`)."""
    return TiltFlow(build_layers(features, **kwargs), base)
