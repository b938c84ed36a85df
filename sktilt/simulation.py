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
parameters that caused them; a dead worker raises :class:`SimulationWorkerError`. Any
exception counts, ``SystemExit`` included; only ``KeyboardInterrupt`` (and
``GeneratorExit``) propagate, so that Ctrl-C stops the caller. With
``check_first=True`` (how a fit calls it first) the first simulation runs in the caller
before any worker starts, and a wrongly-shaped output there is a ``ValueError`` at once
rather than a batch of failures.

Timeouts (``simulate(..., timeout=s)``, the machinery in ``sktilt._timed``): each task
hands its simulations to a child process of the worker (of the caller when sequential),
which runs them one after the other, and the worker waits at most ``s`` seconds for
each; a simulation still running then is recorded as a ``"timeout"`` failure, the child
(and any process it started) is killed, and a fresh child carries on with the rest of
the batch. A hung simulator, in Python or in C or in an external program, therefore
cannot hang the caller. A child serves the next tasks of its worker too and ends after a
few idle seconds, so tasks are small (up to 64 per worker): hung simulations then hold
up one task each, spread over the workers, instead of queueing in one. Children come
from a fork server (``multiprocessing``'s ``"forkserver"``, which preloads this package
once per process, a few seconds; each child then costs about 20 ms), from ``fork`` in
daemonic pool workers, and from ``spawn`` where neither exists (Windows).

:class:`Simulator` holds a simulator function together with these settings (a
scikit-learn-style spec, as :class:`~sktilt.AVOSimulatorFitter` takes it).
"""

from __future__ import annotations

__all__ = [
    "FailureLog",
    "SimulationError",
    "SimulationFailure",
    "SimulationFailureWarning",
    "SimulationResult",
    "SimulationWorkerError",
    "Simulator",  # noqa: F822 (imported on first use, see __getattr__)
    "check_simulator_configuration",
    "simulate",
]

import dataclasses
import math
import os
import tempfile
import uuid
from concurrent.futures.process import BrokenProcessPool
from numbers import Real

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs

from ._random import as_seed_sequence


def __getattr__(name):
    # Simulator (a scikit-learn spec) is imported on first use: the fork server of timed
    # simulations preloads this module and need not import scikit-learn.
    if name == "Simulator":
        from ._simulator import Simulator

        globals()["Simulator"] = Simulator
        return Simulator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# Tasks per worker: enough to balance uneven simulation times, few enough that the
# per-task overhead (pickling, scheduling; ~1 ms with loky, more with dask) is small.
_TASKS_PER_WORKER = 4
# With a timeout, simulations that hang cost their timeout one after the other within
# a task: many small tasks spread them over the workers (one simulation per task up to
# this many tasks per worker). A task then costs about a millisecond with loky (its
# child process is reused, see sktilt._timed), ~10 ms with dask.
_TIMED_TASKS_PER_WORKER = 64
# Vectorized simulators get this many batches by default whatever n_jobs is, so the
# per-batch generators (hence the results) are the same for any n_jobs or backend.
_VECTORIZED_BATCHES = 8
# dtype kinds accepted as numbers (outputs and thetas): bool, signed and unsigned
# ints, floats. Strings, bytes, objects, complex numbers and dates are refused.
_NUMERIC_KINDS = "biuf"
# Exceptions that are not a failed simulation but a request to stop.
_INTERRUPTS = (KeyboardInterrupt, GeneratorExit)


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
    kind : {"exception", "not-numeric", "wrong-shape", "non-finite", "timeout", \
"crashed"}
        What went wrong: the simulator raised (any exception but ``KeyboardInterrupt``,
        ``SystemExit`` included), returned something that is not numbers (strings,
        bytes, ``None``, dicts, object or complex arrays; booleans count as numbers,
        0 and 1), returned the wrong shape, returned NaN/inf, was still running after
        ``timeout`` seconds, or (with a timeout only, where it runs in its own
        process) killed its process.
    message : str
        A human-readable description (``str(failure)``).
    theta : ndarray of shape (k,) or None
        The parameters of the failed simulation (set in the returned result; not
        compared).
    shape : tuple or None
        For a ``"wrong-shape"`` failure, the shape of what the simulator returned (of
        the whole batch, for a vectorized simulator); ``None`` otherwise (not compared).
    """

    kind: str
    message: str
    theta: np.ndarray | None = dataclasses.field(default=None, compare=False)
    shape: tuple | None = dataclasses.field(default=None, compare=False, repr=False)

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
            from ._utils import warn_at_caller  # imports torch: not in simulation workers

            warn_at_caller(
                f"{result.n_failed} simulation(s) failed and were dropped, e.g. "
                f"theta={result.failed_parameters[0].tolist()}: {result.errors[0]}. "
                "All failures are listed in failed_parameters_.",
                SimulationFailureWarning)
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


