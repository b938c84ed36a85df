"""Old names kept for one release: they still work, with a warning that names the new one.

* Module paths. sktilt 0.2 moved the flat modules into the ``tilt``, ``avo`` and
  ``models`` subpackages (the way zuko's ``flows/core.py`` keeps its old path). Each old
  module is a stub whose module-level ``__getattr__`` (PEP 562) comes from :func:`moved`.
* Internals that were public. ``sktilt.tilt`` and ``sktilt.avo`` exported their
  building blocks (torch modules, schedules, helpers) next to the estimators; those names
  now live only in their private modules, and the packages' ``__getattr__`` (PEP 562),
  from :func:`made_private`, still resolves the old public spelling.
* Constructor parameters. A renamed parameter keeps its old name in the signature with
  the default :data:`DEPRECATED` (scikit-learn's way, so ``get_params``, ``clone`` and
  grid searches keep working); ``fit`` reads the value through :func:`renamed`, which
  takes an old name that was set, with a ``FutureWarning``.
"""

from __future__ import annotations

__all__ = ["DEPRECATED", "REMOVED_IN", "made_private", "moved", "renamed"]

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


def made_private(package: str, names: dict[str, str], public):
    """``__getattr__`` and ``__dir__`` for a package whose internals left its public API.

    Warns with a ``DeprecationWarning``, like :func:`moved`: both are about where code
    imports a name from, which concerns the developer who wrote the import (Python shows
    it for code run as ``__main__`` and under test runners), not the end user of a program
    that happens to use sktilt, whom a ``FutureWarning`` would reach.

    Parameters
    ----------
    package : str
        The package's name, e.g. ``"sktilt.avo"``.
    names : dict of str -> str
        Each name that left the public API, mapped to the private module it lives in.
    public : iterable of str
        The package's public names (its ``__all__``): all that ``dir()`` lists.
    """
    public = sorted(public)

    def __getattr__(name: str):
        if name in names:
            where = f"{names[name]}.{name}"
            warnings.warn(f"{package}.{name} is internal: it leaves the public API in "
                          f"sktilt {REMOVED_IN}, and lives privately in {where}, which may "
                          "change without notice.", DeprecationWarning, stacklevel=2)
            return getattr(importlib.import_module(names[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return list(public)

    return __getattr__, __dir__
