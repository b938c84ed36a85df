"""
Tilting toward one criterion under a constraint on another
==========================================================

A correlated Gaussian base ``p`` over two quantities, say a week's peak load ``x_1`` and
its energy ``x_2``, which rise together. Tilting toward a high peak (``f = x_1``) also
raises the energy. With ``constraints=[(g, "<=", c)]`` the tuner learns
``q ∝ p exp(beta f + lambda g)``: the highest mean peak within the KL budget among
distributions whose mean energy is at most ``c``.

For a Gaussian base and linear criteria both tilts are Gaussian with the base's
covariance ``S`` and a shifted mean ``m = S (beta a + lambda b)``, so the exact answer is
known: the figure marks it.
"""

import matplotlib.pyplot as plt
import numpy as np
import torch

from _fast import pick
from sktilt import BoltzmannTuner, LinearCriterion, quantile_budget

cov = np.array([[1.0, 0.8], [0.8, 1.0]])
base = torch.distributions.MultivariateNormal(torch.zeros(2), torch.tensor(cov,
                                                                           dtype=torch.float32))
budget = quantile_budget(0.01)
peak, energy = LinearCriterion([1.0, 0.0]), LinearCriterion([0.0, 1.0])
common = dict(kl_budget=budget, max_iter=pick(1000, 400), random_state=0)

plain = BoltzmannTuner(base, peak, **common).fit()
capped = BoltzmannTuner(base, peak, constraints=[(energy, "<=", 0.5)], **common).fit()
print(f"plain:       beta={plain.beta_:.3f}  E_q peak={plain.criterion_mean_:.3f}  "
      f"KL={plain.kl_:.3f}")
print(f"constrained: beta={capped.beta_:.3f}  lambda={capped.constraint_multipliers_[0]:.3f}"
      f"  E_q peak={capped.criterion_mean_:.3f}  E_q energy="
      f"{capped.constraint_values_[0]:.3f}  KL={capped.kl_:.3f}")

# %%
# The exact tilts: the mean ``m`` maximises ``m_1`` subject to ``m' S^{-1} m / 2 <= C``
# (and ``m_2 <= 0.5``). Unconstrained, ``m = sqrt(2C) S a / sqrt(a' S a)``; with the cap
# active, ``m_2 = 0.5`` and ``m_1`` is the largest root of the KL equation.
a = np.array([1.0, 0.0])
m_plain = np.sqrt(2 * budget) * cov @ a / np.sqrt(a @ cov @ a)
P = np.linalg.inv(cov)
# m' P m = 2C with m_2 = 0.5: P11 m1^2 + 2 P12 0.5 m1 + P22 0.25 - 2C = 0.
m1 = np.roots([P[0, 0], P[0, 1], 0.25 * P[1, 1] - 2 * budget]).real.max()
m_capped = np.array([m1, 0.5])

x_p = torch.distributions.MultivariateNormal(torch.zeros(2), torch.tensor(
    cov, dtype=torch.float32)).sample((2000,)).numpy()
x_q, x_c = plain.sample(2000, random_state=1), capped.sample(2000, random_state=1)

fig, ax = plt.subplots(figsize=(6.4, 5.2), layout="constrained")
ax.scatter(*x_p.T, s=3, alpha=0.3, color="0.6", label="base p")
ax.scatter(*x_q.T, s=3, alpha=0.3, color="C0", label="tilted toward peak")
ax.scatter(*x_c.T, s=3, alpha=0.3, color="C3", label="same, mean energy <= 0.5")
for m, color, name in ((m_plain, "C0", "exact"), (m_capped, "C3", "exact, constrained")):
    ax.plot(*m, marker="X", ms=12, color=color, mec="k", ls="", label=name)
ax.axhline(0.5, color="C3", lw=0.8, ls="--")
ax.set_xlabel("peak load x1 (standardised)")
ax.set_ylabel("weekly energy x2 (standardised)")
ax.set_title(f"KL budget -log 0.01 = {budget:.2f} nats: E_q x1 {plain.criterion_mean_:.2f} "
             f"-> {capped.criterion_mean_:.2f}\nunder E_q x2 <= 0.5 "
             f"(exact {m_plain[0]:.2f} -> {m_capped[0]:.2f})", fontsize=10)
legend = ax.legend(loc="lower right", fontsize=8)
for handle in legend.legend_handles[:3]:  # the scatters' legend dots, readable
    handle.set_sizes([20])
    handle.set_alpha(1)
plt.show()
