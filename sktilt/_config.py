"""Library-wide settings, and the torch thread limit applied inside the library's fits.

torch runs its CPU operations on a pool of intra-op threads, one per core by default.
The library's models are small (flows, critics and proposals of a few thousand
weights), so the threads mostly wait on each other, and on a machine whose other
cores are busy they wait on the scheduler too: ``benchmarks/bench_threads.py`` times
the quickstarts with one thread against torch's default. The estimators therefore run
their fits and samplings under :func:`torch_threads`, which sets
``torch.set_num_threads`` to ``get_config()["torch_threads"]`` and gives the caller
back its own setting on exit (on an exception or ``KeyboardInterrupt`` too), as
threadpoolctl does for BLAS. ``None`` leaves torch alone.

The default comes from the environment variable ``SKTILT_TORCH_THREADS`` (a positive
integer, or ``none``), else :data:`DEFAULT_TORCH_THREADS`; :func:`set_config` and
:func:`config_context` change it at run time.
"""

from __future__ import annotations

__all__ = ["DEFAULT_TORCH_THREADS", "config_context", "get_config", "set_config",
           "torch_threads"]

import contextlib
import os
import threading
from collections.abc import Iterator
from numbers import Integral

import torch

# Chosen by benchmarks/bench_threads.py: one thread beat torch's default in every case
# it measures, with the other cores idle and busy.
DEFAULT_TORCH_THREADS = 1
_ENV = "SKTILT_TORCH_THREADS"


def _check_threads(value, what: str = "torch_threads") -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{what} must be a positive integer or None (leave torch's "
                         f"setting alone), got {value!r}.")
    return int(value)


def _from_environment() -> int | None:
    text = os.environ.get(_ENV, "").strip()
    if not text:
        return DEFAULT_TORCH_THREADS
    if text.lower() == "none":
        return None
    try:
        value = int(text)
    except ValueError:
        value = text
    return _check_threads(value, f"the environment variable {_ENV}")


_config = {"torch_threads": _from_environment()}


def get_config() -> dict:
    """The library's settings, as a new dict.

    Returns
    -------
    config : dict
        ``torch_threads`` (int or None): torch intra-op threads inside the library's
        fits and samplings; ``None`` leaves torch's setting alone.
    """
    return dict(_config)


def set_config(*, torch_threads: int | None | str = "unchanged") -> None:
    """Change the library's settings for this process.

    Parameters
    ----------
    torch_threads : int or None
        torch intra-op threads that the estimators use while they fit and sample (the
        caller's setting is restored afterwards); ``None`` leaves torch alone (use
        ``torch.set_num_threads`` yourself). Omitted: unchanged.
    """
    if torch_threads != "unchanged":
        _config["torch_threads"] = _check_threads(torch_threads)


@contextlib.contextmanager
def config_context(*, torch_threads: int | None | str = "unchanged") -> Iterator[None]:
    """Change the library's settings within a ``with`` block.

    Parameters
    ----------
    torch_threads : int or None
        As in :func:`set_config`; the previous settings come back when the block ends.

    Examples
    --------
    >>> import sktilt
    >>> with sktilt.config_context(torch_threads=None):  # torch's own thread setting
    ...     sktilt.get_config()["torch_threads"] is None
    True
    """
    old = get_config()
    set_config(torch_threads=torch_threads)
    try:
        yield
    finally:
        _config.update(old)


# torch's thread count is one per process: fits running at once in several threads (a
# grid search on joblib's threading backend) share it. The first fit to enter saves the
# caller's setting and the last to leave restores it.
_LOCK = threading.Lock()
_active = {"depth": 0, "saved": None}


@contextlib.contextmanager
def torch_threads(n: int | None | str = "config") -> Iterator[None]:
    """Run a block with ``n`` torch intra-op threads, then restore the caller's setting.

    Parameters
    ----------
    n : int, None or "config", default="config"
        Threads to use; ``None`` leaves torch alone; ``"config"`` reads
        ``get_config()["torch_threads"]``.
    """
    n = _config["torch_threads"] if n == "config" else _check_threads(n)
    if n is None:
        yield
        return
    with _LOCK:
        previous = torch.get_num_threads()
        if _active["depth"] == 0:
            _active["saved"] = previous
        _active["depth"] += 1
        if previous != n:  # a nested fit usually finds n already set
            torch.set_num_threads(n)
    try:
        yield
    finally:
        with _LOCK:
            _active["depth"] -= 1
            back = _active["saved"] if _active["depth"] == 0 else previous
            if torch.get_num_threads() != back:
                torch.set_num_threads(back)