def _as_numbers(raw, what="output"):
    """``(float array, None)`` or ``(None, "not-numeric" failure)``.

    ``np.asarray(x, dtype=float)`` would parse strings (``"1.0"``) and call ``float``
    on objects; here only arrays of bools, ints or floats (and such scalars, lists,
    tensors, ...) are numbers.
    """
    try:
        arr = np.asarray(raw)
    except Exception as exc:  # noqa: BLE001 - ragged lists, tensors needing grad, ...
        return None, SimulationFailure(
            "not-numeric", f"{what} is not numeric ({type(exc).__name__}: {exc})")
    if arr.dtype.kind not in _NUMERIC_KINDS:
        return None, SimulationFailure(
            "not-numeric", f"{what} is not numeric ({type(raw).__name__} of dtype "
            f"{arr.dtype})")
    return arr.astype(float, copy=False), None


def _check_output(x, n_features):
    """Return ``(row, None)`` or ``(None, failure)`` for one simulator output."""
    x, failure = _as_numbers(x)
    if failure is not None:
        return None, failure
    if x.ndim == 0:
        x = x.reshape(1)
    if x.ndim != 1 or (n_features is not None and x.shape[0] != n_features):
        expected = f"({n_features},)" if n_features is not None else "1-D"
        return None, SimulationFailure("wrong-shape",
                                       f"output of shape {x.shape}, expected {expected}",
                                       shape=x.shape)
    if not np.all(np.isfinite(x)):
        return None, SimulationFailure("non-finite", "non-finite output (NaN or inf)")
    return x, None


def _raised(exc: BaseException) -> SimulationFailure:
    return SimulationFailure("exception", f"{type(exc).__name__}: {exc}")


def _simulate_one(simulator, theta, seed, n_features):
    """One simulation: a 1-D output array or a SimulationFailure."""
    try:
        raw = simulator(theta, np.random.default_rng(seed))
    except _INTERRUPTS:
        raise
    except BaseException as exc:  # noqa: BLE001 - a simulator may raise anything
        return _raised(exc)
    x, failure = _check_output(raw, n_features)
    return x if failure is None else failure


def _simulate_vectorized(simulator, thetas, seed, n_features):
    """One call of a vectorized simulator: per theta, an output row or a failure."""
    n = len(thetas)
    try:
        raw = simulator(thetas, np.random.default_rng(seed))
    except _INTERRUPTS:
        raise
    except BaseException as exc:  # noqa: BLE001
        return [_raised(exc)] * n
    out, failure = _as_numbers(raw, "vectorized output")
    if failure is not None:
        return [failure] * n
    if out.ndim == 1 and n_features == 1:
        out = out[:, None]
    if (out.ndim != 2 or out.shape[0] != n
            or (n_features is not None and out.shape[1] != n_features)):
        return [SimulationFailure(
            "wrong-shape", f"vectorized output of shape {out.shape}, expected "
            f"({n}, {n_features if n_features else 'n_features'})", shape=out.shape)] * n
    results = []
    for row in out:
        x, failure = _check_output(row, n_features)
        results.append(x if failure is None else failure)
    return results


def _run_batch(simulator, thetas, seeds, vectorized, n_features):
    """Worker task: simulate a batch, catching faults per simulation.

    Returns a list with, per theta, either a 1-D output array or a SimulationFailure.
    """
    if vectorized:
        return _simulate_vectorized(simulator, thetas, seeds[0], n_features)
    return [_simulate_one(simulator, theta, seed, n_features)
            for theta, seed in zip(thetas, seeds)]


