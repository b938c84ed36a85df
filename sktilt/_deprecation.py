"""Old module paths kept for one release: their names resolve, with a DeprecationWarning.

sktilt 0.2 moved the flat modules into the ``tilt``, ``avo`` and ``models`` subpackages
(the way zuko's ``flows/core.py`` keeps its old path). Each old module is a stub whose
module-level ``__getattr__`` (PEP 562) comes from :func:`moved`.
"""

from __future__ import annotations

__all__ = ["moved"]

import importlib
import warnings

#: The release in which the old paths go away.
REMOVED_IN = "0.3"


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
