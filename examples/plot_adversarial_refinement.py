"""
Adversarial refinement: tilting a blurry model onto 25 Gaussians
================================================================

The data are 25 Gaussians of standard deviation 0.05 on a grid of spacing 2, the
synthetic benchmark of discriminator rejection sampling (Azadi et al. 2019) and DDLS
(Che et al. 2020). The base model smears every mode to a standard deviation of 0.5, so
most of its samples fall between the modes.

:class:`~sktilt.AdversarialRefiner` trains a classifier between the data and the base's
samples, reads its calibrated output as a log density ratio ``f ≈ log p_data / p_base``
(self-normalised so that ``E_base e^f = 1``) and tilts the base toward ``f`` at
``beta = 1``: ``p_base e^f = p_data`` for an exact ratio.
"""

import matplotlib.pyplot as plt
import numpy as np
import torch

from _fast import pick
from sktilt import AdversarialRefiner

torch.set_num_threads(1)
grid = np.array([(a, b) for a in (-4, -2, 0, 2, 4) for b in (-4, -2, 0, 2, 4)], float)
rng = np.random.default_rng(0)
n_data = pick(20_000, 5_000)
X = grid[rng.integers(25, size=n_data)] + 0.05 * rng.standard_normal((n_data, 2))
base = torch.distributions.MixtureSameFamily(
    torch.distributions.Categorical(torch.ones(25)),
    torch.distributions.Independent(torch.distributions.Normal(
        torch.tensor(grid, dtype=torch.float32), 0.5 * torch.ones(25, 2)), 1))

# %%
# One round: a gradient-boosted discriminator, calibrated on held-out folds, with twice
# as many model samples as data rows (the log-odds are corrected for it); the tuned
# model is a 50-component Gaussian mixture, enough for one or two per mode.
refiner = AdversarialRefiner(
    base, n_model_samples=2 * n_data, random_state=0,
    tuner_params={"n_components": 50, "max_iter": pick(1000, 250)}).fit(X)
print(f"raw E_base e^f before normalisation: {refiner.density_ratio_normalizer_[0]:.3f}")


def share_near_modes(x):
    """Fraction of samples within 4 sd (0.2) of a mode."""
    return (np.linalg.norm(x[:, None] - grid[None], axis=-1).min(1) < 0.2).mean()


# %%
# The refined samples sit on the modes; the held-out judge (a nearest-neighbour
# two-sample test, not the discriminator's family) finds them much harder to tell from
# the data than the base's.
samples = {"data": X[:5000], "base": base.sample((5000,)).numpy(),
           "refined": refiner.sample(5000, random_state=0)}
for name, x in samples.items():
    print(f"{name}: {100 * share_near_modes(x):.1f} % of samples within 0.2 of a mode")
judge = [None, refiner.history_[0]["two_sample_accuracy"],
         refiner.history_[1]["two_sample_accuracy"]]
fig, axes = plt.subplots(1, 3, figsize=(12, 4), sharex=True, sharey=True)
for ax, (name, x), acc in zip(axes, samples.items(), judge):
    ax.scatter(x[:, 0], x[:, 1], s=1, alpha=0.3)
    title = f"{name}: {100 * share_near_modes(x):.0f} % near a mode"
    ax.set_title(title if acc is None else f"{title}\ntwo-sample accuracy {acc:.2f}")
    ax.set_aspect("equal")
fig.tight_layout()
plt.show()
