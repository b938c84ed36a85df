"""Plumbing shared by the applications: output folder, JSON, figures, cached models."""

from __future__ import annotations

__all__ = ["cached_fit", "save_figure", "write_json"]

import hashlib
import io
import json
import os
import tempfile
from pathlib import Path

import joblib
import numpy as np
import torch


def write_json(path: Path, payload: dict) -> None:
    def default(o):
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        raise TypeError(f"not JSON serialisable: {type(o).__name__}")

    path.write_text(json.dumps(payload, indent=2, default=default) + "\n")


def save_figure(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


# Version of the cache's layout (name.json + name.pt); another one is ignored.
_CACHE_FORMAT = 1


def _class_path(estimator) -> str:
    return f"{type(estimator).__module__}.{type(estimator).__qualname__}"


def _cache_key(estimator, X, y) -> str:
    """Hash of what the fit depends on: the estimator's class and parameters, the data."""
    # callbacks and verbose are display only; "_params_to_validate" is skorch's book-keeping
    params = {k: v for k, v in estimator.get_params(deep=False).items()
              if k not in ("callbacks", "verbose") and not k.startswith("_")}
    return joblib.hash((_class_path(estimator), repr(sorted(params.items())), X, y))


def _prepare_like_fit(estimator, X, y) -> None:
    """Set what ``fit`` derives from the data before building the module:
    ``n_features_in_``, ``data_stats_`` (the standardisation), a classifier's labels."""
    from ..models import VAE, TorchClassifier

    if isinstance(estimator, VAE):
        estimator._check_params()
        estimator._set_data_stats(estimator._validate_X(X, reset=True))
    elif isinstance(estimator, TorchClassifier):
        estimator._prepare(X, y, reset=True)
    else:  # pragma: no cover - checked by cached_fit
        raise TypeError(type(estimator).__name__)


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _save_cache(model, key: str, meta_path: Path, weights_path: Path) -> None:
    from .. import __version__

    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.module_.state_dict().items()}, buffer)
    weights = buffer.getvalue()
    try:
        history = json.loads(json.dumps(model.history.to_list()))
    except (TypeError, ValueError):  # a callback recorded something that is not JSON
        history = None
    meta = {"format": _CACHE_FORMAT, "key": key, "sktilt_version": __version__,
            "estimator": _class_path(model), "weights": weights_path.name,
            "weights_sha256": hashlib.sha256(weights).hexdigest(), "history": history}
    # weights first, metadata last: a half-written cache never verifies
    _atomic_write(weights_path, weights)
    _atomic_write(meta_path, (json.dumps(meta, indent=1) + "\n").encode())


def _load_cache(estimator, X, y, key: str, meta_path: Path, weights_path: Path):
    """A clone of ``estimator`` restored from a verified cache: ``(model, None)``, or
    ``(None, why not)``, ``estimator`` untouched. Nothing read here can run code: JSON,
    then a torch file read with ``weights_only=True`` after its SHA-256 matched."""
    from sklearn.base import clone
    from skorch.history import History

    from .. import __version__
    from .._random import torch_seeded

    for path in (meta_path, weights_path):
        if path.exists() and not path.is_file():  # a device or a folder: never read
            return None, f"{path.name} is not a regular file"
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return None, f"{meta_path.name} is not readable JSON ({type(exc).__name__})"
    if not isinstance(meta, dict) or meta.get("format") != _CACHE_FORMAT:
        return None, f"{meta_path.name} is not a cache of this format"
    if meta.get("estimator") != _class_path(estimator):
        return None, (f"the cache holds a {meta.get('estimator')!r}, not a "
                      f"{_class_path(estimator)}")
    if meta.get("sktilt_version") != __version__:
        return None, (f"the cache was made by sktilt {meta.get('sktilt_version')!r}, this "
                      f"is {__version__}")
    if meta.get("key") != key:
        return None, "the cache was made with other parameters or data"
    try:
        weights = weights_path.read_bytes()
    except OSError as exc:
        return None, f"{weights_path.name} is not readable ({type(exc).__name__})"
    if hashlib.sha256(weights).hexdigest() != meta.get("weights_sha256"):
        return None, f"{weights_path.name} does not match its metadata (changed or partial)"
    try:
        # the bytes that were hashed, not the file again
        state = torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True)
        if not (isinstance(state, dict) and all(
                isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items())):
            raise TypeError("not a state dict of tensors")
        model = clone(estimator)  # rebuilt from its parameters
        _prepare_like_fit(model, X, y)
        with torch_seeded(0):  # the initial weights are overwritten: leave torch's RNG be
            model.initialize()
        model.module_.load_state_dict(state)  # strict: same keys and shapes
    except Exception as exc:  # noqa: BLE001 - whatever is wrong, the model is refit
        return None, f"{weights_path.name} does not load ({type(exc).__name__}: {exc})"
    trained = getattr(model.module_, "trained", None)
    if trained is None or not bool(trained):
        return None, f"{weights_path.name} holds an untrained model"
    history = meta.get("history")
    if isinstance(history, list) and all(isinstance(row, dict) for row in history):
        model.history = History(history)
    return model, None


