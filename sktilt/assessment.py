"""Ex-ante comparison of candidate criteria (BTGM Sec. 4.2, App. C).

The same goal can be written as ``f`` or ``g(f)`` for any increasing ``g``; the tuning
problems differ in difficulty. Under ``p`` each candidate is normalised to mean 0 and
variance 1 (the Pareto front is invariant to affine maps of ``f``), then the
distribution of ``|grad log(q_beta / p)| / beta = |grad f|`` (Eq. 12) is estimated from
base samples, in the space the flow works in (the latent space for decoder models).
A regular distribution (compact support, little mass at zero) means a smooth
optimisation landscape; mass at zero with a heavy tail means plateaus separated by
cliffs. The recommended criterion has the smallest coefficient of variation of its
gradient norm.
"""

from __future__ import annotations

__all__ = ["CriteriaAssessment", "assess_criteria"]

from dataclasses import dataclass, field

import numpy as np
import torch

from ._random import draw_seed, torch_seeded
from .tilt._bases import as_base
from .tilt._criteria import evaluate_criterion


@dataclass
class CriteriaAssessment:
    """Gradient-norm statistics of normalised criteria under the base model.

    Attributes
    ----------
    gradient_norms : dict of str -> ndarray or None
        ``|grad f_normalised|`` per base sample (``None``: not differentiable).
    location, scale : dict of str -> float
        Mean and standard deviation of each criterion under ``p`` (the normalisation).
    summary : dict of str -> dict
        ``median``, ``p99``, ``max``, ``zero_fraction`` (norm < 1e-3), ``cv``.
    recommended : str or None
        The differentiable criterion with the most regular gradient norms.
    """

    gradient_norms: dict
    location: dict
    scale: dict
    summary: dict = field(default_factory=dict)
    recommended: str | None = None

    def report(self) -> str:
        """A plain-text table, one line per criterion, recommended one marked."""
        lines = [f"{'criterion':<24}{'median':>9}{'p99':>9}{'max':>9}{'zero %':>8}{'cv':>7}"]
        for name, s in self.summary.items():
            if s is None:
                lines.append(f"{name:<24}  not differentiable: score-function gradients")
                continue
            mark = "  <- recommended" if name == self.recommended else ""
            lines.append(f"{name:<24}{s['median']:9.3f}{s['p99']:9.3f}{s['max']:9.3f}"
                         f"{100 * s['zero_fraction']:8.1f}{s['cv']:7.2f}{mark}")
        return "\n".join(lines)


def _summary(norms: np.ndarray) -> dict:
    mean = norms.mean()
    return {
        "median": float(np.median(norms)),
        "p99": float(np.quantile(norms, 0.99)),
        "max": float(norms.max()),
        "zero_fraction": float(np.mean(norms < 1e-3)),
        "cv": float(norms.std() / mean) if mean > 0 else float("inf"),
    }


def assess_criteria(base_sampler, criteria: dict, *, n_samples: int = 10_000,
                    random_state=None, device: str = "cpu") -> CriteriaAssessment:
    """Compare candidate criteria before tuning, as in BTGM Sec. 4.2.

    Parameters
    ----------
    base_sampler : LatentSampler, torch Distribution or fitted estimator
        The model ``p`` (as for :class:`~sktilt.BoltzmannTuner`).
    criteria : dict of str -> callable
        Candidates, e.g. ``{"log h": ClassLogProbability(clf, 4), "h": ...}``.
    n_samples : int, default=10_000
        Base samples used for the normalisation and the gradient norms.
    random_state : int or None
    device : str, default="cpu"

    Returns
    -------
    CriteriaAssessment
    """
    if not criteria:
        raise ValueError("criteria must be a non-empty dict of name -> callable.")
    base = as_base(base_sampler).to(device)
    out = CriteriaAssessment({}, {}, {})
    with torch_seeded(draw_seed(random_state)):
        z0 = base.sample(n_samples, device=torch.device(device))
    for name, criterion in criteria.items():
        if not callable(criterion):
            raise TypeError(f"criteria[{name!r}] must be callable, got {type(criterion)}.")
        z = z0.clone().requires_grad_(True)
        f = evaluate_criterion(criterion, base.to_instance(z), check=True)
        loc, scale = float(f.detach().mean()), float(f.detach().std())
        out.location[name], out.scale[name] = loc, scale
        if not f.requires_grad or scale == 0:
            out.gradient_norms[name], out.summary[name] = None, None
            continue
        # Samples are independent: the gradient of the sum is the per-sample gradient.
        (grad,) = torch.autograd.grad(f.sum(), z)
        norms = (grad.flatten(1).norm(dim=1) / scale).detach().cpu().numpy()
        out.gradient_norms[name] = norms
        out.summary[name] = _summary(norms)
    scored = {k: s["cv"] for k, s in out.summary.items() if s is not None}
    out.recommended = min(scored, key=scored.get) if scored else None
    return out
