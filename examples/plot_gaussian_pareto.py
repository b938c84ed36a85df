"""
Boltzmann tuning of a Gaussian: the exact case
==============================================

For a standard normal base ``p = N(0, I)`` and a linear criterion ``f(z) = a . z`` the
tilted model is known exactly: ``q_beta = N(beta a, I)`` with
``KL(q_beta || p) = beta^2 |a|^2 / 2`` and ``E_q f = beta |a|^2``. We tune for a few
KL budgets with a grid search and compare the fitted Pareto front with the closed
form and with the importance-sampling reference of BTGM App. C.
"""

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.model_selection import GridSearchCV

from _fast import pick
from sktilt import BoltzmannTuner, LatentSampler
from sktilt import LinearCriterion
from sktilt.metrics import PARETO_SCORING, pareto_front_from_cv
from sktilt.plotting import plot_pareto_front

a = np.array([1.0, 0.5, -0.5])
base = LatentSampler(torch.nn.Identity(), latent_dim=3)
tuner = BoltzmannTuner(base, LinearCriterion(a), max_iter=pick(300, 80), random_state=0)

# %%
# Grid search over the budget: ``refit=False`` and a single "split" (the tuner does
# not learn from data; ``X`` only sets the number of rows).
budgets = pick([0.25, 0.5, 1.0, 2.0, 4.0], [0.5, 2.0])
X = np.zeros((2, 1))
search = GridSearchCV(tuner, {"kl_budget": budgets}, scoring=PARETO_SCORING, refit=False,
                      cv=[(np.arange(2), np.arange(2))]).fit(X)
front = pareto_front_from_cv(search.cv_results_)

fitted = tuner.set_params(kl_budget=budgets[-1]).fit()
reference = fitted.reference_curve(np.linspace(0, fitted.beta_ * 1.1, 30))

# %%
# The fitted points sit on the exact front ``E_q f = |a| sqrt(2 KL)``.
ax = plot_pareto_front(front["kl"], front["criterion_mean"], reference=reference,
                       labels=[f"C={p['kl_budget']}" for p in front["params"]])
kl = np.linspace(0, max(budgets), 100)
ax.plot(kl, np.linalg.norm(a) * np.sqrt(2 * kl), "k:", label="closed form")
ax.legend()
for k, c in zip(front["kl"], front["criterion_mean"]):
    print(f"KL {k:.3f}  E_q f {c:.3f}  exact {np.linalg.norm(a) * np.sqrt(2 * k):.3f}")
plt.show()
