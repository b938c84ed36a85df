"""Pickles (joblib files) of sktilt estimators carry the version that wrote them.

A fitted estimator holds torch modules and private attributes whose layout changes
between minor versions before 1.0; unpickling one written by another minor version
would give an estimator that fails later, far from the cause, or silently differs. So
:class:`VersionedStateMixin` stores ``sktilt.__version__`` in the state and refuses, with
a clear error, a state from an incompatible version (another ``major.minor``).

joblib files are pickles: load only files you trust (a pickle can run code). The
``sktilt`` command's caches use JSON + weights-only torch files instead.
"""

from __future__ import annotations

__all__ = ["IncompatibleVersionError", "VersionedStateMixin", "compatible"]

_KEY = "_sktilt_version"


class IncompatibleVersionError(ValueError):
    """A pickled estimator was written by an incompatible sktilt version."""


def _release(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


def compatible(written: str, running: str) -> bool:
    """Whether a state written by sktilt ``written`` loads in ``running``: same major.minor."""
    return _release(written) == _release(running)


class VersionedStateMixin:
    """Adds ``sktilt.__version__`` to the pickled state and checks it on load."""

    def __getstate__(self):
        from . import __version__

        state = super().__getstate__()
        state = dict(state if state is not None else self.__dict__)
        state[_KEY] = __version__
        return state

    def __setstate__(self, state):
        from . import __version__

        written = state.pop(_KEY, None)
        if written is None or not compatible(written, __version__):
            raise IncompatibleVersionError(
                f"This {type(self).__name__} was saved by sktilt "
                f"{written or 'before 0.2'} and cannot be loaded by sktilt {__version__} "
                f"(fitted estimators load only within the same minor version). Refit it, "
                f"or load it with sktilt {written or '0.1'}.")
        super().__setstate__(state)
