"""Simulations with a timeout: each in a child process, abandoned when it runs too long.

With ``simulate(..., timeout=s)`` a joblib task (in a worker, or in the caller when
sequential) hands its simulations to a child process and waits for each result at most
``s`` seconds. A simulation still running then is recorded as a ``"timeout"`` failure
and the child (and any process it started) is killed; a child that dies is a
``"crashed"`` failure. The simulator travels to the child with cloudpickle, with every
task, so that each task simulates with a fresh copy of it, as without a timeout.

A child serves one thread of one process and outlives its task: the next task of that
thread sends it its batch instead of starting a process (which costs 0.1-0.3 s once the
package is imported, more than most simulations). So tasks can be small, and a hung
simulation holds up one task while the other workers carry on with the rest. A child
ends when it is killed (timeout, Ctrl-C, an error), when its parent dies, after
``_IDLE_SECONDS`` without work, or, in the caller's own process, when ``simulate``
returns (:func:`close_children`).
"""

from __future__ import annotations

__all__ = ["close_children", "run_batch_timed"]

import multiprocessing
import os
import pickle
import signal
import threading
import time
from dataclasses import dataclass

from .simulation import (
    _INTERRUPTS,
    SimulationError,
    SimulationFailure,
    _simulate_one,
    _simulate_vectorized,
)

# With a timeout: how long a fresh child may take to load the simulator before its
# first simulation starts (importing the simulator's module); not counted in timeout.
_STARTUP_SECONDS = 120.0
# A child with no work for this long ends itself: long enough to serve the next batch
# of an AVO fit (one training step away), short enough not to linger after a fit.
_IDLE_SECONDS = 5.0


# ------------------------------------------------------------------------- timeouts
# With a timeout, a task (in a joblib worker, or in the caller when sequential) runs its
# simulations in a child process and waits for each result at most `timeout` seconds.

_START_LOCK = threading.Lock()
_CONTEXT_STATE: dict = {}  # pid -> "forkserver" | "fork": per process, forks included


def _child_context():
    """The multiprocessing context for the children of this process.

    A fork server is safe in a multithreaded process (torch's, dask's) and cheap once
    started; daemonic pool workers are forked, single-threaded processes, so ``fork``
    is as safe there and avoids a fork server per worker; Windows has only ``spawn``.
    """
    methods = multiprocessing.get_all_start_methods()
    method = _CONTEXT_STATE.get(os.getpid())
    if method is None:
        if "forkserver" in methods and not multiprocessing.current_process().daemon:
            method = "forkserver"
            from multiprocessing import forkserver

            preload = list(getattr(getattr(forkserver, "_forkserver", None),
                                   "_preload_modules", None) or ["__main__"])
            # only effective before the server starts (it then serves all children)
            multiprocessing.get_context("forkserver").set_forkserver_preload(
                preload + [m for m in ("sktilt.simulation", "sktilt._timed")
                           if m not in preload])
        else:
            method = "fork" if "fork" in methods else "spawn"
        _CONTEXT_STATE[os.getpid()] = method
    return multiprocessing.get_context(method)


@dataclass
class _Child:
    """A simulation process and the parent's ends of its pipes."""

    proc: multiprocessing.process.BaseProcess
    results: object  # Connection: messages from the child
    alive: object  # Connection: closed (or the parent's death) tells the child to go
    commands: object  # Connection: batches to simulate
    session: object = None  # the simulate call it last served
    busy: bool = False


def _start_child() -> _Child:
    """Start ``_child_main(results_w, alive_r, commands_r)``."""
    for _ in range(2):
        ctx = _child_context()
        results_r, results_w = ctx.Pipe(duplex=False)
        alive_r, alive_w = ctx.Pipe(duplex=False)
        commands_r, commands_w = ctx.Pipe(duplex=False)
        ends = (results_r, results_w, alive_r, alive_w, commands_r, commands_w)
        proc = ctx.Process(target=_child_main, args=(results_w, alive_r, commands_r),
                           name="sktilt-simulation", daemon=True)
        me = multiprocessing.current_process()
        try:
            with _START_LOCK:
                # A daemonic pool worker may not have children: our child is killed with
                # its process group when done, abandoned, or when this process dies.
                daemonic = me.daemon
                if daemonic:
                    me.daemon = False
                try:
                    proc.start()
                finally:
                    if daemonic:
                        me.daemon = True
        except ChildProcessError:
            # A fork server inherited from the process we were forked from: not ours.
            for conn in ends:
                conn.close()
            _CONTEXT_STATE[os.getpid()] = "fork"
            continue
        for conn in (results_w, alive_r, commands_r):
            conn.close()
        return _Child(proc, results_r, alive_w, commands_w)
    raise RuntimeError("could not start a simulation process")  # pragma: no cover


