"""Reproducible, fault-tolerant parallel simulation with joblib.

:func:`simulate` runs a black-box simulator on many parameter vectors with
:class:`joblib.Parallel`, which picks up whatever backend the caller configured
(``loky`` processes by default, or a dask cluster through
``with joblib.parallel_config(backend="dask"):``); no backend is hard-coded here.

Reproducibility: each simulation ``i`` gets its own generator
``np.random.default_rng(children[i])`` from ``SeedSequence.spawn``, so a result does
not depend on which worker ran it, in which order, or how many workers there were.
A *vectorized* simulator receives one generator per batch, so its results depend on
the batch partition, which is a function of the number of simulations and
``batch_size`` only, never of ``n_jobs`` or the backend.

Faults (an exception, NaN/inf, a non-numeric or wrongly-shaped output) are caught in
the worker, per simulation, and returned as :class:`SimulationFailure` records with the
parameters that caused them; a dead worker raises :class:`SimulationWorkerError`.
"""

from __future__ import annotations

__all__ = [
    "FailureLog",
    "SimulationError",
    "SimulationFailure",
    "SimulationFailureWarning",
    "SimulationResult",
    "SimulationWorkerError",
    "check_simulator_configuration",
    "simulate",
]

import dataclasses
import math
import warnings
from concurrent.futures.process import BrokenProcessPool

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs

from ._random import as_seed_sequence

# Tasks per worker: enough to balance uneven simulation times, few enough that the
# per-task overhead (pickling, scheduling; ~1 ms with loky, more with dask) is small.
_TASKS_PER_WORKER = 4
# Vectorized simulators get this many batches by default whatever n_jobs is, so the
# per-batch generators (hence the results) are the same for any n_jobs or backend.
_VECTORIZED_BATCHES = 8


class SimulationError(RuntimeError):
    """Simulations failed (``on_failure="raise"``, or too many failures).

    Attributes
    ----------
    failed_parameters : ndarray of shape (n_failed, k)
    errors : list of str
        One message per failed simulation.
    result : SimulationResult or None
        What was computed, when available.
    """

    def __init__(self, message, failed_parameters=None, errors=(), result=None):
        super().__init__(message)
        self.failed_parameters = failed_parameters
        self.errors = list(errors)
        self.result = result


class SimulationWorkerError(SimulationError):
    """A worker process died (killed, segfault, out of memory); not retried."""


@dataclasses.dataclass(frozen=True)
class SimulationFailure:
    """Why one simulation failed.

    Attributes
    ----------
    kind : {"exception", "not-numeric", "wrong-shape", "non-finite"}
        What went wrong: the simulator raised, returned something that is not an array
        of numbers, returned the wrong shape, or returned NaN/inf.
    message : str
        A human-readable description (``str(failure)``).
    """

    kind: str
    message: str

    def __str__(self) -> str:
        return self.message


@dataclasses.dataclass
class SimulationResult:
    """Outcome of :func:`simulate`.

    Attributes
    ----------
    X : ndarray of shape (n_ok, n_features)
        Outputs of the successful simulations, in input order.
    ok : ndarray of bool, shape (n,)
        Which input rows succeeded.
    failed_parameters : ndarray of shape (n_failed, k)
    failures : list of SimulationFailure
        One record per failed simulation, in input order.
    """

    X: np.ndarray
    ok: np.ndarray
    failed_parameters: np.ndarray
    failures: list

    @property
    def errors(self) -> list[str]:
        """The failures' messages (``"ExceptionType: message"``, a shape message, ...)."""
        return [str(f) for f in self.failures]

    @property
    def n_failed(self) -> int:
        return int((~self.ok).sum())

    @classmethod
    def concatenate(cls, results) -> SimulationResult:
        """Join results of consecutive ``simulate`` calls, in order."""
        results = list(results)
        return cls(np.concatenate([r.X for r in results]),
                   np.concatenate([r.ok for r in results]),
                   np.concatenate([r.failed_parameters for r in results]),
                   [f for r in results for f in r.failures])


class SimulationFailureWarning(UserWarning):
    """Some simulations failed and were dropped (``on_failure="drop"``)."""


