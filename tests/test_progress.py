"""The status line of long fits at verbose=0: only on a terminal, only after the delay."""

import io
import sys

import numpy as np
import pytest

import sktilt._progress as progress_module
from sktilt import AVOSimulatorFitter, GaussianProposal
from sktilt._progress import ProgressLine, format_count, format_seconds


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def line(stream=None, clock=None, **kw):
    return ProgressLine("AVO", stream=stream if stream is not None else FakeTTY(),
                        clock=clock or FakeClock(), delay=10.0, interval=1.0,
                        ticker=False, **kw)


def test_nothing_before_the_delay_then_one_line_rewritten_in_place():
    stream, clock = FakeTTY(), FakeClock()
    with line(stream, clock) as progress:
        progress.update("warm-up, 0 simulations")
        clock.now += 9.5
        progress.update("update 1/40, 128 simulations")
        assert stream.getvalue() == ""
        clock.now += 1.0  # 10.5 s
        progress.update("update 2/40, 256 simulations")
        assert stream.getvalue() == "\rAVO: update 2/40, 256 simulations, 10 s"
        clock.now += 0.5  # within the interval: not rewritten
        progress.update("update 3/40, 384 simulations")
        assert stream.getvalue().count("\r") == 1
        clock.now += 1.0
        progress.tick()  # a tick (the ticker thread's) shows the latest status
        assert stream.getvalue().endswith("\rAVO: update 3/40, 384 simulations, 12 s")
        clock.now += 100
        progress.update("polish")  # shorter: padded over the longer line
        assert stream.getvalue().endswith("\rAVO: polish, 1 min 52 s" + " " * 16)
    # a finished fit erases its line and leaves the cursor at the start of it
    # (the padding beyond it is blank already)
    assert stream.getvalue().endswith("\r" + " " * len("AVO: polish, 1 min 52 s") + "\r")
    assert "\n" not in stream.getvalue()


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_an_error_ends_the_line_with_a_newline(error):
    stream, clock = FakeTTY(), FakeClock()
    with pytest.raises(error), line(stream, clock) as progress:
        clock.now += 20
        progress.update(lambda: "update 7/40")  # a callable status is read when shown
        raise error
    assert stream.getvalue().endswith("\rAVO: update 7/40, 20 s\n")


def test_an_error_before_the_delay_writes_nothing():
    stream, clock = FakeTTY(), FakeClock()
    with pytest.raises(ValueError), line(stream, clock) as progress:
        progress.update("warm-up")
        raise ValueError
    assert stream.getvalue() == ""


def test_silent_where_not_a_terminal_or_inactive_or_nested():
    clock = FakeClock()
    plain = io.StringIO()
    with line(plain, clock) as progress:
        clock.now += 60
        progress.update("update 1/2")
    assert plain.getvalue() == ""
    tty = FakeTTY()
    with line(tty, clock, active=False) as progress:  # verbose > 0
        clock.now += 60
        progress.update("update 1/2")
    assert tty.getvalue() == ""
    outer_stream, inner_stream = FakeTTY(), FakeTTY()
    with line(outer_stream, clock) as outer, line(inner_stream, clock) as inner:
        clock.now += 60
        inner.update("inner")
        outer.update("outer")
    assert inner_stream.getvalue() == "" and "outer" in outer_stream.getvalue()
    with line(inner_stream, clock) as again:  # the outer one released its line
        clock.now += 60
        again.update("again")
    assert "again" in inner_stream.getvalue()


def test_the_ticker_refreshes_the_time_while_the_caller_is_busy():
    stream = FakeTTY()
    with ProgressLine("AVO", stream=stream, delay=0.0, interval=0.01) as progress:
        progress.update("warm-up")
        for _ in range(200):  # up to 2 s for the thread to write a second time
            if stream.getvalue().count("\r") >= 2:
                break
            progress._stop.wait(0.01)
    assert stream.getvalue().count("\rAVO: warm-up, 0 s") >= 2


def test_formats():
    assert format_count(20000) == "20 000" and format_count(999) == "999"
    assert format_seconds(14.7) == "14 s"
    assert format_seconds(100) == "1 min 40 s"
    assert format_seconds(3725) == "1 h 02 min"


def _shift(theta, random_state):
    return theta[0] + random_state.standard_normal(2)


FIT = dict(max_iter=4, batch_size=32, max_simulations=1000, random_state=0)
X_OBS = 0.5 + np.random.default_rng(0).standard_normal((100, 2))


def test_avo_fit_shows_its_progress_on_a_terminal(monkeypatch):
    stream = FakeTTY()
    monkeypatch.setattr(sys, "stderr", stream)
    monkeypatch.setattr(progress_module, "DELAY_SECONDS", 0.0)
    monkeypatch.setattr(progress_module, "INTERVAL_SECONDS", 0.0)
    AVOSimulatorFitter(_shift, GaussianProposal([0.0], [1.0]), refinement=None,
                       **FIT).fit(X_OBS)
    out = stream.getvalue()
    assert "\rAVO: preparing, " in out
    assert "\rAVO: warm-up, 0 of 1 000 simulations, " in out
    assert "\rAVO: update 4/4, 128 of 1 000 simulations, " in out
    assert "\rAVO: self-check, " in out
    assert out.endswith("\r") and "\n" not in out  # erased at the end


def test_avo_fit_prints_nothing_where_stderr_is_not_a_terminal(monkeypatch, capsys):
    monkeypatch.setattr(progress_module, "DELAY_SECONDS", 0.0)
    monkeypatch.setattr(progress_module, "INTERVAL_SECONDS", 0.0)
    AVOSimulatorFitter(_shift, GaussianProposal([0.0], [1.0]), refinement=None,
                       **FIT).fit(X_OBS)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""