# The children of this process, one per thread that ran timed tasks: (pid, thread id)
# -> _Child. The pid tells a forked process that its parent's children are not its own.
_CHILDREN: dict = {}
_CHILDREN_LOCK = threading.Lock()


def _take_child(session) -> tuple[_Child, bool]:
    """This thread's child (started if needed), marked busy; and whether it is fresh."""
    key = (os.getpid(), threading.get_ident())
    with _CHILDREN_LOCK:
        child = _CHILDREN.pop(key, None)
    fresh = child is None or child.proc.exitcode is not None
    if fresh:
        if child is not None:
            _stop_child(child, kill=True)
        child = _start_child()
    child.session, child.busy = session, True
    with _CHILDREN_LOCK:
        _CHILDREN[key] = child
    return child, fresh


def _drop_child(child: _Child, *, kill: bool) -> None:
    with _CHILDREN_LOCK:
        for key, value in list(_CHILDREN.items()):
            if value is child:
                del _CHILDREN[key]
    _stop_child(child, kill=kill)


def close_children(session) -> None:
    """End this process's idle children that served ``session`` (a ``simulate`` call).

    Called by ``simulate`` in the caller's process when it returns or raises, so that a
    sequential (or threading-backend) call leaves no process behind; workers' children
    end after ``_IDLE_SECONDS`` or with their worker.
    """
    with _CHILDREN_LOCK:
        mine = [(key, c) for key, c in _CHILDREN.items()
                if key[0] == os.getpid() and c.session == session and not c.busy]
        for key, _ in mine:
            del _CHILDREN[key]
    for _, child in mine:
        _stop_child(child, kill=False)


def _exit_when_orphaned(alive):
    """Child watchdog: the parent died (pipe at EOF): kill this process group."""
    try:
        alive.recv_bytes()
    except (EOFError, OSError):
        pass
    _kill_group(os.getpid())
    os._exit(1)


def _kill_group(pid):
    if hasattr(os, "killpg"):
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:  # not a group leader (yet), or the group is gone
            pass


def _child_main(results, alive, commands):
    """Child process: simulate the batches sent on ``commands``, each result as it comes.

    A batch is ``(payload, thetas, seeds, vectorized, n_features)``; the simulator is
    loaded from ``payload`` for every batch. Ends after ``_IDLE_SECONDS`` without one.
    """
    if hasattr(os, "setpgrp"):
        os.setpgrp()  # so that processes the simulator starts are killed with it
    threading.Thread(target=_exit_when_orphaned, args=(alive,), daemon=True).start()
    while True:
        try:
            if not commands.poll(_IDLE_SECONDS):
                return
            payload, thetas, seeds, vectorized, n_features = commands.recv()
        except (EOFError, OSError):  # the parent closed the pipe
            return
        try:
            simulator = pickle.loads(payload)
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            results.send(("load-error", f"{type(exc).__name__}: {exc}"))
            return
        results.send(("ready",))
        try:
            if vectorized:
                results.send(("all", _simulate_vectorized(simulator, thetas, seeds[0],
                                                          n_features)))
            else:
                for j, (theta, seed) in enumerate(zip(thetas, seeds)):
                    results.send(("one", j, _simulate_one(simulator, theta, seed,
                                                          n_features)))
        except _INTERRUPTS as exc:
            results.send(("raise", type(exc).__name__, str(exc)))
            return


_NOTHING = object()  # no message before the deadline
_DIED = object()  # the child's end of the pipe closed


# Longest single wait on a child's pipe. A SIGINT that the kernel hands to another thread
# only marks the signal pending, and the main thread acts on it when it next runs Python
# code: waiting in short slices makes Ctrl-C take effect within this many seconds.
_POLL_SLICE = 0.25


