"""The Gaussian proposal module: ``z ~ N(loc, S)``, ``theta = T(z)`` with a box bijection ``T``.

:class:`GaussianProposalModule` is what :meth:`sktilt.GaussianProposal.build` makes: a
torch module holding ``psi`` in local coordinates (see its docstring), with ``sample``,
``log_prob`` differentiable in ``psi`` and a closed-form ``entropy``.
"""

from __future__ import annotations

__all__ = ["GaussianProposalModule", "box_transform", "unconstrained_in_box"]

import math

import numpy as np
import torch
from torch import nn
from torch.distributions import transforms as T

_LOG_2PI = math.log(2.0 * math.pi)
# Log-scales and the relative off-diagonal coefficients move at a third of the
# locations' pace (in their units, see GaussianProposalModule): the proposal then
# shrinks slowly enough for its location to keep up, avoiding the premature convergence
# of evolution strategies whose spread collapses before they arrive.
_SHAPE_STEP = 1.0 / 3.0


def box_transform(bounds: list[tuple[float, float]]) -> T.Transform:
    """The bijection ``theta = T(z)`` from ``R^k`` onto the box given by ``bounds``.

    Per coordinate: identity (unbounded), ``low + exp(z)``, ``high - exp(-z)``, or
    ``low + (high - low) sigmoid(z)``; ``log_abs_det_jacobian`` is per coordinate.
    """
    parts = []
    for low, high in bounds:
        if math.isfinite(low) and math.isfinite(high):
            parts.append(T.ComposeTransform([T.SigmoidTransform(),
                                             T.AffineTransform(low, high - low)]))
        elif math.isfinite(low):
            parts.append(T.ComposeTransform([T.ExpTransform(), T.AffineTransform(low, 1.0)]))
        elif math.isfinite(high):
            parts.append(T.ComposeTransform([T.AffineTransform(0.0, -1.0), T.ExpTransform(),
                                             T.AffineTransform(high, -1.0)]))
        else:
            parts.append(T.identity_transform)
    return T.StackTransform(parts, dim=-1)


def unconstrained_in_box(transform: T.Transform, theta: torch.Tensor):
    """``z = T^{-1}(theta)`` for a density's change of variables, rows outside masked.

    Returns ``z`` of shape (n, k) (zeros on rows outside the box, so that no NaN reaches
    a gradient), ``finite`` of shape (n,) (whether the row is inside) and
    ``log |det T'(z)|`` of shape (n,).
    """
    z = transform.inv(theta)
    finite = torch.isfinite(z).all(-1)
    z = torch.where(finite[:, None], z, torch.zeros_like(z))
    return z, finite, transform.log_abs_det_jacobian(z, transform(z)).sum(-1)


