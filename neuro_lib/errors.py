"""The one exception type for bad user input, and the one for a stop by signal.

CLI commands catch `NeuroError`, print its message as one sentence and exit non-zero;
`Interrupted` (SIGINT or SIGTERM) is one line and exit 128 + signal; anything else is a bug
and keeps its traceback.
"""
import contextlib
import signal
import threading


class NeuroError(Exception):
    """A user-facing error: bad input, missing file, mismatched checkpoint."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived: a KeyboardInterrupt that knows its signal (so `finally` blocks still run)."""

    def __init__(self, signum: int, message: str = ""):
        self.signum = signum
        super().__init__(message or f"stopped by {signal.Signals(signum).name}")


@contextlib.contextmanager
def signals_interrupt():
    """Within: SIGTERM raises Interrupted like SIGINT does, and SIGINT raises Interrupted(SIGINT), so
    every door stops with one line instead of a traceback or a silent death. Main thread only;
    elsewhere (and for handlers others installed) nothing changes. Old handlers come back on exit."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum, frame):
        raise Interrupted(signum)

    old = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
