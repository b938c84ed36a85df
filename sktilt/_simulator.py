"""The :class:`~sktilt.simulation.Simulator` spec (exported from :mod:`sktilt.simulation`).

It lives apart from :mod:`sktilt.simulation` so that the fork server of timed
simulations, which preloads that module, does not import scikit-learn.
"""

from __future__ import annotations

__all__ = ["Simulator"]

from collections.abc import Callable
from numbers import Real
from typing import Literal

from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, StrOptions


class Simulator(BaseEstimator):
    """A black-box simulator and how to run it.

    A scikit-learn-style spec (``get_params``, ``clone``, nested ``simulator__...``
    parameters in a grid search) holding the function and the settings of
    :func:`sktilt.simulate`. :class:`~sktilt.AVOSimulatorFitter` takes one as its
    ``simulator``; a plain callable there means ``Simulator(function)``.

    Parameters
    ----------
    function : callable
        ``function(theta, random_state) -> x``: ``theta`` a 1-D array of shape
        ``(n_params,)``, ``random_state`` a :class:`numpy.random.Generator`, ``x`` one
        observation of shape ``(n_features,)``. With ``vectorized=True``,
        ``function(thetas (m, n_params), random_state) -> (m, n_features)``. Must be
        picklable (module level, or an object) for process-based joblib backends, and by
        cloudpickle when ``timeout`` is set.
    vectorized : bool, default=False
        Whether ``function`` takes a batch of parameters.
    timeout : float or None, default=None
        Seconds a simulation (a batch, for a vectorized simulator) may run before it is
        abandoned and recorded as a ``"timeout"`` failure with its theta
        (:func:`sktilt.simulate`); simulations then run in child processes, for
        ``n_jobs=1`` too. ``None``: no limit.
    on_failure : {"drop", "raise"}, default="drop"
        What a failed simulation (exception, NaN/inf, wrong shape) does: dropped,
        counted and recorded with one warning per fit, or raised. A fit's first
        simulation (first batch, vectorized) runs in the calling process before any
        worker starts; an output of the wrong shape there stops the fit at once with a
        ``ValueError`` (``simulate(check_first=True)``), and with ``"raise"`` so does any
        other failure of it.
    max_failure_fraction : float in [0, 1], default=0.5
        With ``"drop"``, more failures than this fraction of all simulations stops a fit
        with a :class:`~sktilt.simulation.SimulationError`.
    common_random_numbers : bool, default=False
        Draw parameters in mirrored pairs ``loc +- L eps`` (antithetic sampling) whose
        two simulations share their seeds, so that the score-function gradient compares
        the pair like a finite difference. Helps simulators whose output is a smooth
        function of ``theta`` for fixed seeds; a fit rounds its batch size down to an
        even number.

    Attributes
    ----------
    n_parameters : int or None
        ``function.n_parameters`` where the function declares it (the simulators of
        :mod:`sktilt.datasets` do), else ``None``.

    Examples
    --------
    >>> import numpy as np
    >>> from sktilt.simulation import Simulator
    >>> def shifted_noise(thetas, random_state):
    ...     return thetas + random_state.standard_normal(thetas.shape)
    >>> sim = Simulator(shifted_noise, vectorized=True)
    >>> sim(np.zeros((3, 1)), np.random.default_rng(0)).shape
    (3, 1)
    """

    _parameter_constraints: dict = {
        "function": [callable],
        "vectorized": ["boolean"],
        "timeout": [Interval(Real, 0, None, closed="neither"), None],
        "on_failure": [StrOptions({"drop", "raise"})],
        "max_failure_fraction": [Interval(Real, 0, 1, closed="both")],
        "common_random_numbers": ["boolean"],
    }

    def __init__(self, function: Callable[..., ArrayLike], *, vectorized: bool = False,
                 timeout: float | None = None,
                 on_failure: Literal["drop", "raise"] = "drop",
                 max_failure_fraction: float = 0.5,
                 common_random_numbers: bool = False) -> None:
        self.function = function
        self.vectorized = vectorized
        self.timeout = timeout
        self.on_failure = on_failure
        self.max_failure_fraction = max_failure_fraction
        self.common_random_numbers = common_random_numbers

    def __call__(self, theta, random_state):
        """``function(theta, random_state)``."""
        return self.function(theta, random_state)

    @property
    def n_parameters(self) -> int | None:
        """The function's ``n_parameters`` where it declares one, else ``None``."""
        return getattr(self.function, "n_parameters", None)

    def check(self) -> Simulator:
        """Validate the parameters; return ``self``."""
        self._validate_params()
        return self
