"""
Choosing a criterion before tuning
==================================

``h(l | x)`` and ``log h(l | x)`` express the same goal, but their gradients differ:
the probability saturates (plateaus with gradient 0, then a cliff) while its log stays
informative (BTGM Sec. 4.2, Fig. 1). :func:`sktilt.assessment.assess_criteria`
normalises each candidate under the base model and compares the distributions of
their gradient norms.
"""

import matplotlib.pyplot as plt
import torch

from _fast import pick
from sktilt import LatentSampler
from sktilt.assessment import assess_criteria
from sktilt import ClassLogProbability
from sktilt.plotting import plot_criteria_histograms

# A confident classifier of class 1 vs 0 over a 2-D latent (the decoder is the identity
# here, so the latent space is the instance space): h(1 | z) jumps from 0 to 1 across
# the line z_1 = 1.5.
classifier = torch.nn.Linear(2, 2)
with torch.no_grad():
    classifier.weight.copy_(torch.tensor([[0.0, 0.0], [6.0, 0.0]]))
    classifier.bias.copy_(torch.tensor([0.0, -9.0]))
base = LatentSampler(torch.nn.Identity(), latent_dim=2)


class Probability(torch.nn.Module):
    def forward(self, x):
        return torch.softmax(classifier(x), -1)[:, 1]


result = assess_criteria(base, {"h(1 | x)": Probability(),
                                "log h(1 | x)": ClassLogProbability(classifier, 1)},
                         n_samples=pick(10_000, 2_000), random_state=0)
print(result.report())
plot_criteria_histograms(result)
plt.show()
