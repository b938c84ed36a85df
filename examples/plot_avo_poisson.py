"""
Fitting a black-box simulator with AVO
======================================

A Poisson simulator ``x ~ Poisson(exp(theta))`` stands in for a non-differentiable
scientific simulator. :class:`sktilt.AVOSimulatorFitter` moves a Gaussian proposal
over ``theta`` until simulated data cannot be told from the observations by a critic,
using only forward simulations (run in parallel with joblib). The answer is checked
against the maximum-likelihood estimate, the sample mean.
"""

import matplotlib.pyplot as plt
import numpy as np

from _fast import pick
from sktilt import AVOSimulatorFitter, GaussianProposal
from sktilt.datasets import poisson_mle, poisson_simulator
from sktilt.plotting import plot_avo_fit, plot_avo_trajectory

rng = np.random.default_rng(0)
X_obs = rng.poisson(7.0, size=(pick(20_000, 2_000), 1)).astype(float)

fitter = AVOSimulatorFitter(poisson_simulator, GaussianProposal(loc=[np.log(5.0)], scale=[1.0]),
                            max_iter=pick(300, 150), n_jobs=2, random_state=0)
fitter.fit(X_obs)
lam_mle, lam_se = poisson_mle(X_obs)
print(f"lambda: AVO {np.exp(fitter.theta_[0]):.3f}, MLE {lam_mle:.3f} ± {lam_se:.3f}; "
      f"{fitter.n_simulations_} simulations, {fitter.n_failed_simulations_} failed")

# %%
# The proposal's trajectory (in lambda units) and the fitted model's data.
fig, axes = plt.subplots(1, 2, figsize=(10, 4))
plot_avo_trajectory(fitter.history_, names=["lambda"], truth=[lam_mle], transform=np.exp,
                    ax=axes[0])
plot_avo_fit(X_obs, fitter.sample(len(X_obs), random_state=1), ax=axes[1])

# %%
# To run the simulations on a cluster, wrap ``fit`` in joblib's dask backend; the result
# is identical to ``n_jobs=1`` for the same ``random_state``::
#
#     from distributed import Client
#     import joblib
#     with Client("scheduler-address:8786"), joblib.parallel_config(backend="dask"):
#         fitter.fit(X_obs)
plt.show()
