"""A normalizing-flow proposal: ``q_psi(theta)`` any distribution a zuko flow can take.

:class:`FlowProposal` (the spec) builds a :class:`FlowProposalModule`: ``u`` follows a
zuko neural spline flow, ``z = mu0 + s0 u`` standardises it around the starting point
and ``theta = T(z)`` keeps bounded parameters in range (the box bijection of
:class:`~sktilt.GaussianProposal`). The layers start as the identity, so the proposal
starts as ``N(loc, scale^2)``; the same score-function machinery trains it (scores of
``log q`` from autograd). A flow can hold several modes and ridges, and with ``gamma=0``
(or ``gamma < 0``) it is a *source distribution* over a population of parameters.
"""

from __future__ import annotations

__all__ = ["FlowProposal", "FlowProposalModule"]

from collections.abc import Sequence
from functools import partial
from numbers import Integral, Real
from typing import Literal

import numpy as np
import torch
import zuko
from numpy.typing import ArrayLike
from sklearn.utils._param_validation import Hidden, Interval, StrOptions
from torch import nn
from zuko.transforms import MonotonicRQSTransform

from .._deprecation import DEPRECATED, renamed
from .._random import torch_seeded
from .._typing import Bounds
from .._utils import check_hidden_units, to_numpy
from ._gaussian import box_transform, unconstrained_in_box
from ._proposals import (
    OPTIMISATION_CONSTRAINTS,
    OPTIMISATION_DOC,
    Proposal,
    _slopes,
    check_loc_and_bounds,
)

# Monte Carlo draws behind the flow's entropy (differentiable, through rsample) and its
# summaries (mean, spread, median) recorded in the history.
_ENTROPY_DRAWS = 256
_SUMMARY_DRAWS = 2048
# Spline domain of the standardised variable u: identity outside [-B, B] (start: N(0, 1)).
_SPLINE_BOUND = 6.0
# The flow's Adam step size when the fitter's lr is "auto" (a Gaussian's is 0.1 in its own
# spread; a flow's weights have no such unit).
FLOW_LR = 3e-3
_INIT_SEED = 0


def _zero_hyper_outputs_(flow: zuko.flows.Flow) -> None:
    # Zero spline parameters are the identity: zero the hyper-networks' last layers (or
    # the free parameters of a 1-D element-wise spline).
    with torch.no_grad():
        for layer in flow.transform.transforms:
            hyper = getattr(layer, "hyper", None)
            if hyper is None:
                for p in layer.parameters():
                    p.zero_()
                continue
            last = [m for m in hyper.modules() if isinstance(getattr(m, "weight", None),
                                                              torch.Tensor)][-1]
            last.weight.zero_()
            last.bias.zero_()


