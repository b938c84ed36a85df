"""Trainable models to tune and to build criteria with: skorch estimators over torch modules.

* :class:`VAE` -- a variational auto-encoder of curves and images, a base model ``p``
  (``_vae``, with its torch modules in ``_vae_module``);
* :class:`TorchClassifier` -- an MLP classifier whose logits give the criterion
  ``log h(label | x)`` (``_classifier``);
* ``_skorch`` -- the plumbing both share (module building, the trained flag, Ctrl-C).
"""

from ._classifier import MLPClassifierModule, TorchClassifier, class_log_probability
from ._skorch import standardization_stats
from ._vae import VAE
from ._vae_module import LIKELIHOODS, NOISE_MODELS, NegativeELBO, NoiseScale, VAEDecoder, VAEModule

__all__ = [
    "LIKELIHOODS",
    "NOISE_MODELS",
    "VAE",
    "MLPClassifierModule",
    "NegativeELBO",
    "NoiseScale",
    "TorchClassifier",
    "VAEDecoder",
    "VAEModule",
    "class_log_probability",
    "standardization_stats",
]
