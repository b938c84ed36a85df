"""Trainable models to tune and to build criteria with: skorch estimators over torch modules.

* :class:`VAE` -- a variational auto-encoder of curves and images, a base model ``p``
  (``_vae``, with its torch modules in ``_vae_module``: :class:`VAEModule`, the default
  ``module=`` and the class a custom one subclasses, and :class:`VAEDecoder`, what
  ``VAE.decoder_module()`` returns);
* :class:`TorchClassifier` -- an MLP classifier whose logits give the criterion
  ``log h(label | x)`` (``_classifier``; :class:`MLPClassifierModule` is its default
  ``module=``);
* ``_skorch`` -- the plumbing both share (module building, the trained flag, Ctrl-C).
"""

import typing as _typing

from .._deprecation import made_private as _made_private
from ._classifier import MLPClassifierModule, TorchClassifier, class_log_probability
from ._vae import VAE
from ._vae_module import VAEDecoder, VAEModule

__all__ = [
    "VAE",
    "MLPClassifierModule",
    "TorchClassifier",
    "VAEDecoder",
    "VAEModule",
    "class_log_probability",
]

# Internals that were exported here until 0.2: they resolve, with a DeprecationWarning,
# until sktilt 0.3 (see sktilt._deprecation.made_private).
if not _typing.TYPE_CHECKING:
    __getattr__, __dir__ = _made_private(__name__, {
        "LIKELIHOODS": f"{__name__}._vae_module",
        "NOISE_MODELS": f"{__name__}._vae_module",
        "NegativeELBO": f"{__name__}._vae_module",
        "NoiseScale": f"{__name__}._vae_module",
        "standardization_stats": f"{__name__}._skorch",
    }, __all__)
