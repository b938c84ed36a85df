"""Proposal distributions ``q_psi(theta)`` over simulator parameters, as torch modules.

AVO (Louppe & Cranmer, Eq. 9-15) replaces the simulator parameters ``theta`` by a
distribution ``q_psi(theta)`` and optimises ``psi`` with score-function gradients. A
proposal here comes in two parts:

* a **spec** (:class:`GaussianProposal`), a scikit-learn-style object (``get_params``,
  ``clone``, grid search) whose :meth:`~Proposal.build` makes
* a **module** (:class:`~sktilt.avo._gaussian.GaussianProposalModule`), a ``torch.nn.Module``
  holding ``psi``
  with ``sample``, ``log_prob`` (differentiable in ``psi``) and ``entropy``. Per-sample
  scores come from autograd (:func:`sktilt.gradients.per_sample_scores`) and updates
  from ``torch.optim``.

The Gaussian lives on an *unconstrained* variable ``z``, mapped to ``theta = T(z)`` by a
fixed elementwise bijection ``T`` that keeps bounded parameters in range (identity for
unbounded ones, :func:`~sktilt.avo._gaussian.box_transform`). ``T`` does not depend on ``psi``, so
the score of ``theta`` is the score of ``z``.
"""

from __future__ import annotations

__all__ = ["GaussianProposal", "Proposal", "check_loc_and_bounds", "parse_bounds"]

import math
from abc import ABCMeta, abstractmethod
from numbers import Real
from typing import Literal

import numpy as np
import torch
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, clone
from sklearn.utils._param_validation import Interval, StrOptions
from torch import nn

from .._typing import Bounds
from .._utils import check_n_samples, to_numpy
from ._gaussian import GaussianProposalModule, box_transform


def parse_bounds(bounds, k: int) -> list[tuple[float, float]]:
    """Normalise ``bounds`` to ``k`` pairs ``(low, high)`` with ``+-inf`` for open sides."""
    if bounds is None:
        return [(-math.inf, math.inf)] * k
    if isinstance(bounds, str):
        if bounds != "positive":
            raise ValueError(f"bounds must be None, 'positive' or a sequence of "
                             f"(low, high) pairs, got {bounds!r}.")
        return [(0.0, math.inf)] * k
    bounds = list(bounds)
    if len(bounds) != k:
        raise ValueError(f"bounds has {len(bounds)} entries but the proposal has {k} "
                         f"parameters (the length of loc).")
    out = []
    for i, pair in enumerate(bounds):
        if pair is None:
            out.append((-math.inf, math.inf))
            continue
        low, high = pair
        low = -math.inf if low is None else float(low)
        high = math.inf if high is None else float(high)
        if not low < high:
            raise ValueError(f"bounds[{i}] = {pair!r}: low must be < high.")
        out.append((low, high))
    return out


def check_loc_and_bounds(loc, bounds) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """``loc`` as a finite non-empty 1-D array strictly inside the parsed ``bounds``."""
    values = np.atleast_1d(np.asarray(loc, dtype=float))
    if values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values)):
        raise ValueError(f"loc must be a finite, non-empty 1-D array, got {loc!r}.")
    pairs = parse_bounds(bounds, values.shape[0])
    for i, (low, high) in enumerate(pairs):
        if not low < values[i] < high:
            raise ValueError(f"loc[{i}]={values[i]:g} must lie strictly inside bounds[{i}] "
                             f"= ({low:g}, {high:g}): loc is the parameter's median, in its "
                             "own units.")
    return values, pairs


#: Constraints of the optimisation settings every proposal spec holds.
OPTIMISATION_CONSTRAINTS: dict = {
    "lr": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
    "baseline": [StrOptions({"optimal", "mean"}), None],
    "averaging": [Interval(Real, 0, 1, closed="left")],
    "callbacks": [list, None],
}

#: The docstring entries of those settings (``lr`` is each spec's own).
OPTIMISATION_DOC = """baseline : {"optimal", "mean"} or None, default="optimal"
        Variance reduction of the score-function gradient, see
        :func:`sktilt.gradients.score_function_gradient`.
    averaging : float in [0, 1), default=0.25
        Fraction of the last updates whose ``psi`` are averaged into the fitted
        proposal (Polyak-Ruppert), with weights growing as ``k^3`` over the ``k``-th
        averaged update (polynomial-decay averaging): the start of the window, where
        the location may still be arriving, counts little; 0 keeps the last iterate.
    callbacks : list of skorch callbacks or None, default=None
        Extra callbacks of the proposal's skorch net (one epoch per update; its
        history records ``generator_value`` and ``entropy`` per update)."""


def _slopes(transform, z: torch.Tensor) -> torch.Tensor:
    """``T'(z)`` per coordinate of the elementwise bijection ``T``."""
    return transform.log_abs_det_jacobian(z, transform(z)).exp()