@dataclasses.dataclass
class FailureLog:
    """The failed simulations of a fit: counted, kept with their parameters, warned once."""

    max_fraction: float
    n_simulations: int = 0
    n_failed: int = 0
    parameters: list = dataclasses.field(default_factory=list)
    messages: list = dataclasses.field(default_factory=list)
    warned: bool = False

    def record(self, thetas: np.ndarray, result: SimulationResult) -> None:
        """Book-keep one batch; warn at the first failure; stop above ``max_fraction``."""
        self.n_simulations += len(thetas)
        if not result.n_failed:
            return
        self.parameters.append(result.failed_parameters)
        self.messages.extend(result.errors)
        self.n_failed += result.n_failed
        if not self.warned:
            warnings.warn(
                f"{result.n_failed} simulation(s) failed and were dropped, e.g. "
                f"theta={result.failed_parameters[0].tolist()}: {result.errors[0]}. "
                "All failures are listed in failed_parameters_.",
                SimulationFailureWarning, stacklevel=4)
            self.warned = True
        if self.n_failed > self.max_fraction * self.n_simulations:
            raise SimulationError(
                f"{self.n_failed} of {self.n_simulations} simulations failed, more than "
                f"max_failure_fraction={self.max_fraction}; last error: "
                f"{self.messages[-1]}", self.failed_array(), self.messages)

    def failed_array(self, n_params: int = 0) -> np.ndarray:
        """All failed parameters, shape (n_failed, n_params)."""
        return (np.concatenate(self.parameters) if self.parameters
                else np.empty((0, n_params)))


def _check_output(x, n_features):
    """Return ``(row, None)`` or ``(None, failure)`` for one simulator output."""
    try:
        x = np.asarray(x, dtype=float)
    except (TypeError, ValueError) as exc:
        return None, SimulationFailure(
            "not-numeric", f"output is not numeric ({type(exc).__name__}: {exc})")
    if x.ndim == 0:
        x = x.reshape(1)
    if x.ndim != 1 or (n_features is not None and x.shape[0] != n_features):
        expected = f"({n_features},)" if n_features is not None else "1-D"
        return None, SimulationFailure("wrong-shape",
                                       f"output of shape {x.shape}, expected {expected}")
    if not np.all(np.isfinite(x)):
        return None, SimulationFailure("non-finite", "non-finite output (NaN or inf)")
    return x, None


def _raised(exc: BaseException) -> SimulationFailure:
    return SimulationFailure("exception", f"{type(exc).__name__}: {exc}")


def _run_batch(simulator, thetas, seeds, vectorized, n_features):
    """Worker task: simulate a batch, catching faults per simulation.

    Returns a list with, per theta, either a 1-D output array or a SimulationFailure.
    """
    if vectorized:
        rng = np.random.default_rng(seeds[0])
        try:
            raw = simulator(thetas, rng)
        except Exception as exc:  # noqa: BLE001 - a simulator may raise anything
            return [_raised(exc)] * len(thetas)
        try:
            out = np.asarray(raw, dtype=float)
        except (TypeError, ValueError) as exc:
            return [SimulationFailure("not-numeric", f"vectorized output is not numeric "
                                      f"({type(exc).__name__}: {exc})")] * len(thetas)
        if out.ndim == 1 and n_features == 1:
            out = out[:, None]
        if out.ndim != 2 or out.shape[0] != len(thetas):
            return [SimulationFailure(
                "wrong-shape", f"vectorized output of shape {out.shape}, expected "
                f"({len(thetas)}, {n_features if n_features else 'n_features'})")
            ] * len(thetas)
        results = []
        for row in out:
            x, failure = _check_output(row, n_features)
            results.append(x if failure is None else failure)
        return results
    results = []
    for theta, seed in zip(thetas, seeds):
        try:
            raw = simulator(theta, np.random.default_rng(seed))
        except Exception as exc:  # noqa: BLE001
            results.append(_raised(exc))
            continue
        x, failure = _check_output(raw, n_features)
        results.append(x if failure is None else failure)
    return results


def _is_worker_death(exc: BaseException) -> bool:
    if isinstance(exc, BrokenProcessPool):  # loky's TerminatedWorkerError derives from it
        return True
    # dask: distributed.scheduler.KilledWorker, without importing distributed.
    return type(exc).__name__ in ("KilledWorker", "TerminatedWorkerError")