def _is_worker_death(exc: BaseException) -> bool:
    if isinstance(exc, BrokenProcessPool):  # loky's TerminatedWorkerError derives from it
        return True
    # dask: distributed.scheduler.KilledWorker, without importing distributed.
    return type(exc).__name__ in ("KilledWorker", "TerminatedWorkerError")


def _check_thetas(thetas) -> np.ndarray:
    """``thetas`` as a float array of shape (n, k); a scalar or 1-D array is one theta."""
    expected = "thetas must be an array of shape (n, k), one parameter vector per row"
    try:
        arr = np.asarray(thetas)
    except Exception as exc:  # noqa: BLE001 - e.g. ragged rows
        raise ValueError(f"{expected}; could not make an array of it "
                         f"({type(exc).__name__}: {exc}).") from exc
    if arr.dtype.kind not in _NUMERIC_KINDS:
        raise ValueError(f"{expected}, of numbers; got {type(thetas).__name__} of dtype "
                         f"{arr.dtype}.")
    if arr.ndim > 2:
        raise ValueError(f"{expected} (or (k,) for a single theta); got an array of "
                         f"shape {arr.shape}.")
    arr = np.atleast_2d(arr.astype(float))
    if arr.shape[0] and arr.shape[1] == 0:
        raise ValueError(f"{expected} with k >= 1; got shape {arr.shape}, so the simulator "
                         "would get empty parameter vectors (pass shape (0, k) for no "
                         "simulations).")
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{expected}, finite; {int(bad.sum())} row(s) contain NaN or inf, "
                         f"e.g. row {row}: {arr[row].tolist()}.")
    return arr


def _cloudpickle():
    try:  # a dependency of joblib, vendored by older versions
        import cloudpickle
    except ImportError:  # pragma: no cover
        from joblib.externals import cloudpickle
    return cloudpickle


def _check_timeout(timeout):
    if timeout is None:
        return None
    if (isinstance(timeout, bool) or not isinstance(timeout, Real)
            or not 0 < timeout < math.inf):
        raise ValueError(f"timeout must be None or a positive number of seconds, got "
                         f"{timeout!r}.")
    return float(timeout)


def _memmapping_arguments() -> dict:
    """``Parallel`` arguments that keep joblib from leaving folders in /dev/shm.

    joblib 1.6's process backend creates an empty ``joblib_memmapping_folder_*`` in
    /dev/shm for every ``Parallel`` call that reuses the worker pool (the folder of a
    resource manager it then drops) and removes it only at interpreter exit: a fit of
    a few hundred batches piled up hundreds of them, and a killed process left them for
    good. Given a ``temp_folder`` it creates nothing up front; with ``max_nbytes=None``
    it maps no argument to a file at all, so nothing is written: the arguments here are
    parameter batches of a few kB, and a simulator object is pickled once per task
    (with ``timeout``, it already travels as bytes, which joblib never maps). What the
    caller set with ``joblib.parallel_config`` (or ``JOBLIB_TEMP_FOLDER``) is kept.
    """
    from joblib import parallel  # no public getter for the active configuration

    config = getattr(getattr(parallel, "_backend", None), "config", {})
    arguments = {}
    if not (os.environ.get("JOBLIB_TEMP_FOLDER")
            or isinstance(config.get("temp_folder"), str)):
        shm = "/dev/shm"  # joblib's own first choice, memory-backed
        arguments["temp_folder"] = (shm if os.path.isdir(shm) and os.access(shm, os.W_OK)
                                    else tempfile.gettempdir())
    if not isinstance(config.get("max_nbytes"), (int, str)):
        arguments["max_nbytes"] = None
    return arguments