class Proposal(BaseEstimator, metaclass=ABCMeta):
    """Base class of proposal specs: numpy conveniences over the module they build.

    Subclasses implement :meth:`build`. A fitted proposal (``AVOSimulatorFitter.proposal_``)
    holds its module in ``module_``; an unfitted one builds it from its parameters.
    """

    @abstractmethod
    def build(self) -> nn.Module:
        """Validate the parameters and build the torch module ``q_psi``."""

    def fitted(self, module: nn.Module) -> Proposal:
        """A copy of this spec describing the trained ``module`` (held in ``module_``)."""
        new = clone(self)
        new.module_ = module
        return new

    def _module(self):
        module = getattr(self, "module_", None)
        return self.build() if module is None else module

    @property
    def n_parameters(self) -> int:
        """Dimension ``k`` of theta."""
        return self._module().n_parameters

    def sample(self, n_samples: int, random_state=None, *, antithetic: bool = False
               ) -> np.ndarray:
        """Draw ``n_samples`` parameters ``theta ~ q``, shape (n_samples, k).

        Parameters
        ----------
        n_samples : int
        random_state : int, None or numpy Generator
        antithetic : bool, default=False
            Mirrored draws: the second half of the rows uses the first half's standard
            normal noise negated (``n_samples`` must be even); each row is still a draw
            of ``q``.
        """
        rng = (random_state if isinstance(random_state, np.random.Generator)
               else np.random.default_rng(random_state))
        return to_numpy(self._module().sample(check_n_samples(n_samples), rng,
                                              antithetic=antithetic))

    def log_prob(self, theta) -> np.ndarray:
        """``log q(theta)`` for each row of ``theta`` (n, k), shape (n,); ``-inf`` outside."""
        module = self._module()
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        if theta.shape[-1] != module.n_parameters:
            raise ValueError(f"theta has {theta.shape[-1]} columns, expected "
                             f"{module.n_parameters}.")
        with torch.no_grad():
            return to_numpy(module.log_prob(torch.as_tensor(theta, dtype=torch.float64)))

    def entropy(self) -> float:
        """Differential entropy of the proposal's unconstrained variable."""
        with torch.no_grad():
            return float(self._module().entropy())

    def median(self) -> np.ndarray:
        """The componentwise median of theta, shape (k,)."""
        return to_numpy(self._module().median())

    def transform(self, z) -> np.ndarray:
        """Map unconstrained ``z`` (n, k) to parameters ``theta = T(z)``."""
        with torch.no_grad():
            return to_numpy(self._module().transform(torch.as_tensor(z, dtype=torch.float64)))

    def inverse_transform(self, theta) -> np.ndarray:
        """Map parameters ``theta`` (n, k) to the unconstrained ``z = T^{-1}(theta)``."""
        with torch.no_grad():
            return to_numpy(self._module().to_unconstrained(
                torch.as_tensor(theta, dtype=torch.float64)))