def simulate(simulator, thetas, *, seed=None, n_jobs=None, vectorized=False,
             batch_size=None, n_features=None, on_failure="drop",
             verbose=0) -> SimulationResult:
    """Run ``simulator`` on each row of ``thetas``, in parallel and reproducibly.

    Parameters
    ----------
    simulator : callable
        ``simulator(theta (k,), random_state) -> x (n_features,)``, or with
        ``vectorized=True``, ``simulator(thetas (b, k), random_state) -> (b, n_features)``.
        ``random_state`` is a :class:`numpy.random.Generator`. Must be picklable for
        process-based backends (a module-level function or an object).
    thetas : array-like of shape (n, k)
    seed : int, SeedSequence, Generator or None
        Root of the per-simulation seeds (``SeedSequence.spawn``).
    n_jobs : int or None
        Passed to :class:`joblib.Parallel`; ``None`` defers to
        :func:`joblib.parallel_config` (sequential by default).
    vectorized : bool
        Whether ``simulator`` takes a batch of parameters.
    batch_size : int or None
        Simulations per joblib task. Default: ``n / (4 * n_workers)`` for a
        per-theta simulator, ``n / 8`` for a vectorized one (independent of
        ``n_jobs``, so that the results are).
    n_features : int or None
        Expected output length; other shapes are failures.
    on_failure : {"drop", "raise"}
        ``"drop"`` returns the failures in the result; ``"raise"`` raises
        :class:`SimulationError` naming the first failed theta.
    verbose : int
        joblib verbosity.

    Returns
    -------
    SimulationResult

    Raises
    ------
    SimulationWorkerError
        If a worker process died. Nothing is retried.
    """
    if not callable(simulator):
        raise TypeError(f"simulator must be callable, got {type(simulator).__name__}.")
    if on_failure not in ("drop", "raise"):
        raise ValueError(f"on_failure must be 'drop' or 'raise', got {on_failure!r}.")
    thetas = np.atleast_2d(np.asarray(thetas, dtype=float))
    n = thetas.shape[0]
    root = as_seed_sequence(seed)
    if n == 0:
        return SimulationResult(np.empty((0, n_features or 0)), np.zeros(0, bool),
                                np.empty((0, thetas.shape[1])), [])
    if batch_size is None:
        if vectorized:
            batch_size = math.ceil(n / _VECTORIZED_BATCHES)
        else:
            workers = max(1, effective_n_jobs(n_jobs))
            batch_size = math.ceil(n / (_TASKS_PER_WORKER * workers))
    batch_size = max(1, int(batch_size))
    starts = list(range(0, n, batch_size))
    # One child per simulation (per batch when vectorized): spawned up front, in a
    # fixed order, so that seeds never depend on scheduling.
    children = root.spawn(len(starts) if vectorized else n)

    def seeds_for(i, start):
        return [children[i]] if vectorized else children[start:start + batch_size]

    tasks = (delayed(_run_batch)(simulator, thetas[s:s + batch_size], seeds_for(i, s),
                                 vectorized, n_features)
             for i, s in enumerate(starts))
    outputs: list = []
    try:
        # Generator mode: batches that finished before a crash are kept.
        for batch in Parallel(n_jobs=n_jobs, verbose=verbose, return_as="generator")(tasks):
            outputs.extend(batch)
    except Exception as exc:
        if not _is_worker_death(exc):
            raise
        partial = _collect(outputs, thetas[:len(outputs)], n_features)
        raise SimulationWorkerError(
            f"A simulation worker died ({_raised(exc)}) after {len(outputs)} of {n} "
            "simulations; this is usually a crash or memory exhaustion inside the "
            "simulator. It is not retried.", partial.failed_parameters,
            partial.errors, partial) from exc
    result = _collect(outputs, thetas, n_features)
    if on_failure == "raise" and result.n_failed:
        raise SimulationError(
            f"Simulation failed for theta={result.failed_parameters[0].tolist()}: "
            f"{result.errors[0]} ({result.n_failed} of {n} failed; pass "
            "on_failure='drop' to skip failed simulations).",
            result.failed_parameters, result.errors, result)
    return result


def _collect(outputs, thetas, n_features) -> SimulationResult:
    if n_features is None:
        # Unknown width: the first successful output sets it, others are failures.
        first = next((o for o in outputs if not isinstance(o, SimulationFailure)), None)
        if first is not None:
            n_features = first.shape[0]
            outputs = [o if isinstance(o, SimulationFailure) or o.shape[0] == n_features
                       else SimulationFailure("wrong-shape", f"output of shape {o.shape}, "
                                              f"expected ({n_features},)")
                       for o in outputs]
    ok = np.array([not isinstance(o, SimulationFailure) for o in outputs], dtype=bool)
    rows = [o for o, good in zip(outputs, ok) if good]
    X = np.stack(rows) if rows else np.empty((0, n_features or 0))
    failures = [o for o, good in zip(outputs, ok) if not good]
    return SimulationResult(X, ok, thetas[~ok], failures)


def check_simulator_configuration(result: SimulationResult, n_params: int,
                                  n_features: int) -> None:
    """Turn a first batch where *every* simulation failed into a clear ``ValueError``.

    Such a batch almost always means a configuration error: the simulator's output does
    not have ``n_features`` entries, or it does not accept parameter vectors of the
    proposal's dimension.
    """
    if result.ok.any():
        return
    if all(f.kind == "wrong-shape" for f in result.failures):
        raise ValueError(
            f"X has n_features={n_features} but the simulator's outputs do not match: "
            f"{result.failures[0]}. The observations' columns must be what the simulator "
            "returns.")
    raise ValueError(
        f"Every simulation of the first batch failed, e.g. {str(result.failures[0])!r}. "
        f"Check that the simulator accepts parameter vectors of the proposal's dimension "
        f"({n_params}) and returns arrays of shape ({n_features},).")
