"""Inner pieces of the AVO loop: the proposal optimiser, critic epochs, diagnostics."""

from __future__ import annotations

__all__ = [
    "ParameterResolution",
    "ProposalAdam",
    "ScaleFloor",
    "diagnose_first_batch",
    "floor_log_scales",
    "run_critic",
]

import math
import warnings

import numpy as np

from .nets import DivergenceError


class ProposalAdam:
    """Adam on the proposal's ``psi``, in coordinates scaled by the current proposal.

    Each step receives ``units``, a natural unit per coordinate of ``psi`` (the
    proposal's *current* standard deviations for locations, 1 for log-scales, see
    :meth:`~sktilt.GaussianProposal.flat_params_scale`). Adam runs on
    ``nu = psi / units``: the gradient is multiplied by ``units`` and the step is
    ``lr * units * direction``. One ``lr`` then suits parameters of any scale, and
    location steps shrink as the proposal tightens (as in natural evolution
    strategies), so late iterates settle. Adam's normalisation bounds every update by
    about ``lr`` units, which also clips heavy-tailed REINFORCE noise. On top, ``lr``
    decays to ``final_fraction * lr`` over ``n_steps`` (cosine).

    There is no momentum by default (``betas[0] = 0``, RMSprop with Adam's bias
    correction): the critic already lags the proposal by about one update, and
    momentum on top made the location overshoot and orbit the optimum, tens of
    standard errors wide on the Poisson benchmark.
    """

    def __init__(self, lr: float, n_steps: int, betas=(0.0, 0.99), eps=1e-8,
                 final_fraction: float = 0.3):
        self.lr = float(lr)
        self.n_steps = max(1, int(n_steps))
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.final_fraction = final_fraction
        self.t = 0
        self.m = self.v = 0.0
        self.last_lr = self.lr

    def step(self, psi, grad, units):
        """One descent step on ``psi`` given its gradient; returns the new ``psi``."""
        grad = np.asarray(grad, dtype=float) * units
        if not np.all(np.isfinite(grad)):
            return psi  # a degenerate batch (e.g. all-equal critic values): skip
        self.t += 1
        self.m = self.beta1 * self.m + (1 - self.beta1) * grad
        self.v = self.beta2 * self.v + (1 - self.beta2) * grad**2
        m_hat = self.m / (1 - self.beta1**self.t)
        v_hat = self.v / (1 - self.beta2**self.t)
        progress = min(1.0, (self.t - 1) / self.n_steps)
        f = self.final_fraction
        self.last_lr = self.lr * (f + (1 - f) * 0.5 * (1 + math.cos(math.pi * progress)))
        return psi - self.last_lr * units * m_hat / (np.sqrt(v_hat) + self.eps)


class ParameterResolution:
    """Standard error that ``n_obs`` observations give each coordinate of ``z``.

    A linear-Gaussian approximation of the simulator: within each batch, the
    features are regressed on the unconstrained parameters ``z``
    (``features = a_batch + (z - mean_batch) B + e``, ``e ~ N(0, S)``, one
    ``B`` and ``S`` pooled over all batches by accumulating their centred cross
    products). The mean of ``n_obs`` observations then carries the information
    ``I_ii = n_obs b_i^T S^{-1} b_i`` on ``z_i`` (the other coordinates held fixed).
    Only the features' mean is used, so this bounds the Fisher information from
    below and ``1 / sqrt(I_ii)`` errs on the large side. Older batches are
    discounted by ``decay`` per update, so that the estimate follows the sensitivity
    along the path; within that window the broader batches, whose slopes are the
    best determined, weigh most. On average the noise of ``B`` inflates
    ``b_i^T S^{-1} b_i`` by ``p [(Z^T Z)^{-1}]_ii``, which is subtracted, and
    ``S^{-1}`` is corrected by its inverse-Wishart factor.
    """

    def __init__(self, n_params: int, n_features: int, decay: float = 1.0):
        k, p = n_params, n_features
        self.decay = decay
        self.zz, self.zf, self.ff = np.zeros((k, k)), np.zeros((k, p)), np.zeros((p, p))
        self.n = self.n_batches = 0

    def update(self, z, features) -> "ParameterResolution":
        """Add one batch: ``z`` of shape (m, k), ``features`` of shape (m, p)."""
        z = np.asarray(z, dtype=float)
        F = np.asarray(features, dtype=float)
        if z.shape[0] < 2:
            return self
        Z, F = z - z.mean(0), F - F.mean(0)
        for name in ("zz", "zf", "ff", "n", "n_batches"):
            setattr(self, name, getattr(self, name) * self.decay)
        self.zz += Z.T @ Z
        self.zf += Z.T @ F
        self.ff += F.T @ F
        self.n += z.shape[0]
        self.n_batches += 1
        return self

    def standard_errors(self, n_obs: int) -> np.ndarray:
        """Per-coordinate standard errors, shape (k,).

        ``inf`` where the simulations so far show no effect of ``z_i`` on the
        features, or are too few to estimate the features' covariance.
        """
        k, p = self.zf.shape
        se = np.full(k, np.inf)
        dof = self.n - self.n_batches - k
        if dof < 2 * p + 4:
            return se
        zz_inv = np.linalg.pinv(self.zz)
        B = zz_inv @ self.zf
        S = (self.ff - B.T @ self.zz @ B) / dof
        S_inv = np.linalg.pinv(S) * (dof - p - 1) / dof
        info = n_obs * (np.einsum("ip,pq,iq->i", B, S_inv, B) - p * np.diag(zz_inv))
        positive = info > 0
        se[positive] = 1.0 / np.sqrt(info[positive])
        return se


