"""Seeds: one copy of every conversion from a ``random_state`` to the RNGs the code uses.

Estimators turn their ``random_state`` into integer seeds once per call and run torch code
inside :func:`torch_seeded`, so that the caller's global torch RNG is left untouched and
the same ``random_state`` gives the same result. Simulations are seeded through
:func:`as_seed_sequence`, whose ``spawn`` children do not depend on scheduling.
"""

from __future__ import annotations

__all__ = ["as_seed_sequence", "draw_seed", "resolve_seed", "torch_generator", "torch_seeded"]

import contextlib
from collections.abc import Iterator
from numbers import Integral
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

# torch and scikit-learn are imported where used: sktilt.simulation needs only
# as_seed_sequence, and the processes that run simulations (joblib workers, the fork
# servers and children of timed simulations) then import neither (several seconds each).

#: Seeds are drawn below this bound, the largest that every RNG here accepts.
_SEED_BOUND = 2**31 - 1


def draw_seed(random_state) -> int:
    """Draw an integer seed from ``None``, an int, a ``RandomState`` or a ``Generator``.

    An int gives the same seed at every call (``check_random_state`` semantics).
    """
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, _SEED_BOUND))
    from sklearn.utils import check_random_state

    return int(check_random_state(random_state).randint(0, _SEED_BOUND))


def resolve_seed(default, random_state=None) -> int:
    """Seed of a method call: its ``random_state``, else the estimator's ``default``.

    Methods such as ``sample(n, random_state=None)`` fall back to the estimator's own
    ``random_state``, so an int there makes repeated calls reproducible (as
    :meth:`sklearn.mixture.GaussianMixture.sample` does).
    """
    return draw_seed(default if random_state is None else random_state)


def as_seed_sequence(random_state) -> np.random.SeedSequence:
    """A ``SeedSequence`` from ``None``, an int, a ``RandomState``, a ``Generator`` or itself."""
    if isinstance(random_state, np.random.SeedSequence):
        return random_state
    if random_state is None:
        return np.random.SeedSequence()
    if isinstance(random_state, Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be a non-negative int, got {random_state}.")
        return np.random.SeedSequence(int(random_state))
    if isinstance(random_state, np.random.Generator):
        return np.random.SeedSequence(int(random_state.integers(0, 2**63 - 1)))
    if isinstance(random_state, np.random.RandomState):
        return np.random.SeedSequence(int(random_state.randint(0, _SEED_BOUND)))
    raise TypeError(
        f"random_state must be None, an int, a numpy RandomState, Generator or SeedSequence; "
        f"got {type(random_state).__name__}."
    )


@contextlib.contextmanager
def torch_seeded(seed: int) -> Iterator[None]:
    """Run a block with torch's global CPU RNG seeded, restoring its state afterwards."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


def torch_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A dedicated ``torch.Generator`` on ``device`` seeded with ``seed``."""
    import torch

    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed) % (2**63))
    return gen