class GaussianProposal(Proposal):
    """Gaussian proposal ``q_psi(theta)``, optionally bounded.

    The Gaussian lives on an unconstrained variable ``z ~ N(mu, S)``; the simulator
    parameters are ``theta = T(z)``, with ``T`` chosen per coordinate from ``bounds``:
    the identity (unbounded), ``low + exp(z)``, ``high - exp(-z)``, or
    ``low + (high - low) sigmoid(z)``. ``loc`` and ``scale`` are in the parameters' own
    units: ``loc`` is the median of each marginal of theta (``mu = T^{-1}(loc)``, its mean
    when unbounded), and ``scale`` its spread there (``S = D^{-1} scale^2 D^{-1}`` with
    ``D = T'(mu)``, exact for unbounded coordinates and the local spread otherwise).

    Parameters
    ----------
    loc : array-like of shape (k,)
        The parameters' medians; strictly inside ``bounds``.
    scale : array-like of shape (k,) or (k, k)
        Their standard deviations (shape ``(k,)``) or, with ``covariance="full"``,
        optionally their covariance matrix (shape ``(k, k)``), in the units of theta.
    covariance : {"diag", "full"}, default="diag"
        ``"diag"``: independent coordinates, ``psi = (mu, log s)``. ``"full"``: ``S = L
        L^T`` with ``L = diag(s) C``, ``C`` unit lower-triangular, ``psi = (mu, log s,
        strictly-lower entries of C)``. The off-diagonal coefficients are relative to
        their row's scale, so tightening ``s`` (the entropy) tightens whole rows.
    bounds : None, "positive" or sequence of k (low, high) pairs, default=None
        Range of each parameter; ``None`` entries or sides mean unbounded.
        ``"positive"`` is ``(0, inf)`` for every parameter.
    lr : float or "auto", default="auto"
        Step size of the fit's updates of ``psi``; ``"auto"`` is 0.1. Adam without
        momentum (RMSprop with bias correction) in the proposal's local coordinates
        (the module it builds): locations move by about ``lr``
        *current* standard deviations per update (steps shrink as the proposal
        tightens, as in natural evolution strategies), log-scales by ``lr / 3`` nats.
        Decays to ``0.3 lr`` with a cosine schedule. There is no momentum: the critic
        already lags the proposal by about one update, and momentum on top makes the
        location orbit the optimum.
    {optimisation}
    min_scale : "auto", float, array-like of shape (k,) or None, default="auto"
        Floor on the standard deviations of the unconstrained parameters (the
        log-diagonal of the Cholesky factor for a full covariance): the fitter's
        ``gamma`` tightens the proposal down to it and no further. ``"auto"`` puts it at
        3 standard errors of the observations, estimated along the fit by regressing
        the simulated features on the parameters:
        below the data's resolution the location gradient loses its signal and the
        location freezes. ``None`` lets ``gamma`` collapse the proposal, as in the
        paper. A floor never widens a proposal.

    Notes
    -----
    A fitted proposal (``AVOSimulatorFitter.proposal_``) has ``loc`` and ``scale`` set to
    the fitted values, in the same units (``scale`` becomes the covariance matrix for
    ``covariance="full"``), so its ``get_params`` describes it, and it clones and pickles
    as usual. :meth:`entropy` is the entropy of ``z`` (the Gaussian), which differs from
    that of theta by ``E[log |T'(z)|]`` for bounded coordinates.

    Examples
    --------
    >>> from sktilt import GaussianProposal
    >>> q = GaussianProposal(loc=[0.0, 1.0], scale=[1.0, 0.5])
    >>> q.sample(3, random_state=0).shape
    (3, 2)
    >>> GaussianProposal(loc=[3.0], scale=[1.0], bounds=[(0, 10)]).median()
    array([3.])
    >>> q.build()  # the torch module q_psi the fit trains
    GaussianProposalModule()
    """

    _parameter_constraints: dict = {
        "loc": ["array-like", Real],
        "scale": ["array-like", Real],
        "covariance": [StrOptions({"diag", "full"})],
        "bounds": [None, StrOptions({"positive"}), list, tuple],
        **OPTIMISATION_CONSTRAINTS,
        "min_scale": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither"),
                      "array-like", None],
    }

    def __init__(self, loc: ArrayLike = 0.0, scale: ArrayLike = 1.0, *,
                 covariance: Literal["diag", "full"] = "diag",
                 bounds: Bounds = None, lr: float | Literal["auto"] = "auto",
                 baseline: Literal["optimal", "mean"] | None = "optimal",
                 averaging: float = 0.25, callbacks: list | None = None,
                 min_scale: float | ArrayLike | Literal["auto"] | None = "auto",
                 ) -> None:
        self.loc = loc
        self.scale = scale
        self.covariance = covariance
        self.bounds = bounds
        self.lr = lr
        self.baseline = baseline
        self.averaging = averaging
        self.callbacks = callbacks
        self.min_scale = min_scale

    __doc__ = __doc__.replace("{optimisation}", OPTIMISATION_DOC)

    def build(self) -> GaussianProposalModule:
        """Validate ``loc``, ``scale``, ``covariance``, ``bounds``; build the module (float64)."""
        self._validate_params()
        loc, bounds = check_loc_and_bounds(self.loc, self.bounds)
        k = loc.shape[0]
        transform = box_transform(bounds)
        with torch.no_grad():
            mu = transform.inv(torch.as_tensor(loc))
            slope = _slopes(transform, mu)
        # D^{-1} L_theta: S_z = D^-1 S_theta D^-1
        L = torch.as_tensor(self._scale_tril(k)) / slope[:, None]
        return GaussianProposalModule(mu, L, self.covariance == "full", bounds)

    def _scale_tril(self, k: int) -> np.ndarray:
        scale = np.asarray(self.scale, dtype=float)
        if scale.ndim == 2:
            if self.covariance != "full":
                raise ValueError("A 2-D scale (covariance matrix) needs covariance='full'.")
            if scale.shape != (k, k):
                raise ValueError(f"scale has shape {scale.shape}, expected ({k}, {k}).")
            try:
                return np.linalg.cholesky(0.5 * (scale + scale.T))
            except np.linalg.LinAlgError as exc:
                raise ValueError("scale (covariance) must be symmetric positive "
                                 "definite.") from exc
        scale = np.broadcast_to(np.atleast_1d(scale), (k,)) if scale.size == 1 else scale
        if scale.shape != (k,):
            raise ValueError(f"scale has shape {scale.shape}, expected ({k},) like loc.")
        if not np.all((scale > 0) & np.isfinite(scale)):
            raise ValueError(f"scale must be positive and finite, got {self.scale!r}.")
        return np.diag(scale)

    def fitted(self, module: GaussianProposalModule) -> GaussianProposal:
        """A copy of this spec whose ``loc`` and ``scale`` describe the trained ``module``."""
        with torch.no_grad():
            mu = module.loc()
            slope = to_numpy(_slopes(module.transform, mu))
            loc = to_numpy(module.transform(mu))
            L = slope[:, None] * to_numpy(module.scale_tril())
        scale = L @ L.T if self.covariance == "full" else np.sqrt((L**2).sum(1))
        return clone(self).set_params(loc=loc, scale=scale)

    def covariance_matrix(self) -> np.ndarray:
        """Covariance ``S = L L^T`` of the Gaussian variable ``z``, shape (k, k).

        (For unbounded coordinates it is the covariance of theta.)
        """
        with torch.no_grad():
            L = to_numpy(self._module().scale_tril())
        return L @ L.T