class FlowProposalModule(nn.Module):
    """``u ~ flow``, ``z = mu0 + s0 u``, ``theta = T(z)``; starts as ``N(mu0, s0^2)``.

    Parameters
    ----------
    loc0, scale0 : tensor of shape (k,)
        Mean and standard deviations of ``z`` at the start (fixed standardisation).
    bounds : list of k (low, high) pairs
        Range of each parameter.
    transforms : int
        Spline layers of the flow.
    hidden_features : tuple of int
        Hidden widths of each layer's hyper-network.
    bins : int
        Spline bins.
    """

    default_lr = FLOW_LR
    floors_spread = False

    def __init__(self, loc0: torch.Tensor, scale0: torch.Tensor,
                 bounds: list[tuple[float, float]], transforms: int,
                 hidden_features: tuple[int, ...], bins: int):
        super().__init__()
        k = loc0.shape[0]
        self.bounds = list(bounds)
        self.transform = box_transform(self.bounds)
        self.register_buffer("loc0", loc0.clone())
        self.register_buffer("scale0", scale0.clone())
        # The layers start as the identity whatever their hidden weights; drawing those
        # from a fixed seed makes the module a function of its arguments, so fits with one
        # random_state repeat (the global generator's state differs from call to call).
        with torch_seeded(_INIT_SEED):
            self.flow = zuko.flows.MAF(
                k, transforms=transforms, hidden_features=hidden_features,
                univariate=partial(MonotonicRQSTransform, bound=_SPLINE_BOUND),
                shapes=[(bins,), (bins,), (bins - 1,)])
        _zero_hyper_outputs_(self.flow)
        self.double()

    @property
    def n_parameters(self) -> int:
        """Dimension ``k`` of theta."""
        return self.loc0.shape[0]

    # ------------------------------------------------------- distribution
    def to_unconstrained(self, theta: torch.Tensor) -> torch.Tensor:
        """``z = T^{-1}(theta)``; NaN or inf outside the bounds."""
        return self.transform.inv(theta)

    def log_prob(self, theta: torch.Tensor) -> torch.Tensor:
        """``log q(theta)`` for each row of ``theta`` (n, k), shape (n,); ``-inf`` outside."""
        z, finite, log_slope = unconstrained_in_box(self.transform, theta)
        u = (z - self.loc0) / self.scale0
        lp = self.flow().log_prob(u) - self.scale0.log().sum() - log_slope
        return torch.where(finite, lp, torch.full_like(lp, -float("inf")))

    def entropy(self, draws: int = _ENTROPY_DRAWS) -> torch.Tensor:
        """Monte Carlo entropy of ``z`` (differentiable through ``rsample``).

        Draws from torch's global generator (seeded by the fit).
        """
        _, log_q = self.flow().rsample_and_log_prob((draws,))
        return -log_q.mean() + self.scale0.log().sum()

    @torch.no_grad()
    def sample(self, n: int, rng: np.random.Generator, *, antithetic: bool = False
               ) -> torch.Tensor:
        """``n`` draws of theta, shape (n, k), from the numpy generator ``rng``.

        With ``antithetic`` the second half pushes the first half's base draws, negated,
        through the flow (``n`` must be even); each row is still distributed as ``q``.
        """
        if antithetic and n % 2:
            raise ValueError(f"antithetic sampling needs an even n_samples, got {n}.")
        m = n // 2 if antithetic else n
        eps = rng.standard_normal((m, self.n_parameters))
        if antithetic:
            eps = np.concatenate([eps, -eps])
        u = self.flow().transform.inv(torch.as_tensor(eps, dtype=self.loc0.dtype))
        return self.transform(self.loc0 + self.scale0 * u)

    # ------------------------------------------------ summaries (history)
    @torch.no_grad()
    def _z_draws(self) -> torch.Tensor:
        # A fixed generator: the summaries of one flow do not fluctuate between calls.
        eps = np.random.default_rng(0).standard_normal((_SUMMARY_DRAWS, self.n_parameters))
        u = self.flow().transform.inv(torch.as_tensor(eps, dtype=self.loc0.dtype))
        return self.loc0 + self.scale0 * u

    def loc(self) -> torch.Tensor:
        """Mean of ``z`` (Monte Carlo), shape (k,)."""
        return self._z_draws().mean(0)

    def spread(self) -> torch.Tensor:
        """Standard deviations of ``z`` (Monte Carlo), shape (k,)."""
        return self._z_draws().std(0)

    def log_scale(self) -> torch.Tensor:
        """``log`` of :meth:`spread`."""
        return self.spread().log()

    @torch.no_grad()
    def median(self) -> torch.Tensor:
        """The componentwise median of theta (Monte Carlo), shape (k,)."""
        return self.transform(self._z_draws()).median(0).values

    def tighten_toward_(self, floor, fraction) -> FlowProposalModule:
        """No tightening: a flow describes a distribution (see :meth:`floor_spread_`)."""
        return self

    def floor_spread_(self, floor, previous_log_scale) -> FlowProposalModule:
        """No floor: a flow describes a distribution, not a point estimate's spread."""
        return self


