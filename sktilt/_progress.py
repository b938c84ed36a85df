"""A sign of life for long fits at ``verbose=0``: one self-overwriting line on a terminal.

scikit-learn's ``verbose=0`` means no log output, and a fit of a slow simulator can then
sit silent for minutes. :class:`ProgressLine` shows a single status line (``"AVO:
update 12/40, 8 320 of 20 000 simulations, 14 s"``) once the work has run for
:data:`DELAY_SECONDS`, rewrites it in place at most every :data:`INTERVAL_SECONDS`, and
erases it when the work ends (or, on an error or Ctrl-C, ends it with a newline so that
the traceback starts on a line of its own). It writes only where the stream is an
interactive terminal (``isatty()``), from the main thread of the main process, one line
at a time: nothing in logs, CI, notebooks, joblib or dask workers, or a fit nested in
another's.

What is shown and when are separate: :meth:`ProgressLine.update` sets the status (a
string, or a callable read at each refresh, so that counts move between updates); a
daemon thread (``ticker``) refreshes the elapsed time every second while the caller is
busy in one long step. ``stream``, ``clock`` and ``ticker`` are injectable for tests.
"""

from __future__ import annotations

__all__ = ["DELAY_SECONDS", "INTERVAL_SECONDS", "ProgressLine", "format_count",
           "format_seconds"]

import multiprocessing
import shutil
import sys
import threading
import time
from collections.abc import Callable

#: A line appears only after the work has run this long (seconds).
DELAY_SECONDS = 10.0
#: It is rewritten at most this often (seconds).
INTERVAL_SECONDS = 1.0

# One line per process: a second ProgressLine (a fit inside a fit, fits in threads)
# stays silent while one is open.
_ONE_LINE = threading.Lock()


def format_count(n: int) -> str:
    """``8320`` -> ``"8 320"`` (groups of three digits, separated by spaces)."""
    return f"{int(n):,}".replace(",", " ")


def format_seconds(seconds: float) -> str:
    """``14.2`` -> ``"14 s"``, ``100`` -> ``"1 min 40 s"``, ``3725`` -> ``"1 h 02 min"``."""
    s = int(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def _interactive(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


class ProgressLine:
    """A status line on an interactive ``stream`` for work that may run long.

    Use as a context manager::

        with ProgressLine("AVO") as progress:
            for it in range(n):
                progress.update(f"update {it + 1}/{n}")
                ...

    Parameters
    ----------
    label : str
        Start of the line (``"AVO"``).
    active : bool, default=True
        ``False``: never write (e.g. at ``verbose > 0``, where a fit logs instead).
    stream : file-like or None, default=None
        Where to write; ``None``: ``sys.stderr`` as it is at construction.
    clock : callable, default=time.monotonic
        Seconds, for the delay, the interval and the elapsed time shown.
    delay, interval : float or None
        :data:`DELAY_SECONDS` and :data:`INTERVAL_SECONDS` when ``None``.
    ticker : bool, default=True
        Refresh the line from a daemon thread every ``interval`` while the caller is
        busy; ``False``: only :meth:`update` and :meth:`tick` write (tests).
    """

    def __init__(self, label: str, *, active: bool = True, stream=None,
                 clock: Callable[[], float] = time.monotonic, delay: float | None = None,
                 interval: float | None = None, ticker: bool = True) -> None:
        self.label = label
        self.active = active
        self.stream = sys.stderr if stream is None else stream
        self.clock = clock
        self.delay = DELAY_SECONDS if delay is None else delay
        self.interval = INTERVAL_SECONDS if interval is None else interval
        self.ticker = ticker
        self.enabled = False  # writing: set by start()
        self._holds_line = False
        self._status: str | Callable[[], str] = ""
        self._start = 0.0
        self._written = None  # when the line was last written; None: not shown
        self._width = 0  # characters of the line on screen
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ life
    def start(self) -> ProgressLine:
        """Start the clock; decide whether to write at all."""
        self._start = self.clock()
        self._holds_line = (self.active and _interactive(self.stream)
                            and threading.current_thread() is threading.main_thread()
                            and multiprocessing.parent_process() is None
                            and _ONE_LINE.acquire(blocking=False))
        self.enabled = self._holds_line
        if self.enabled and self.ticker:
            self._thread = threading.Thread(target=self._tick_until_closed, daemon=True,
                                            name=f"sktilt-progress-{self.label}")
            self._thread.start()
        return self

    def close(self, *, failed: bool = False) -> None:
        """End the line: erase it, or with ``failed`` leave it and end it with a newline."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            if self.enabled and self._written is not None:
                if failed:
                    self._write(self._text() + "\n")
                else:
                    self._write("\r" + " " * self._width + "\r")
            self.enabled = False
        if self._holds_line:
            self._holds_line = False
            _ONE_LINE.release()

    def __enter__(self) -> ProgressLine:
        return self.start()

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(failed=exc_type is not None)

    # --------------------------------------------------------------- the line
    def update(self, status: str | Callable[[], str]) -> None:
        """Set the status (a string, or a callable read at each refresh); refresh."""
        self._status = status
        self.tick()

    def tick(self) -> None:
        """Write the line if the delay has passed and the last write is old enough."""
        if not self.enabled:
            return
        with self._lock:
            now = self.clock()
            if now - self._start < self.delay or (
                    self._written is not None and now - self._written < self.interval):
                return
            self._written = now
            self._write(self._text())

    def _text(self) -> str:
        """``"\\rLABEL: status, 14 s"``, cut to the terminal's width, padded over the
        previous line."""
        status = self._status
        try:
            status = status() if callable(status) else status
        except Exception:  # noqa: BLE001 - a status is never worth an error
            status = ""
        text = f"{self.label}: {status}, " if status else f"{self.label}: "
        text += format_seconds(self.clock() - self._start)
        columns = shutil.get_terminal_size((80, 24)).columns
        text = text[:max(10, columns - 1)]
        width, self._width = self._width, len(text)
        return "\r" + text + " " * max(0, width - len(text))

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # the terminal went away: stop writing
            self.enabled = False
            self._stop.set()

    def _tick_until_closed(self) -> None:
        while not self._stop.wait(max(self.interval, 0.05)):
            self.tick()
