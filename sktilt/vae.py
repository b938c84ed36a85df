"""Deprecated: moved to :mod:`sktilt.models` in sktilt 0.2; removed in 0.3."""

from ._deprecation import moved

__getattr__, __dir__ = moved(
    __name__,
    {"NegativeELBO": "sktilt.models._vae_module",
     "VAE": "sktilt.models",
     "VAEDecoder": "sktilt.models",
     "VAEModule": "sktilt.models"},
)
