"""Normalising-flow builders (zuko) for Boltzmann tuning.

The tuned model is ``q = T_# p``: a bijection ``T`` applied to samples of the base
``p`` (BTGM Eq. 8-9), so ``log q(T(e)) = log p(e) - log|det J_T(e)|``. ``T`` must be
fast in the direction ``e -> T(e)`` (sampling):

* ``"realnvp"`` -- affine coupling layers (fast both ways; the default),
* ``"nsf"`` -- rational-quadratic spline coupling layers,
* ``"maf"`` -- affine autoregressive layers used in their one-pass direction, i.e. an
  inverse autoregressive flow (IAF): sampling is one pass, but evaluating ``log q`` at
  an arbitrary point (needed only by the score-function gradient) takes ``d`` passes.

Every flow ends with a global elementwise affine map (a learnt shift and log-scale),
so translating or rescaling mass far into a tail is one layer's job, and every flow
starts at the identity: the last layer of each hyper-network and the affine map are
zero-initialised.
"""

from __future__ import annotations

__all__ = ["FLOWS", "GlobalAffine", "build_transform", "zero_init_"]

import math
from collections.abc import Sequence

import torch
import zuko
from torch import nn
from zuko.lazy import LazyComposedTransform, LazyTransform
from zuko.transforms import DependentTransform, MonotonicAffineTransform

#: Flow families accepted by :func:`build_transform` and ``BoltzmannTuner(flow=...)``.
FLOWS = ("realnvp", "nsf", "maf")


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
        # invert MonotonicAffineTransform's squashing a / (1 + |a| / L), L = -log(slope)
        bound = -math.log(1e-3)
        self.shift.copy_(shift)
        self.log_scale.copy_(log_scale / (1 - log_scale.abs() / bound))

    def forward(self, c: torch.Tensor | None = None):
        # MonotonicAffineTransform bounds the log-scale (slope >= 1e-3), keeping the
        # map well conditioned; DependentTransform sums the log-det over features.
        return DependentTransform(MonotonicAffineTransform(self.shift, self.log_scale), 1)


def zero_init_(module: nn.Module) -> nn.Module:
    """Zero the output layer of every hyper-network in ``module`` (identity start)."""
    for sub in module.modules():
        hyper = getattr(sub, "hyper", None)
        if hyper is None:
            continue
        last = [m for m in hyper.modules() if isinstance(getattr(m, "weight", None), torch.Tensor)]
        if last:
            with torch.no_grad():
                last[-1].weight.zero_()
                if getattr(last[-1], "bias", None) is not None:
                    last[-1].bias.zero_()
    return module


def build_transform(
    features: int,
    *,
    flow: str = "realnvp",
    transforms: int = 4,
    hidden_features: Sequence[int] = (64, 64),
    bins: int = 8,
    bound: float = 10.0,
) -> LazyTransform:
    """Build an identity-initialised lazy transform ``T`` over ``features`` dimensions.

    Parameters
    ----------
    features : int
        Dimension of the space the flow acts on.
    flow : {"realnvp", "nsf", "maf"}
        Family of layers, see the module docstring.
    transforms : int
        Number of coupling / autoregressive layers (0 keeps only the global affine).
    hidden_features : sequence of int
        Hidden layer sizes of each hyper-network.
    bins : int
        Number of spline bins (``"nsf"`` only).
    bound : float
        Spline (co)domain bound ``B`` (``"nsf"`` only); the spline is the identity
        outside ``[-B, B]``, so it must cover the tilted distribution's bulk.

    Returns
    -------
    transform : zuko.lazy.LazyTransform
        Call it (``transform()``) to get a ``torch.distributions.Transform``.
    """
    if flow not in FLOWS:
        raise ValueError(f"flow must be one of {FLOWS}, got {flow!r}.")
    hidden = tuple(int(h) for h in hidden_features)
    layers: list[LazyTransform] = []
    if features > 1 and transforms > 0:
        if flow == "maf":
            maf = zuko.flows.MAF(features, transforms=transforms, hidden_features=hidden)
            layers.extend(maf.transform.transforms)
        else:
            kwargs = {"hidden_features": hidden}
            if flow == "nsf":
                kwargs.update(
                    univariate=zuko.transforms.MonotonicRQSTransform,
                    shapes=[(bins,), (bins,), (bins - 1,)],
                    bound=bound,
                )
                kwargs = _spline_kwargs(kwargs)
            nice = zuko.flows.NICE(features, transforms=transforms, **kwargs)
            layers.extend(nice.transform.transforms)
    layers.append(GlobalAffine(features))
    return zero_init_(LazyComposedTransform(*layers))


def _spline_kwargs(kwargs: dict) -> dict:
    # The spline's bound is a constructor argument of the univariate transform.
    bound = kwargs.pop("bound")
    base = kwargs["univariate"]

    def univariate(*phi):
        return base(*phi, bound=bound)

    kwargs["univariate"] = univariate
    return kwargs