class FlowProposal(Proposal):
    """Normalizing-flow proposal ``q_psi(theta)`` that starts as ``N(loc, scale^2)``.

    A zuko neural spline flow over the standardised unconstrained variable (see
    :mod:`sktilt.avo._flow`), trained by the same score-function gradients as
    :class:`GaussianProposal`. It represents several equally good parameter values
    (sign symmetries, ridges) and, with ``gamma=0``, a **source distribution**: when each
    observation comes from its own ``theta`` drawn from a population, the fit recovers
    that population; ``gamma < 0`` gives the most entropic source consistent with the
    data. There is no floor on its spread (no ``min_scale``: there is no point estimate
    to protect).

    Parameters
    ----------
    loc : array-like of shape (k,)
        Starting medians, in the parameters' own units; strictly inside ``bounds``.
    scale : array-like of shape (k,)
        Starting spreads, in the parameters' own units.
    bounds : None, "positive" or sequence of k (low, high) pairs, default=None
        Range of each parameter (as for :class:`GaussianProposal`).
    transforms : int, default=3
        Spline layers.
    hidden_layer_sizes : tuple of int, default=(32, 32)
        Hidden widths of each layer's hyper-network (unused for ``k = 1``).
    bins : int, default=8
        Spline bins.
    lr : float or "auto", default="auto"
        Adam step size of the fit's updates of the flow's weights; ``"auto"`` is 3e-3.
        Decays to ``0.3 lr`` with a cosine schedule.
    {optimisation}
    hidden_features : tuple of int
        .. deprecated:: 0.2
           Use ``hidden_layer_sizes``; removed in 0.3.

    Examples
    --------
    >>> from sktilt import FlowProposal
    >>> q = FlowProposal(loc=[0.0], scale=[1.0])
    >>> q.sample(4, random_state=0).shape
    (4, 1)
    """

    _parameter_constraints: dict = {
        "loc": ["array-like", Real],
        "scale": ["array-like", Real],
        "bounds": [None, StrOptions({"positive"}), list, tuple],
        "transforms": [Interval(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": [tuple, list],
        "bins": [Interval(Integral, 2, None, closed="left")],
        **OPTIMISATION_CONSTRAINTS,
        "hidden_features": [tuple, list, Hidden(StrOptions({DEPRECATED}))],
    }

    __doc__ = __doc__.replace("{optimisation}", OPTIMISATION_DOC)

    def __init__(self, loc: ArrayLike = 0.0, scale: ArrayLike = 1.0, *,
                 bounds: Bounds = None,
                 transforms: int = 3, hidden_layer_sizes: Sequence[int] = (32, 32),
                 bins: int = 8, lr: float | Literal["auto"] = "auto",
                 baseline: Literal["optimal", "mean"] | None = "optimal",
                 averaging: float = 0.25, callbacks: list | None = None,
                 hidden_features: Sequence[int] | Literal["deprecated"] = DEPRECATED) -> None:
        self.loc = loc
        self.scale = scale
        self.bounds = bounds
        self.transforms = transforms
        self.hidden_layer_sizes = hidden_layer_sizes
        self.bins = bins
        self.lr = lr
        self.baseline = baseline
        self.averaging = averaging
        self.callbacks = callbacks
        self.hidden_features = hidden_features

    def build(self) -> FlowProposalModule:
        """Validate the parameters; build the identity-initialised module (float64)."""
        self._validate_params()
        loc, bounds = check_loc_and_bounds(self.loc, self.bounds)
        k = loc.shape[0]
        scale = np.asarray(self.scale, dtype=float)
        scale = np.broadcast_to(np.atleast_1d(scale), (k,)) if scale.size == 1 else scale
        if scale.shape != (k,) or not np.all((scale > 0) & np.isfinite(scale)):
            raise ValueError(f"scale must be positive and finite of shape ({k},) like loc, "
                             f"got {self.scale!r}.")
        hidden = check_hidden_units(renamed(self, "hidden_layer_sizes", "hidden_features"),
                                    "hidden_layer_sizes")
        transform = box_transform(bounds)
        with torch.no_grad():
            mu = transform.inv(torch.as_tensor(loc))
            s = torch.as_tensor(np.array(scale)) / _slopes(transform, mu)
        return FlowProposalModule(mu, s, bounds, int(self.transforms), hidden, int(self.bins))

    def median(self) -> np.ndarray:
        """The componentwise median of theta (Monte Carlo), shape (k,)."""
        return to_numpy(self._module().median())

    def entropy(self) -> float:
        """Entropy of the unconstrained variable (Monte Carlo, 2048 fixed draws)."""
        with torch.no_grad(), torch.random.fork_rng():
            torch.manual_seed(0)
            return float(self._module().entropy(_SUMMARY_DRAWS))
