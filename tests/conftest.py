"""Shared fixtures; torch uses one thread per test process to keep timings stable."""

import contextlib
import os
import signal
import threading
import time

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture
def ctrl_c():
    """``with ctrl_c(after=s)`` or ``with ctrl_c(when=predicate)``: press Ctrl-C.

    A thread sends SIGINT to this process ``after`` seconds (or once ``when()`` is true,
    checked every 50 ms for up to a minute), then again every second until the block
    exits, as a user presses again when the first press did nothing visible: Python
    swallows a KeyboardInterrupt raised inside a finaliser ("Exception ignored in ...").
    The block gets the list of the presses' ``time.perf_counter()`` times, so that tests
    time the stop from the first press and a repeat never hides a slow stop. Python's own
    handler is installed for the block (the previous one restored after).
    """
    @contextlib.contextmanager
    def press(after=0.0, when=None, every=1.0):
        stop, sent = threading.Event(), []

        def fire():
            if when is not None:
                for _ in range(1200):
                    if when() or stop.wait(0.05):
                        break
            if stop.wait(after):
                return
            while True:
                os.kill(os.getpid(), signal.SIGINT)
                sent.append(time.perf_counter())
                if stop.wait(every):
                    return

        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        threading.Thread(target=fire, daemon=True).start()
        try:
            yield sent
        finally:
            stop.set()
            signal.signal(signal.SIGINT, previous)

    return press


@pytest.fixture
def caller_threads():
    """The test runs with 3 torch threads (a caller's own choice); restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    yield 3
    torch.set_num_threads(before)