class GaussianProposalModule(nn.Module):
    """``q_psi(theta)``: ``z ~ N(loc, S)``, ``theta = T(z)``, ``S = L L^T``.

    ``L = diag(s) C`` with ``C`` unit lower-triangular (the identity for a diagonal
    covariance), so ``psi = (loc, log s[, strictly-lower entries of C])``.

    The trainable parameters are *local coordinates* around an anchor (buffers):
    ``loc = anchor + unit * step`` with ``unit`` the current standard deviations of
    ``z``, and ``log s``, ``C`` moving by ``_SHAPE_STEP`` per unit step. A step of any
    ``torch.optim`` optimiser is then measured in the proposal's own spread (as in
    natural evolution strategies): one learning rate suits parameters of any scale, and
    location steps shrink as the proposal tightens, so late iterates settle.
    :meth:`recentre_` moves the anchor to the current value before each update.

    Parameters
    ----------
    loc : tensor of shape (k,)
        Mean of ``z``.
    scale_tril : tensor of shape (k, k)
        Lower Cholesky factor ``L`` of the covariance of ``z``.
    full : bool
        Whether ``C`` is learnt (full covariance) or fixed to the identity.
    bounds : list of k (low, high) pairs
        Range of each parameter (:func:`box_transform`).
    """

    # The fitter's lr="auto": steps of 0.1 current standard deviations.
    default_lr = 0.1
    # Whether min_scale applies: a point estimate's spread, floored at the resolution.
    floors_spread = True

    def __init__(self, loc: torch.Tensor, scale_tril: torch.Tensor, full: bool,
                 bounds: list[tuple[float, float]]):
        super().__init__()
        k = loc.shape[0]
        self.full, self.bounds = bool(full), list(bounds)
        self.transform = box_transform(self.bounds)
        self.register_buffer("tril_rows", torch.tril_indices(k, k, -1)[0])
        self.register_buffer("tril_cols", torch.tril_indices(k, k, -1)[1])
        diag = torch.diagonal(scale_tril)
        self.register_buffer("loc_anchor", loc.clone())
        self.register_buffer("log_scale_anchor", diag.log())
        self.register_buffer("tril_anchor", (scale_tril / diag[:, None])[
            self.tril_rows, self.tril_cols] if full else torch.zeros(0, dtype=loc.dtype))
        self.register_buffer("loc_unit", torch.ones_like(loc))
        self.loc_step = nn.Parameter(torch.zeros_like(loc))
        self.log_scale_step = nn.Parameter(torch.zeros_like(loc))
        self.tril_step = nn.Parameter(torch.zeros_like(self.tril_anchor))
        self.recentre_()

    @property
    def n_parameters(self) -> int:
        """Dimension ``k`` of theta."""
        return self.loc_anchor.shape[0]

    # ------------------------------------------------------------- psi
    def loc(self) -> torch.Tensor:
        """Mean of ``z``, shape (k,)."""
        return self.loc_anchor + self.loc_unit * self.loc_step

    def log_scale(self) -> torch.Tensor:
        """``log s``, the log-diagonal of ``L``, shape (k,)."""
        return self.log_scale_anchor + _SHAPE_STEP * self.log_scale_step

    def scale_tril(self) -> torch.Tensor:
        """``L = diag(s) C``, shape (k, k)."""
        k = self.n_parameters
        C = torch.eye(k, dtype=self.loc_anchor.dtype, device=self.loc_anchor.device)
        if self.full:
            C = C.index_put((self.tril_rows, self.tril_cols),
                            self.tril_anchor + _SHAPE_STEP * self.tril_step)
        return self.log_scale().exp()[:, None] * C

    def spread(self) -> torch.Tensor:
        """Standard deviations of ``z``, shape (k,)."""
        L = self.scale_tril()
        return (L**2).sum(1).sqrt()

    @torch.no_grad()
    def recentre_(self) -> GaussianProposalModule:
        """Move the anchor to the current ``psi`` (steps back to 0, units to the spread)."""
        loc, log_scale = self.loc(), self.log_scale()
        self.tril_anchor.add_(_SHAPE_STEP * self.tril_step)
        self.loc_anchor.copy_(loc)
        self.log_scale_anchor.copy_(log_scale)
        for p in (self.loc_step, self.log_scale_step, self.tril_step):
            p.zero_()
        self.loc_unit.copy_(self.spread())
        return self

    @torch.no_grad()
    def move_location_(self, shift: torch.Tensor) -> GaussianProposalModule:
        """Recentre, then add ``shift`` (shape (k,), units of ``z``) to the location."""
        self.recentre_()
        self.loc_anchor.add_(shift)
        return self

    @torch.no_grad()
    def floor_spread_(self, floor: np.ndarray | None, previous_log_scale: torch.Tensor
                      ) -> GaussianProposalModule:
        """Keep ``log s`` at or above ``min(previous, log(floor))``, then recentre.

        ``floor`` of shape (k,) or None (no floor). A coordinate already below its floor
        may not shrink further but is not widened either; an infinite floor freezes it.
        """
        self.recentre_()
        if floor is not None:
            log_floor = torch.as_tensor(np.log(np.asarray(floor, dtype=float)),
                                        dtype=self.log_scale_anchor.dtype)
            bound = torch.minimum(previous_log_scale, log_floor)
            self.log_scale_anchor.copy_(torch.maximum(self.log_scale_anchor, bound))
            self.loc_unit.copy_(self.spread())
        return self

    @torch.no_grad()
    def tighten_toward_(self, floor: np.ndarray, fraction: float) -> GaussianProposalModule:
        """Close ``fraction`` of the log-gap between each spread and its (finite) floor.

        Coordinates already at or below their floor, or with an infinite floor, are
        left alone; the proposal is recentred.
        """
        self.recentre_()
        log_floor = torch.as_tensor(np.log(np.asarray(floor, dtype=float)),
                                    dtype=self.log_scale_anchor.dtype)
        gap = torch.where(torch.isfinite(log_floor),
                          (self.log_scale_anchor - log_floor).clamp(min=0.0),
                          torch.zeros_like(log_floor))
        self.log_scale_anchor.sub_(float(fraction) * gap)
        self.loc_unit.copy_(self.spread())
        return self

    # ------------------------------------------------------- distribution
    def to_unconstrained(self, theta: torch.Tensor) -> torch.Tensor:
        """``z = T^{-1}(theta)``; NaN or inf outside the bounds."""
        return self.transform.inv(theta)

    def log_prob(self, theta: torch.Tensor) -> torch.Tensor:
        """``log q(theta)`` for each row of ``theta`` (n, k), shape (n,); ``-inf`` outside."""
        z, finite, log_slope = unconstrained_in_box(self.transform, theta)
        L = self.scale_tril()
        e = torch.linalg.solve_triangular(L, (z - self.loc()).unsqueeze(-1),
                                          upper=False).squeeze(-1)
        lp = (-0.5 * (e**2).sum(-1) - self.log_scale().sum()
              - 0.5 * self.n_parameters * _LOG_2PI - log_slope)
        return torch.where(finite, lp, torch.full_like(lp, -math.inf))

    def entropy(self) -> torch.Tensor:
        """Differential entropy of the Gaussian variable ``z`` (closed form, differentiable)."""
        return 0.5 * self.n_parameters * (1.0 + _LOG_2PI) + self.log_scale().sum()

    @torch.no_grad()
    def sample(self, n: int, rng: np.random.Generator, *, antithetic: bool = False
               ) -> torch.Tensor:
        """``n`` draws of theta, shape (n, k), from the numpy generator ``rng``.

        With ``antithetic`` the second half of the rows is ``T(loc - L eps)`` for the
        first half's ``T(loc + L eps)`` (``n`` must be even); each row is still
        distributed as ``q``.
        """
        if antithetic and n % 2:
            raise ValueError(f"antithetic sampling needs an even n_samples, got {n}.")
        m = n // 2 if antithetic else n
        eps = rng.standard_normal((m, self.n_parameters))
        if antithetic:
            eps = np.concatenate([eps, -eps])
        eps = torch.as_tensor(eps, dtype=self.loc_anchor.dtype)
        return self.transform(self.loc() + eps @ self.scale_tril().T)

    @torch.no_grad()
    def median(self) -> torch.Tensor:
        """``T(loc)``: the componentwise median of theta (its mean when unbounded)."""
        return self.transform(self.loc())
