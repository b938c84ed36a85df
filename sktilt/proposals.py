"""Proposal distributions over simulator parameters, with closed-form scores.

AVO (Louppe & Cranmer, Eq. 9-15) replaces the simulator parameters ``theta`` by a
distribution ``q_psi(theta)`` and optimises ``psi`` with score-function gradients, so
a proposal must provide ``sample``, ``log_prob``, the per-sample score
``grad_psi log q_psi(theta)`` and the entropy ``H(q_psi)`` with its gradient. All of
them are closed-form numpy here.

:class:`GaussianProposal` is a Gaussian over an *unconstrained* variable ``z``,
mapped to ``theta = T(z)`` by a fixed, elementwise bijection ``T`` that keeps bounded
parameters in range (identity for unbounded ones). ``T`` does not depend on ``psi``,
so the score of ``theta`` equals the score of ``z``.
"""

from __future__ import annotations

__all__ = ["GaussianProposal"]

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state

_LOG_2PI = np.log(2.0 * np.pi)


def _parse_bounds(bounds, k: int) -> list[tuple[float, float]]:
    """Normalise ``bounds`` to ``k`` pairs ``(low, high)`` with ``+-inf`` for open sides."""
    if bounds is None:
        return [(-np.inf, np.inf)] * k
    if isinstance(bounds, str):
        if bounds != "positive":
            raise ValueError(f"bounds must be None, 'positive' or a sequence of "
                             f"(low, high) pairs, got {bounds!r}.")
        return [(0.0, np.inf)] * k
    bounds = list(bounds)
    if len(bounds) != k:
        raise ValueError(f"bounds has {len(bounds)} entries but the proposal has {k} "
                         f"parameters (the length of loc).")
    out = []
    for i, pair in enumerate(bounds):
        if pair is None:
            out.append((-np.inf, np.inf))
            continue
        low, high = pair
        low = -np.inf if low is None else float(low)
        high = np.inf if high is None else float(high)
        if not low < high:
            raise ValueError(f"bounds[{i}] = {pair!r}: low must be < high.")
        out.append((low, high))
    return out