def cached_fit(estimator, X, out: Path, name: str, *, y=None, log=print):
    """Fit ``estimator`` on ``X`` (and ``y``), or restore it from a cache in ``out``.

    The cache is two files, neither of which can run code when read:
    ``out/name.json`` (the cache key, a hash of the estimator's class and parameters
    and of the data; the sktilt version; the estimator's class path; the SHA-256 of
    the weights; the training history) and ``out/name.pt``, the module's
    ``state_dict`` written by :func:`torch.save` and read with ``weights_only=True``.
    The estimator is restored only when the key, the version, the class and the
    weights' hash all match: it is then prepared from ``X`` as ``fit`` would
    (``n_features_in_``, standardisation, labels), initialised, and given the weights
    (which carry the module's ``trained`` flag). Anything else (missing, tampered,
    foreign, corrupt, older) is refit, with a line to ``log`` saying why. The
    optimizer's state is not cached: ``partial_fit`` on a restored model starts a
    fresh optimizer. Pickle caches (``name.joblib``) of earlier versions are never
    read.

    Parameters
    ----------
    estimator : VAE or TorchClassifier
        Fitted in place and returned; or, from the cache, a clone of it is restored
        and returned (``estimator`` itself is then left as it was).
    X : array-like of shape (n_samples, n_features)
    out : Path
        Folder of the cache.
    name : str
        File stem of the cache.
    y : array-like or None
        Labels, for a :class:`~sktilt.TorchClassifier`.
    log : callable
        Receives one line when the cache is loaded or ignored.
    """
    from ..models import VAE, TorchClassifier

    if not isinstance(estimator, (VAE, TorchClassifier)):
        raise TypeError(f"cached_fit caches VAE and TorchClassifier models, got "
                        f"{type(estimator).__name__}.")
    if isinstance(estimator, TorchClassifier) and y is None:
        raise ValueError("cached_fit needs y to fit a TorchClassifier.")
    out = Path(out)
    meta_path, weights_path = out / f"{name}.json", out / f"{name}.pt"
    legacy = out / f"{name}.joblib"
    if legacy.exists():
        log(f"ignoring {legacy}: pickle caches are not loaded (they can run code); "
            "it can be deleted")
    key = _cache_key(estimator, X, y)
    if meta_path.exists() or weights_path.exists():
        model, why = _load_cache(estimator, X, y, key, meta_path, weights_path)
        if model is not None:
            log(f"loaded cached {name} from {weights_path}")
            return model
        log(f"not using the cached {name} in {out}: {why}; fitting it again")
    model = estimator.fit(X) if y is None else estimator.fit(X, y)
    _save_cache(model, key, meta_path, weights_path)
    return model
