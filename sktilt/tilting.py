"""The Boltzmann-tuning objective and its skorch training loop.

For a fixed beta, BTGM (Eq. 7-9) fits ``q = T_# p`` by maximising
``E_{e~p}[beta f(T(e)) + log p(T(e)) - log q(T(e))]``, i.e. minimising
``KL(q || p) - beta E_q f``. The KL part is always differentiated pathwise through
the flow. The criterion part is pathwise when ``f`` is differentiable and otherwise
uses the score-function estimator of :mod:`sktilt.gradients` with a leave-one-out
mean baseline.
"""

from __future__ import annotations

__all__ = [
    "TiltFlow",
    "TiltNet",
    "draw_base",
    "draw_defensive",
    "draw_tilted",
    "evaluate_criterion",
    "flow_statistics",
    "moment_match_init",
    "tilted_samples",
]

import math

import numpy as np
import torch
from torch import nn

from .gradients import score_function_surrogate
from .nets import StepNet


class TiltFlow(nn.Module):
    """Wraps a zuko lazy transform ``T``: ``forward(e) -> (T(e), log|det J_T(e)|)``."""

    def __init__(self, transform: nn.Module):
        super().__init__()
        self.transform = transform

    def forward(self, eps: torch.Tensor):
        return self.transform().call_and_ladj(eps)

    def log_prob(self, z: torch.Tensor, base) -> torch.Tensor:
        """``log q(z)`` at arbitrary points (inverse direction)."""
        eps, ladj_inv = self.transform().inv.call_and_ladj(z)
        return base.log_prob(eps) + ladj_inv

    def log_prob_frozen(self, z: torch.Tensor, base) -> torch.Tensor:
        """``log q(z)`` with the flow's parameters treated as constants.

        Differentiable in ``z`` only: the "sticking the landing" estimator (Roeder et
        al., 2017), whose gradient vanishes sample by sample once ``q`` equals the
        target, so the flow settles exactly instead of jittering around it.
        """
        frozen = {f"flow.{k}": v.detach() for k, v in self.named_parameters()}
        return torch.func.functional_call(_LogProb(self), frozen, (z, base))


class _LogProb(nn.Module):
    # functional_call swaps parameters for a module's forward: route it to log_prob.
    def __init__(self, flow):
        super().__init__()
        self.flow = flow

    def forward(self, z, base):
        return self.flow.log_prob(z, base)


def evaluate_criterion(criterion, x: torch.Tensor, *, check: bool = False) -> torch.Tensor:
    """Call ``criterion`` on a batch and return a float tensor of shape ``(n,)``.

    numpy outputs are accepted (non-differentiable criteria). With ``check=True`` the
    shape and finiteness are validated with errors that name the parameter.
    """
    out = criterion(x)
    if not isinstance(out, torch.Tensor):
        try:
            out = torch.as_tensor(np.asarray(out, dtype=np.float32), device=x.device)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"criterion must return a tensor or array of shape (n,), got "
                f"{type(out).__name__}."
            ) from exc
    n = x.shape[0]
    if check:
        if out.shape != (n,):
            raise ValueError(
                f"criterion must map a batch of shape (n, ...) to shape (n,); for n={n} "
                f"it returned shape {tuple(out.shape)}. Reduce over the other axes "
                "(e.g. return x.max(dim=1).values)."
            )
        bad = ~torch.isfinite(out.detach())
        if bad.any():
            raise ValueError(
                f"criterion returned {int(bad.sum())} non-finite value(s) (NaN or inf) out "
                f"of {n} on samples of the base model; it must be finite everywhere p has "
                "mass (clip or regularise it, e.g. log(h + eps))."
            )
    return out.to(torch.float32).reshape(n)


class TiltNet(StepNet):
    """skorch net that fits the flow at the current ``beta`` (set by the tuner).

    The tuner sets ``base``, ``target`` (the criterion), ``beta``, ``pathwise`` and
    ``n_samples_per_step`` before calling :meth:`~sktilt.nets.StepNet.run_steps`.
    While ``weighted_samples`` is set, the steps maximise the weighted likelihood of
    those samples instead (see :func:`tilted_samples`).
    """

    base = None
    target = None
    beta = 0.0
    pathwise = True
    n_samples_per_step = 256
    sticking_the_landing = True
    weighted_samples = None

    def objective(self):
        if self.weighted_samples is not None:
            return self._likelihood_objective()
        base, device = self.base, self.device
        eps = base.sample(self.n_samples_per_step, device=device)
        z, ladj = self.module_(eps)
        log_p_z = base.log_prob(z)
        log_ratio = base.log_prob(eps) - ladj - log_p_z
        if self.sticking_the_landing:
            surrogate_ratio = self.module_.log_prob_frozen(z, base) - log_p_z
        else:
            surrogate_ratio = log_ratio
        if self.pathwise:
            f = evaluate_criterion(self.target, base.to_instance(z))
            tilt = f.mean()
        else:
            with torch.no_grad():
                f = evaluate_criterion(self.target, base.to_instance(z.detach()))
            tilt = score_function_surrogate(self.module_.log_prob(z.detach(), base), f)
        loss = surrogate_ratio.mean() - self.beta * tilt
        return loss, {"kl_batch": log_ratio.mean().item(), "criterion_batch": f.mean().item()}

    def _likelihood_objective(self):
        # Forward KL(q_beta || q) up to a constant: minus the log-likelihood of
        # samples resampled in proportion to their weights.
        samples, probs = self.weighted_samples
        idx = torch.multinomial(probs, self.n_samples_per_step, replacement=True)
        log_q = self.module_.log_prob(samples[idx], self.base)
        return -log_q.mean(), {"log_likelihood_batch": log_q.mean().item()}


