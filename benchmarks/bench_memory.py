"""Peak memory of large draws against the size of their result (issue #14 targets).

Run: ``python benchmarks/bench_memory.py`` (about a minute).

Each case runs in a fresh process; the peak resident memory above the process's
baseline after setup is printed next to the result's own size. Targets: within a few
times the result (the 0.1 code peaked at 3.8 GiB for AVOSimulatorFitter.sample(10**7),
a 76 MiB result, and at 2.7 GiB for VAE.sample(10**7)).
"""

from __future__ import annotations

import subprocess
import sys

CASE = r"""
import resource, warnings
import numpy as np, torch
torch.set_num_threads(1)
warnings.simplefilter("ignore")
def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB on Linux
{setup}
before = peak()
out = {call}
print(f"{{label:<34}} result {{out.nbytes / 2**20:7.0f}} MiB  peak above setup "
      f"{{peak() - before:7.0f}} MiB")
"""

CASES = [
    ("AVOSimulatorFitter.sample(10**7)", """
from sktilt import AVOSimulatorFitter, GaussianProposal, Simulator
from sktilt.datasets import gaussian_location_simulator_batch
X = np.random.default_rng(0).normal(size=(500, 2))
fit = AVOSimulatorFitter(Simulator(gaussian_location_simulator_batch, vectorized=True),
      GaussianProposal([0.0, 0.0], [1.0, 1.0]), max_iter=3, random_state=0).fit(X)
label = "AVOSimulatorFitter.sample(10**7)"
""", "fit.sample(10**7)"),
    ("VAE.sample(10**7)", """
from sktilt.models import VAE
vae = VAE(max_iter=1, random_state=0).fit(np.random.default_rng(0).normal(size=(200, 2)))
label = "VAE.sample(10**7)"
""", "vae.sample(10**7)"),
    ("BoltzmannTuner.sample(10**7)", """
from sktilt import BoltzmannTuner, LatentSampler, LinearCriterion
tuner = BoltzmannTuner(LatentSampler(torch.nn.Identity(), latent_dim=2),
                       LinearCriterion([1.0, 0.0]), max_iter=30, random_state=0).fit()
label = "BoltzmannTuner.sample(10**7)"
""", "tuner.sample(10**7)"),
]

if __name__ == "__main__":
    for _, setup, call in CASES:
        code = CASE.format(setup=setup, call=call)
        print(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True).stdout.strip(), flush=True)