class GaussianProposal(BaseEstimator):
    """Gaussian proposal ``q_psi(theta)`` with closed-form score and entropy.

    The Gaussian lives on an unconstrained variable ``z ~ N(loc, S)``; the simulator
    parameters are ``theta = T(z)``, with ``T`` chosen per coordinate from ``bounds``:

    ============================  =================================  ================
    bounds                        ``theta = T(z)``                   ``loc`` is
    ============================  =================================  ================
    ``(-inf, inf)`` (default)     ``z``                              the mean of theta
    ``(low, inf)``                ``low + exp(z)``                   ``log(theta - low)``
    ``(-inf, high)``              ``high - exp(-z)``                 ``-log(high - theta)``
    ``(low, high)``               ``low + (high - low) sigmoid(z)``  ``logit`` of theta
    ============================  =================================  ================

    ``T`` is monotone, so ``T(loc)`` is the median of each marginal of theta (and its
    mean and mode when the coordinate is unbounded): see :meth:`median`.

    Parameters
    ----------
    loc : array-like of shape (k,)
        Mean of the Gaussian variable ``z`` (unconstrained space, see above).
    scale : array-like of shape (k,) or (k, k)
        Standard deviations of ``z`` (shape ``(k,)``), or, with
        ``covariance="full"``, optionally its covariance matrix (shape ``(k, k)``).
    covariance : {"diag", "full"}, default="diag"
        ``"diag"``: ``psi = (loc, log scale)``, ``2k`` numbers.
        ``"full"``: ``S = L L^T`` (Cholesky) with ``L = diag(s) C``, ``C`` unit
        lower-triangular; ``psi = (loc, log s, strictly-lower entries of C)``,
        ``2k + k(k-1)/2`` numbers. The off-diagonal coefficients are relative to
        their row's scale, so tightening ``s`` (the entropy) tightens whole rows.
    bounds : None, "positive" or sequence of k (low, high) pairs, default=None
        Range of each parameter; ``None`` entries or sides mean unbounded.
        ``"positive"`` is ``(0, inf)`` for every parameter.

    Notes
    -----
    :meth:`set_flat_params` writes the new ``psi`` back into ``loc`` and ``scale``
    (``scale`` becomes the covariance matrix for ``covariance="full"``), so a fitted
    proposal's ``get_params`` describes it, and it clones and pickles as usual.
    :meth:`entropy` is the entropy of ``z`` (the Gaussian), which differs from that
    of ``theta`` by ``E[log |T'(z)|]`` for bounded coordinates.

    Examples
    --------
    >>> from sktilt import GaussianProposal
    >>> q = GaussianProposal(loc=[0.0, 1.0], scale=[1.0, 0.5])
    >>> q.sample(3, random_state=0).shape
    (3, 2)
    >>> q.score(q.sample(5, random_state=0)).shape  # d log q / d psi per sample
    (5, 4)
    """

    def __init__(self, loc=0.0, scale=1.0, *, covariance="diag", bounds=None):
        self.loc = loc
        self.scale = scale
        self.covariance = covariance
        self.bounds = bounds

    # ------------------------------------------------------------------ validation
    def _state(self):
        """Validated ``(mu (k,), L (k, k) lower-triangular, bounds)``."""
        if self.covariance not in ("diag", "full"):
            raise ValueError(f"covariance must be 'diag' or 'full', got {self.covariance!r}.")
        mu = np.atleast_1d(np.asarray(self.loc, dtype=float))
        if mu.ndim != 1 or not np.all(np.isfinite(mu)):
            raise ValueError(f"loc must be a finite 1-D array, got {self.loc!r}.")
        k = mu.shape[0]
        scale = np.asarray(self.scale, dtype=float)
        if scale.ndim == 2:
            if self.covariance != "full":
                raise ValueError("A 2-D scale (covariance matrix) needs covariance='full'.")
            if scale.shape != (k, k):
                raise ValueError(f"scale has shape {scale.shape}, expected ({k}, {k}).")
            try:
                L = np.linalg.cholesky(0.5 * (scale + scale.T))
            except np.linalg.LinAlgError as exc:
                raise ValueError("scale (covariance) must be symmetric positive "
                                 "definite.") from exc
        else:
            scale = np.broadcast_to(np.atleast_1d(scale), (k,)) if scale.size == 1 else scale
            if scale.shape != (k,):
                raise ValueError(f"scale has shape {scale.shape}, expected ({k},) like loc.")
            if not np.all((scale > 0) & np.isfinite(scale)):
                raise ValueError(f"scale must be positive and finite, got {self.scale!r}.")
            L = np.diag(scale)
        return mu, L, _parse_bounds(self.bounds, k)

    @property
    def n_parameters(self) -> int:
        """Dimension ``k`` of theta."""
        return int(np.atleast_1d(np.asarray(self.loc)).shape[0])

    # ------------------------------------------------------------ the bijection T
    def transform(self, z):
        """Map unconstrained ``z`` (n, k) to parameters ``theta = T(z)``."""
        z = np.asarray(z, dtype=float)
        theta = z.copy()
        for i, (low, high) in enumerate(self._state()[2]):
            zi = z[..., i]
            if np.isfinite(low) and np.isfinite(high):
                theta[..., i] = low + (high - low) / (1.0 + np.exp(-zi))
            elif np.isfinite(low):
                theta[..., i] = low + np.exp(zi)
            elif np.isfinite(high):
                theta[..., i] = high - np.exp(-zi)
        return theta

    def inverse_transform(self, theta):
        """Map parameters ``theta`` (n, k) to the unconstrained ``z = T^{-1}(theta)``."""
        theta = np.asarray(theta, dtype=float)
        z = theta.copy()
        for i, (low, high) in enumerate(self._state()[2]):
            ti = theta[..., i]
            with np.errstate(divide="ignore", invalid="ignore"):
                if np.isfinite(low) and np.isfinite(high):
                    u = (ti - low) / (high - low)
                    z[..., i] = np.log(u) - np.log1p(-u)
                elif np.isfinite(low):
                    z[..., i] = np.log(ti - low)
                elif np.isfinite(high):
                    z[..., i] = -np.log(high - ti)
        return z

    def _log_abs_det_jacobian(self, z):
        """``log |dT/dz|`` summed over coordinates, shape (n,)."""
        out = np.zeros(z.shape[:-1])
        for i, (low, high) in enumerate(self._state()[2]):
            zi = z[..., i]
            if np.isfinite(low) and np.isfinite(high):
                # log sigmoid(z) + log sigmoid(-z), written to avoid overflow.
                out += np.log(high - low) - np.logaddexp(0, -zi) - np.logaddexp(0, zi)
            elif np.isfinite(low):
                out += zi
            elif np.isfinite(high):
                out += -zi
        return out

    # --------------------------------------------------------------- distribution
    def sample(self, n_samples: int, random_state=None, *, antithetic: bool = False):
        """Draw ``n_samples`` parameters ``theta ~ q``, shape (n_samples, k).

        Parameters
        ----------
        n_samples : int
        random_state : int, None, RandomState or numpy Generator
        antithetic : bool, default=False
            Mirrored sampling: the second half of the rows is ``T(loc - L eps)`` for
            the first half's ``T(loc + L eps)`` (``n_samples`` must be even). Each row
            is still distributed as ``q``.
        """
        mu, L, _ = self._state()
        n, k = int(n_samples), mu.shape[0]
        if antithetic and n % 2:
            raise ValueError(f"antithetic sampling needs an even n_samples, got {n}.")
        m = n // 2 if antithetic else n
        if isinstance(random_state, np.random.Generator):
            eps = random_state.standard_normal((m, k))
        else:
            eps = check_random_state(random_state).standard_normal((m, k))
        if antithetic:
            eps = np.concatenate([eps, -eps])
        return self.transform(mu + eps @ L.T)

    def _whiten(self, theta):
        mu, L, _ = self._state()
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        if theta.shape[-1] != mu.shape[0]:
            raise ValueError(f"theta has {theta.shape[-1]} columns, expected {mu.shape[0]}.")
        z = self.inverse_transform(theta)
        # e = L^{-1} (z - mu), one row per sample.
        e = np.linalg.solve(L, (z - mu).T).T
        return z, e, L

    def log_prob(self, theta):
        """``log q(theta)`` for each row of ``theta`` (n, k), shape (n,).

        ``-inf`` outside the bounds.
        """
        z, e, L = self._whiten(theta)
        k = L.shape[0]
        with np.errstate(invalid="ignore"):
            lp = (-0.5 * np.sum(e**2, axis=1) - np.sum(np.log(np.diag(L)))
                  - 0.5 * k * _LOG_2PI - self._log_abs_det_jacobian(z))
        return np.where(np.all(np.isfinite(z), axis=1), lp, -np.inf)

    def entropy(self) -> float:
        """Differential entropy of the Gaussian variable ``z`` (closed form)."""
        _, L, _ = self._state()
        k = L.shape[0]
        return float(0.5 * k * (1.0 + _LOG_2PI) + np.sum(np.log(np.diag(L))))

    def median(self):
        """``T(loc)``: the componentwise median of theta (its mean when unbounded)."""
        mu, _, _ = self._state()
        return self.transform(mu[None, :])[0]

    def covariance_matrix(self):
        """Covariance ``S = L L^T`` of the Gaussian variable ``z``, shape (k, k)."""
        _, L, _ = self._state()
        return L @ L.T

    # ------------------------------------------------------------ psi and scores
    def _tril(self, k: int):
        return np.tril_indices(k, -1)

    def get_flat_params(self):
        """The variational parameters ``psi`` as a flat vector (see ``covariance``)."""
        mu, L, _ = self._state()
        parts = [mu, np.log(np.diag(L))]
        if self.covariance == "full":
            parts.append((L / np.diag(L)[:, None])[self._tril(mu.shape[0])])
        return np.concatenate(parts)

    def set_flat_params(self, psi) -> "GaussianProposal":
        """Set ``psi`` (inverse of :meth:`get_flat_params`); updates ``loc`` and ``scale``."""
        psi = np.asarray(psi, dtype=float)
        k = self.n_parameters
        n_expected = 2 * k + (k * (k - 1) // 2 if self.covariance == "full" else 0)
        if psi.shape != (n_expected,) or not np.all(np.isfinite(psi)):
            raise ValueError(f"psi must be a finite vector of length {n_expected}, "
                             f"got shape {psi.shape}.")
        self.loc = psi[:k].copy()
        if self.covariance == "full":
            C = np.eye(k)
            C[self._tril(k)] = psi[2 * k:]
            L = np.exp(psi[k:2 * k])[:, None] * C
            self.scale = L @ L.T
        else:
            self.scale = np.exp(psi[k:2 * k])
        return self

    def flat_params_scale(self):
        """A natural unit for each entry of ``psi``, for scale-free optimisers.

        ``loc[i]`` is measured in units of the current standard deviation of
        ``z_i``; log-scales and the (relative) off-diagonal coefficients are
        dimensionless (1).
        """
        mu, L, _ = self._state()
        k = mu.shape[0]
        sd = np.sqrt(np.diag(L @ L.T))
        parts = [sd, np.ones(k)]
        if self.covariance == "full":
            parts.append(np.ones(k * (k - 1) // 2))
        return np.concatenate(parts)

    def score(self, theta):
        """Score ``grad_psi log q_psi(theta)`` for each row, shape (n, len(psi)).

        Closed form: with ``r = z - loc``, ``e = L^{-1} r`` and ``a = L^{-T} e``,
        ``d/d loc = a``, ``d/d L = tril(a e^T) - diag(1/L_ii)``; through
        ``L = diag(s) C``: ``d/d log s_i = a_i r_i - 1`` and
        ``d/d C_ij = s_i a_i e_j``. The bijection does not depend on ``psi``.
        """
        z, e, L = self._whiten(theta)
        k = L.shape[0]
        a = np.linalg.solve(L.T, e.T).T
        r = z - self._state()[0]
        parts = [a, a * r - 1.0]
        if self.covariance == "full":
            rows, cols = self._tril(k)
            parts.append(np.diag(L)[rows] * a[:, rows] * e[:, cols])
        return np.concatenate(parts, axis=1)

    def entropy_grad(self):
        """``grad_psi H(q_psi)``: 1 for each log-scale (log-diagonal) entry, else 0."""
        k = self.n_parameters
        grad = np.zeros(self.get_flat_params().shape[0])
        grad[k:2 * k] = 1.0
        return grad