def _receive(conn, seconds):
    deadline = time.monotonic() + seconds
    try:
        while not conn.poll(min(_POLL_SLICE, max(0.0, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                return _NOTHING
        return conn.recv()
    except (EOFError, OSError):
        return _DIED


def _death(proc, *, starting=False) -> SimulationFailure:
    proc.join(1.0)
    code = proc.exitcode
    if code is not None and code < 0:
        try:
            how = f"killed by {signal.Signals(-code).name}"
        except ValueError:
            how = f"killed by signal {-code}"
    else:
        how = f"exit code {code}"
    if starting:  # typically a script without a main guard, imported again by the child
        return SimulationFailure(
            "crashed", f"the simulation's process died before loading the simulator "
            f"({how}); a script calling simulate(timeout=...) must guard its main code "
            "with `if __name__ == '__main__':` (multiprocessing's safe importing of main)")
    return SimulationFailure("crashed", f"the simulation's process died ({how})")


def _stop_child(child: _Child, *, kill: bool) -> None:
    proc = child.proc
    child.alive.close()  # the child's watchdog ends it if it is still there
    child.commands.close()
    if kill:
        _kill_group(proc.pid)
        proc.kill()
    proc.join(1.0)
    if proc.exitcode is None:  # pragma: no cover - wedged in teardown
        _kill_group(proc.pid)
        proc.kill()
        proc.join()
    child.results.close()
    proc.close()


_STALE = object()  # a reused child ended (idle) as its batch came: start a fresh one


def _drain(child: _Child, out, i, vectorized, timeout, *, fresh: bool):
    """Fill ``out[i:]`` from one child; return the index where a fresh child must resume
    (``len(out)`` when done) and whether the child must be killed, or ``_STALE``."""
    n = len(out)
    proc, conn = child.proc, child.results
    msg = _receive(conn, _STARTUP_SECONDS)
    if msg is _DIED and not fresh:
        return _STALE
    if msg is _NOTHING or msg is _DIED:
        failure = (_death(proc, starting=True) if msg is _DIED else SimulationFailure(
            "timeout", f"the simulation process did not start within {_STARTUP_SECONDS:g} "
            "s (loading the simulator)"))
        out[i:] = [failure] * (n - i)
        return n, True
    if msg[0] == "load-error":
        raise SimulationError(f"simulate(timeout=...) could not load the simulator in its "
                              f"process: {msg[1]}")
    first = i
    while i < n:
        msg = _receive(conn, timeout)  # the clock starts at the previous message
        if msg is _NOTHING or msg is _DIED:
            failure = (_death(proc) if msg is _DIED else SimulationFailure(
                "timeout", f"timeout: still running after {timeout:g} s, abandoned (its "
                "process was killed)"))
            if vectorized:
                out[:] = [failure] * n
                return n, True
            out[i] = failure
            return i + 1, True
        if msg[0] == "raise":
            raise {"KeyboardInterrupt": KeyboardInterrupt,
                   "GeneratorExit": GeneratorExit}[msg[1]](msg[2])
        if msg[0] == "all":
            out[:] = msg[1]
            return n, False
        out[first + msg[1]] = msg[2]
        i += 1
    return n, False


def run_batch_timed(payload, thetas, seeds, vectorized, n_features, timeout,
                    session=None):
    """Worker task with a deadline: like :func:`_run_batch`, each simulation (each call
    of a vectorized simulator) in a child process killed after ``timeout`` seconds.

    ``session`` names the ``simulate`` call, for :func:`close_children`.
    """
    out: list = [None] * len(thetas)
    i = 0
    while i < len(out):
        child, fresh = _take_child(session)
        kill = True
        try:
            try:
                child.commands.send((payload, thetas[i:], seeds if vectorized else seeds[i:],
                                     vectorized, n_features))
            except OSError:  # a reused child ended itself (idle): a fresh one takes over
                if fresh:
                    raise
                continue
            step = _drain(child, out, i, vectorized, timeout, fresh=fresh)
            if step is _STALE:
                continue
            i, kill = step
        finally:  # also on Ctrl-C: a child whose batch did not finish is killed
            if kill:
                _drop_child(child, kill=True)
            else:
                child.busy = False
    return out
