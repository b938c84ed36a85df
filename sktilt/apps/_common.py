"""Plumbing shared by the applications: output folder, JSON, figures, cached models."""

from __future__ import annotations

__all__ = ["cached_fit", "save_figure", "write_json"]

import json
from pathlib import Path

import joblib
import numpy as np


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


def cached_fit(estimator, X, out: Path, name: str, *, log=print):
    """Fit ``estimator`` on ``X``, or load it from ``out/name.joblib`` if the cache
    was made by the same parameters on the same data."""
    params = {k: v for k, v in estimator.get_params(deep=False).items()
              if k not in ("callbacks", "verbose")}  # display only, not the model
    key = joblib.hash((repr(sorted(params.items())), X))
    path = out / f"{name}.joblib"
    if path.exists():
        try:
            cached_key, model = joblib.load(path)
        except Exception:  # a corrupt or foreign cache is rebuilt, not trusted
            cached_key, model = None, None
        if cached_key == key:
            log(f"loaded cached {name} from {path}")
            return model
    model = estimator.fit(X)
    joblib.dump((key, model), path)
    return model