def simulate(simulator, thetas, *, seed=None, n_jobs=None, vectorized=False,
             batch_size=None, n_features=None, on_failure="drop", timeout=None,
             check_first=False, verbose=0) -> SimulationResult:
    """Run ``simulator`` on each row of ``thetas``, in parallel and reproducibly.

    Parameters
    ----------
    simulator : callable
        ``simulator(theta (k,), random_state) -> x (n_features,)``, or with
        ``vectorized=True``, ``simulator(thetas (b, k), random_state) -> (b, n_features)``.
        ``random_state`` is a :class:`numpy.random.Generator`. Must be picklable for
        process-based backends (a module-level function or an object), and by
        cloudpickle (lambdas and closures are) when ``timeout`` is set.
    thetas : array-like of shape (n, k)
        Finite numbers, ``k >= 1``. A 1-D array (or a scalar) is a single theta, i.e.
        shape ``(1, k)``; shape ``(0, k)`` runs nothing.
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
    timeout : float or None
        Seconds a simulation (a call of a vectorized simulator, i.e. a whole batch) may
        run; one still running then is killed and recorded as a ``"timeout"`` failure.
        This works with every backend (sequential, threads, loky, multiprocessing,
        dask), because each task runs its simulations in a child process of the
        worker: a task of ``b`` simulations returns within about ``b * timeout``
        seconds whatever the simulator does, so the call cannot hang. The cost: a
        process per task (about 20 ms, plus one more after each timeout or crash) and,
        once per process that runs tasks, a fork server that imports this package (a
        few seconds). In that mode a simulator that kills its process (``os._exit``, a
        segfault, the OOM killer) is a ``"crashed"`` failure rather than a
        :class:`SimulationWorkerError`. ``None`` (default) runs the simulations in the
        workers, without a deadline. The seeds, hence the results of the simulations
        that finish, are the same with or without a timeout. As with
        :mod:`multiprocessing`, a script calling ``simulate`` with a timeout needs the
        ``if __name__ == "__main__":`` guard (otherwise each child fails to start).
    check_first : bool, default=False
        Run the first simulation (the first batch of a vectorized simulator) in the
        calling process, with the same seed and ``timeout``, before any worker starts,
        and raise a ``ValueError`` at once if its output has the wrong shape: a
        simulator that does not return ``n_features`` values per theta then stops the
        call in the time of one simulation, not after a whole parallel batch. Its other
        failures follow ``on_failure`` (``"raise"``: at once). The results are those
        without the check.
    verbose : int
        joblib verbosity.

    Returns
    -------
    SimulationResult

    Raises
    ------
    ValueError
        If ``thetas`` is not a finite array of shape (n, k) (or (k,)); with
        ``check_first``, if the first output has the wrong shape.
    SimulationWorkerError
        If a worker process died. Nothing is retried.
    KeyboardInterrupt
        Raised by the simulator or Ctrl-C: it stops the call (other exceptions of
        the simulator, ``SystemExit`` included, are failed simulations).
    """
    if not callable(simulator):
        raise TypeError(f"simulator must be callable, got {type(simulator).__name__}.")
    if on_failure not in ("drop", "raise"):
        raise ValueError(f"on_failure must be 'drop' or 'raise', got {on_failure!r}.")
    timeout = _check_timeout(timeout)
    thetas = _check_thetas(thetas)
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
            per_worker = _TASKS_PER_WORKER if timeout is None else _TIMED_TASKS_PER_WORKER
            batch_size = math.ceil(n / (per_worker * workers))
    batch_size = max(1, int(batch_size))
    # The tasks: (start, stop, seeds). One child seed per simulation (per batch when
    # vectorized), spawned up front in a fixed order, so that seeds never depend on
    # scheduling, nor on the first simulation running apart (check_first).
    if vectorized:
        starts = list(range(0, n, batch_size))
        parts = [(s, s + batch_size, [child])
                 for s, child in zip(starts, root.spawn(len(starts)))]
    else:
        children = root.spawn(n)
        starts = ([0] if check_first else []) + list(range(int(check_first), n, batch_size))
        parts = [(s, stop, children[s:stop]) for s, stop in zip(starts, starts[1:] + [n])]

    if timeout is None:
        task = _run_batch
        fixed: tuple = (simulator,)
        trailing: tuple = ()
    else:
        from ._timed import run_batch_timed  # the child-process machinery (imports this)

        try:  # once, here: a clear error, and the workers need not unpickle it
            payload = _cloudpickle().dumps(simulator)
        except Exception as exc:
            raise TypeError(f"simulate(timeout=...) runs the simulator in a separate "
                            f"process, so it must be picklable (by cloudpickle): "
                            f"{type(exc).__name__}: {exc}") from exc
        session = uuid.uuid4().hex  # names this call's children in this process
        task, fixed, trailing = run_batch_timed, (payload,), (timeout, session)

    def arguments(start, stop, seeds):
        return (*fixed, thetas[start:stop], seeds, vectorized, n_features, *trailing)

    outputs: list = []
    try:
        if check_first:  # here, before any worker starts
            outputs.extend(task(*arguments(*parts[0])))
            _check_first(simulator, outputs, thetas, vectorized, n_features, on_failure)
            parts = parts[1:]
        if parts:
            # Generator mode: batches that finished before a crash are kept.
            tasks = (delayed(task)(*arguments(*part)) for part in parts)
            for batch in Parallel(n_jobs=n_jobs, verbose=verbose, return_as="generator",
                                  **_memmapping_arguments())(tasks):
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
    finally:
        if timeout is not None:  # the children this call started here (sequential)
            from ._timed import close_children

            close_children(session)
    result = _collect(outputs, thetas, n_features)
    if on_failure == "raise" and result.n_failed:
        raise SimulationError(
            f"Simulation failed for theta={result.failed_parameters[0].tolist()}: "
            f"{result.errors[0]} ({result.n_failed} of {n} failed; pass "
            "on_failure='drop' to skip failed simulations).",
            result.failed_parameters, result.errors, result)
    return result


