"""Old names kept for one release: they still work, with a warning that names the new one.

* Module paths. sktilt 0.2 moved the flat modules into the ``tilt``, ``avo`` and
  ``models`` subpackages (the way zuko's ``flows/core.py`` keeps its old path). Each old
  module is a stub whose module-level ``__getattr__`` (PEP 562) comes from :func:`moved`.
* Constructor parameters. A renamed parameter keeps its old name in the signature with
  the default :data:`DEPRECATED` (scikit-learn's way, so ``get_params``, ``clone`` and
  grid searches keep working); ``fit`` reads the value through :func:`renamed`, which
  takes an old name that was set, with a ``FutureWarning``.
"""

from __future__ import annotations

__all__ = ["DEPRECATED", "REMOVED_IN", "moved", "renamed"]

import importlib
import inspect
import warnings

#: The release in which the old paths go away.
REMOVED_IN = "0.3"

#: The default of a renamed parameter's old name: "not set".
DEPRECATED = "deprecated"


def renamed(estimator, new: str, old: str):
    """The value of ``estimator``'s parameter ``new``, or of its old name ``old`` if set.

    An old name that was set wins (a user's script that sets it keeps its meaning) and
    warns with a ``FutureWarning`` that names the new spelling; setting both is an error.
    """
    from ._utils import warn_at_caller

    value = getattr(estimator, old)
    if isinstance(value, str) and value == DEPRECATED:
        return getattr(estimator, new)
    owner = type(estimator).__name__
    default = inspect.signature(type(estimator)).parameters[new].default
    current = getattr(estimator, new)
    if not _same(current, default):
        raise ValueError(f"{owner} got both {new}={current!r} and its deprecated old "
                         f"name {old}={value!r}; set only {new}.")
    warn_at_caller(f"{owner}({old}=...) is deprecated and will be removed in sktilt "
                   f"{REMOVED_IN}; use {new}={value!r} instead.", FutureWarning)
    return value


def _same(a, b) -> bool:
    try:
        return bool(a == b) or (isinstance(a, (list, tuple)) and tuple(a) == tuple(b))
    except (TypeError, ValueError):
        return a is b


def moved(old: str, names: dict[str, str], removed: dict[str, str] | None = None):
    """``__getattr__`` and ``__dir__`` for the old module ``old``.

    Parameters
    ----------
    old : str
        The old module's name.
    names : dict of str -> str
        Each name still available, mapped to the module it lives in now.
    removed : dict of str -> str, optional
        Names that no longer exist, mapped to what replaces them.
    """
    removed = removed or {}

    def __getattr__(name: str):
        if name in names:
            warnings.warn(f"{old}.{name} moved to {names[name]}.{name}; the module {old} "
                          f"will be removed in sktilt {REMOVED_IN}.", DeprecationWarning,
                          stacklevel=2)
            return getattr(importlib.import_module(names[name]), name)
        if name in removed:
            raise AttributeError(f"{old}.{name} was removed in sktilt 0.2: {removed[name]}")
        raise AttributeError(f"module {old!r} has no attribute {name!r}")

    def __dir__():
        return sorted(names)

    return __getattr__, __dir__
