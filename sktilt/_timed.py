"""Simulations with a timeout: each in a child process, abandoned when it runs too long.

With ``simulate(..., timeout=s)`` a joblib task (in a worker, or in the caller when
sequential) runs its simulations in a child process and waits for each result at most
``s`` seconds. A simulation still running then is recorded as a ``"timeout"`` failure
and the child (and any process it started) is killed; a child that dies is a
``"crashed"`` failure. The simulator travels to the child with cloudpickle.
"""

from __future__ import annotations

__all__ = ["run_batch_timed"]

import multiprocessing
import os
import pickle
import signal
import threading
import time

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
                preload + [m for m in ("sktilt.simulation",) if m not in preload])
        else:
            method = "fork" if "fork" in methods else "spawn"
        _CONTEXT_STATE[os.getpid()] = method
    return multiprocessing.get_context(method)


def _start_child(args):
    """Start ``_child_main(results_w, alive_r, *args)``; return (process, results_r, alive_w)."""
    for _ in range(2):
        ctx = _child_context()
        results_r, results_w = ctx.Pipe(duplex=False)
        alive_r, alive_w = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_child_main, args=(results_w, alive_r, *args),
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
            for conn in (results_r, results_w, alive_r, alive_w):
                conn.close()
            _CONTEXT_STATE[os.getpid()] = "fork"
            continue
        results_w.close()
        alive_r.close()
        return proc, results_r, alive_w
    raise RuntimeError("could not start a simulation process")  # pragma: no cover


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


def _child_main(results, alive, payload, thetas, seeds, vectorized, n_features):
    """Child process: load the simulator, simulate, send each result as it comes."""
    if hasattr(os, "setpgrp"):
        os.setpgrp()  # so that processes the simulator starts are killed with it
    threading.Thread(target=_exit_when_orphaned, args=(alive,), daemon=True).start()
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
                results.send(("one", j, _simulate_one(simulator, theta, seed, n_features)))
    except _INTERRUPTS as exc:
        results.send(("raise", type(exc).__name__, str(exc)))


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


def _stop_child(proc, results, alive, *, kill):
    alive.close()  # the child's watchdog ends it if it is still there
    if kill:
        _kill_group(proc.pid)
        proc.kill()
    proc.join(1.0)
    if proc.exitcode is None:  # pragma: no cover - wedged in teardown
        _kill_group(proc.pid)
        proc.kill()
        proc.join()
    results.close()
    proc.close()


def _drain(proc, conn, out, i, vectorized, timeout):
    """Fill ``out[i:]`` from one child; return the index where a fresh child must resume
    (``len(out)`` when done) and whether the child must be killed."""
    n = len(out)
    msg = _receive(conn, _STARTUP_SECONDS)
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


def run_batch_timed(payload, thetas, seeds, vectorized, n_features, timeout):
    """Worker task with a deadline: like :func:`_run_batch`, each simulation (each call
    of a vectorized simulator) in a child process killed after ``timeout`` seconds."""
    out: list = [None] * len(thetas)
    i = 0
    while i < len(out):
        proc, conn, alive = _start_child(
            (payload, thetas[i:], seeds if vectorized else seeds[i:], vectorized,
             n_features))
        kill = True
        try:
            i, kill = _drain(proc, conn, out, i, vectorized, timeout)
        finally:  # also on Ctrl-C: no child outlives the call
            _stop_child(proc, conn, alive, kill=kill)
    return out