def _name(simulator) -> str:
    """How an error message names a simulator function."""
    name = getattr(simulator, "__qualname__", None) or type(simulator).__name__
    return repr(name)


def _check_first(simulator, outputs, thetas, vectorized, n_features, on_failure) -> None:
    """Judge the first simulation (the first batch of a vectorized simulator), run in the
    calling process before any worker: a wrong shape is a ``ValueError`` at once, other
    failures are raised at once with ``on_failure="raise"``."""
    first = outputs[0]
    if not isinstance(first, SimulationFailure):
        return
    m = len(outputs)
    if first.kind == "wrong-shape":
        width = n_features if n_features is not None else "n_features"
        got = first.shape
        if vectorized:
            want = f"({m}, {width})"
            fix = (f"return an array of shape (m, {width}), one row per parameter vector "
                   f"of the batch of shape (m, k) it is given (here m={m})")
            what = f"a batch of {m} parameter vectors"
        else:
            want = f"({width},)"
            fix = (f"return one observation, an array of shape ({width},), per call "
                   "(a number for a single feature)")
            if got is not None and n_features is not None and math.prod(got) == n_features:
                fix += f"; it has {n_features} values, so np.ravel(x) would do"
            what = f"theta={thetas[0].tolist()}"
        raise ValueError(
            f"The simulator {_name(simulator)} returned an output of shape {got} for "
            f"{what}, where {want} was expected (n_features={width}; in a fit, the "
            f"observations' number of columns): {fix}. This is the first simulation, "
            "checked in the calling process before any worker started.")
    if on_failure == "raise":
        result = _collect(outputs, thetas[:m], n_features)
        raise SimulationError(
            f"Simulation failed for theta={result.failed_parameters[0].tolist()}: "
            f"{result.errors[0]} (the first simulation, run before any worker started; "
            "pass on_failure='drop' to skip failed simulations).",
            result.failed_parameters, result.errors, result)


def _collect(outputs, thetas, n_features) -> SimulationResult:
    if n_features is None:
        # Unknown width: the first successful output sets it, others are failures.
        first = next((o for o in outputs if not isinstance(o, SimulationFailure)), None)
        if first is not None:
            n_features = first.shape[0]
            outputs = [o if isinstance(o, SimulationFailure) or o.shape[0] == n_features
                       else SimulationFailure("wrong-shape", f"output of shape {o.shape}, "
                                              f"expected ({n_features},)", shape=o.shape)
                       for o in outputs]
    ok = np.array([not isinstance(o, SimulationFailure) for o in outputs], dtype=bool)
    rows = [o for o, good in zip(outputs, ok) if good]
    X = np.stack(rows) if rows else np.empty((0, n_features or 0))
    failed = thetas[~ok]
    failures = [dataclasses.replace(o, theta=theta.copy())
                for o, theta in zip((o for o, good in zip(outputs, ok) if not good), failed)]
    return SimulationResult(X, ok, failed, failures)


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
