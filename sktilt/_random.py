"""Seeding helpers shared by the estimators.

Every estimator turns its ``random_state`` into integer seeds once per fit, and runs
torch code inside :func:`torch_seeded` so that the global torch RNG of the caller is
left untouched and the same ``random_state`` gives the same result.
"""

from __future__ import annotations

__all__ = ["draw_seed", "torch_seeded", "torch_generator"]

import contextlib
from collections.abc import Iterator

import numpy as np
import torch
from sklearn.utils import check_random_state


def draw_seed(random_state) -> int:
    """Draw a 32-bit integer seed from an int, ``None`` or a ``RandomState``."""
    return int(check_random_state(random_state).randint(0, 2**31 - 1))


@contextlib.contextmanager
def torch_seeded(seed: int) -> Iterator[None]:
    """Run a block with torch's global CPU RNG seeded, restoring its state afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


def torch_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A dedicated ``torch.Generator`` on ``device`` seeded with ``seed``."""
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed) % (2**63))
    return gen


def numpy_generator(seed: int) -> np.random.Generator:
    """A numpy ``Generator`` seeded with ``seed``."""
    return np.random.default_rng(seed)
