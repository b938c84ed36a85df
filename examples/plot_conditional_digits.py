"""
Conditional digits without retraining
=====================================

A VAE trained on scikit-learn's 8x8 digits knows nothing of labels. Tilting it by
``f(x) = log h(4 | x)`` for a separately trained classifier ``h`` gives
``q_beta ∝ p h(4 | x)^beta``: the KL budget controls how strongly samples are pulled
toward the class (BTGM Sec. 4.1, Fig. 5).
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from _fast import pick
from sktilt import VAE, BoltzmannTuner, TorchClassifier, class_log_probability
from sktilt.plotting import plot_image_grid

digits = load_digits()
X, y = (digits.data / 16.0).astype(np.float32), digits.target
vae = VAE(latent_dim=8, max_iter=pick(150, 20), random_state=0).fit(X)
clf = TorchClassifier(max_iter=pick(60, 20), random_state=0).fit(X, y)
criterion = class_log_probability(clf, 4)

rows, labels = [vae.sample(10, random_state=0)], ["p"]
for budget in pick([0.5, 1.0, 2.0, 3.0], [1.0, 2.0]):
    tuner = BoltzmannTuner(vae, criterion, kl_budget=budget, random_state=0).fit()
    samples = tuner.sample(500, random_state=1)
    share = np.mean(clf.predict(samples) == 4)
    print(f"KL budget {budget}: beta={tuner.beta_:.2f}, {share:.0%} classified as 4")
    rows.append(samples[:10])
    labels.append(f"KL={tuner.kl_:.1f}")
plot_image_grid(rows, row_labels=labels)
plt.show()