def tilted_samples(eps: np.ndarray, f: np.ndarray, beta: float, device):
    """Base samples with their self-normalised weights ``∝ exp(beta f)``, as tensors.

    The ``weighted_samples`` of :class:`TiltNet`: an importance sample of ``q_beta``.
    Fitting the flow to it by maximum likelihood (forward KL, mode-covering) before
    the reverse-KL steps (mode-seeking) keeps every mode of a multi-modal ``q_beta``
    that the samples see, instead of the one nearest the initialisation.
    """
    a = beta * np.asarray(f, dtype=np.float64)
    w = np.exp(a - a.max())
    return (torch.as_tensor(eps, dtype=torch.float32, device=device),
            torch.as_tensor(w / w.sum(), dtype=torch.float64, device=device))


def draw_base(base, criterion, n: int, device, chunk: int = 65536):
    """``n`` base samples (flow space) and ``f`` at them, as float64 numpy arrays."""
    eps, out = [], []
    with torch.no_grad():
        for start in range(0, n, chunk):
            z = base.sample(min(chunk, n - start), device=device)
            f = evaluate_criterion(criterion, base.to_instance(z), check=True)
            eps.append(z.double().cpu().numpy())
            out.append(f.double().cpu().numpy())
    return np.concatenate(eps), np.concatenate(out)


def draw_tilted(module: TiltFlow, base, criterion, n: int, device, *, keep_x: bool = False,
                chunk: int = 8192):
    """``n`` draws of ``q = T_# p``: ``log q/p`` (flow space), ``f``, and ``x`` if asked.

    Uses torch's global RNG: run it under :func:`sktilt._random.torch_seeded`.
    """
    ratios, fs, xs = [], [], []
    with torch.no_grad():
        for start in range(0, n, chunk):
            eps = base.sample(min(chunk, n - start), device=device)
            z, ladj = module(eps)
            x = base.to_instance(z)
            ratios.append((base.log_prob(eps) - ladj - base.log_prob(z)).double().cpu().numpy())
            fs.append(evaluate_criterion(criterion, x).double().cpu().numpy())
            if keep_x:
                xs.append(x.cpu().numpy())
    return (np.concatenate(ratios), np.concatenate(fs),
            np.concatenate(xs) if keep_x else None)


def draw_defensive(module: TiltFlow, start: TiltFlow, alpha: float, base, criterion,
                   n: int, device, *, keep_x: bool = False, chunk: int = 8192):
    """``n`` draws of the mixture ``r = (1 - alpha) q + alpha q0``: ``log p/r``, ``f``, ``x``.

    ``q`` is ``module`` (the tuned flow) and ``q0`` is ``start`` (its start, fitted to
    the weighted base samples, which covers every mode they contain). A stratified
    draw, ``round(alpha n)`` samples from ``q0`` and the rest from ``q``, weighted by
    ``p / r`` with ``r`` the mixture at the realised fractions (the balance heuristic
    of multiple importance sampling): unbiased for any ``alpha``. The weights stay
    below ``1 / alpha`` times ``p / q0``, so a mode that ``q`` misses no longer gives
    rare, huge weights -- the bias and the over-confident standard error of ``q``
    alone. Uses torch's global RNG: run it under :func:`sktilt._random.torch_seeded`.
    """
    n0 = int(round(alpha * n))
    log_fractions = [math.log(c) if c > 0 else -math.inf for c in (n0 / n, (n - n0) / n)]
    ratios, fs, xs = [], [], []
    with torch.no_grad():
        for flow, m in ((start, n0), (module, n - n0)):
            for begin in range(0, m, chunk):
                z, _ = flow(base.sample(min(chunk, m - begin), device=device))
                log_r = torch.logaddexp(log_fractions[0] + start.log_prob(z, base),
                                        log_fractions[1] + module.log_prob(z, base))
                x = base.to_instance(z)
                ratios.append((base.log_prob(z) - log_r).double().cpu().numpy())
                fs.append(evaluate_criterion(criterion, x).double().cpu().numpy())
                if keep_x:
                    xs.append(x.cpu().numpy())
    return (np.concatenate(ratios), np.concatenate(fs),
            np.concatenate(xs) if keep_x else None)


def flow_statistics(log_ratio: np.ndarray, f: np.ndarray, beta: float) -> dict:
    """Monte-Carlo ``KL(q || p)`` and moments of ``f`` under ``q``, with standard errors."""
    n = log_ratio.size
    centred = f - f.mean()
    return {
        "beta": float(beta),
        "kl": float(log_ratio.mean()),
        "kl_se": float(log_ratio.std(ddof=1) / math.sqrt(n)),
        "criterion_mean": float(f.mean()),
        "criterion_mean_se": float(f.std(ddof=1) / math.sqrt(n)),
        "criterion_var": float(centred.var()),
        "criterion_third": float((centred**3).mean()),
    }


def moment_match_init(transform, eps: np.ndarray, f: np.ndarray, beta: float,
                      min_ess: float = 50.0) -> None:
    """Start the flow's global affine at the tilt's importance-weighted moments.

    The flow then only has to learn the shape of ``q_beta``, not to travel to it: a
    far tail is reached in the first steps instead of after ``shift / lr`` steps.
    """
    a = beta * f
    w = np.exp(a - a.max())
    w /= w.sum()
    if 1.0 / (w @ w) < min_ess:
        return
    mean_p, sd_p = eps.mean(0), eps.std(0) + 1e-12
    mean_q = w @ eps
    sd_q = np.sqrt(w @ (eps - mean_q) ** 2) + 1e-12
    scale = np.clip(sd_q / sd_p, 1e-2, 1e2)
    transform.transforms[-1].set_(mean_q - scale * mean_p, scale)