class ScaleFloor:
    """The floor ``min_scale`` puts on the proposal's standard deviations.

    ``min_scale`` is ``"auto"`` (``factor`` standard errors from a
    :class:`ParameterResolution` fed with every batch through :meth:`observe`),
    ``None`` (no floor), or a positive float or array of shape ``(n_params,)``.
    Below the data's resolution the critic cannot see the proposal's spread,
    REINFORCE location gradients lose their signal and the location freezes wherever
    it was, since its steps shrink with the spread. The default ``decay`` (a window
    of about 70 batches) is local enough to follow the sensitivity along the path
    and long enough to pool the thousands of simulations a standard error needs.
    """

    def __init__(self, min_scale, n_params: int, n_features: int, n_obs: int,
                 factor: float = 3.0, decay: float = 0.985):
        self.n_obs, self.factor = n_obs, factor
        self.resolution = self.fixed = None
        if isinstance(min_scale, str):
            self.resolution = ParameterResolution(n_params, n_features, decay)
        elif min_scale is not None:
            floor = np.asarray(min_scale, dtype=float)
            if floor.ndim > 1 or (floor.ndim == 1 and floor.shape != (n_params,)):
                raise ValueError(f"min_scale must be 'auto', None, a float or an array "
                                 f"of shape ({n_params},) (one per parameter); got "
                                 f"shape {floor.shape}.")
            if not np.all(np.isfinite(floor) & (floor > 0)):
                raise ValueError(f"min_scale must be positive and finite; got "
                                 f"{min_scale}.")
            self.fixed = np.broadcast_to(floor, (n_params,)).copy()

    def observe(self, z, features) -> None:
        """Feed one batch of unconstrained parameters and simulated features."""
        if self.resolution is not None:
            self.resolution.update(z, features)

    def value(self):
        """The current floor, shape (n_params,), or None."""
        if self.resolution is None:
            return self.fixed
        return self.factor * self.resolution.standard_errors(self.n_obs)


def floor_log_scales(psi_new, psi_old, floor):
    """Keep the log-scales of ``psi_new`` (entries ``k:2k``) at or above ``log(floor)``.

    ``floor`` of shape (k,), or None for no floor. A coordinate that was already below
    its floor may not shrink further but is not widened either; an infinite floor
    freezes the coordinate's scale.
    """
    if floor is None:
        return psi_new
    k = len(floor)
    psi = np.array(psi_new, dtype=float)
    with np.errstate(divide="ignore"):
        bound = np.minimum(psi_old[k:2 * k], np.log(floor))
    psi[k:2 * k] = np.maximum(psi[k:2 * k], bound)
    return psi


def run_critic(critic, X_obs, X_sim, generator, epochs: int = 1) -> dict:
    """Train the critic for ``epochs`` epochs of ``n_critic`` steps on the given data.

    A non-finite loss restores the last good weights and warns; the fit goes on.
    Returns the epoch means of the critic loss and of the Wasserstein estimate.
    """
    critic.set_data(X_obs, X_sim, generator)
    try:
        critic.run_steps(epochs)
    except DivergenceError as exc:
        restored = critic.restore_last_good_state()
        warnings.warn(f"The critic diverged ({exc}); "
                      + ("restored its last good state." if restored
                         else "no good state to restore yet; continuing."),
                      RuntimeWarning, stacklevel=3)
        return {"critic_loss": np.nan, "critic_estimate": np.nan}
    row = critic.history[-1]
    est = [b.get("critic_estimate", np.nan) for b in row["batches"]]
    return {"critic_loss": float(row["train_loss"]),
            "critic_estimate": float(np.mean(est)) if est else np.nan}


def diagnose_first_batch(result, n_params: int, n_features: int) -> None:
    """Turn a first batch where *every* simulation failed into a clear ``ValueError``.

    Such a batch almost always means a configuration error: the simulator's output
    does not have ``n_features`` entries, or it does not accept parameter vectors of
    the proposal's dimension.
    """
    if result.ok.any():
        return
    messages = sorted(set(result.errors))
    if all(m.startswith(("output of shape", "vectorized output of shape"))
           for m in messages):
        raise ValueError(
            f"X has n_features={n_features} but the simulator's outputs do not match: "
            f"{messages[0]}. The observations' columns must be what the simulator "
            "returns.")
    raise ValueError(
        f"Every simulation of the first batch failed, e.g. {messages[0]!r}. Check that "
        f"the simulator accepts parameter vectors of the proposal's dimension "
        f"({n_params}) and returns arrays of shape ({n_features},).")
