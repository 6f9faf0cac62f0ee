"""Signals that stop a command (Ctrl-C, SIGTERM, SIGHUP): one exception, then one cleanup that runs to its end.

Python runs a signal handler between any two bytecodes, so a handler that raises lands anywhere, the middle
of a cleanup included. Two SIGTERMs 20 ms apart used to do exactly that: the first started removing the
temporary stems, the second stopped that removal half-way and left several ``.partial`` files behind while
the message said they were gone. So here:

* the first SIGINT, SIGTERM or SIGHUP raises :class:`Interrupted` (a ``KeyboardInterrupt``, so every
  ``except BaseException`` cleanup of the library runs as it does for Ctrl-C);
* every later one is ignored (``SIG_IGN``): the cleanup that the first one started is not interrupted
  (``kill -9`` still stops a cleanup that hangs; the next run removes what it leaves, see
  :mod:`sgnsep.core.atomic_write`);
* a signal that arrives while a cleanup for some other error runs (inside :func:`uninterrupted`) waits until
  that cleanup is done, then raises.

:func:`install` is called by the CLI only: a program that uses the library keeps its own handlers, and
:func:`uninterrupted` then changes nothing.
"""

from __future__ import annotations

import signal
import sys
from contextlib import contextmanager

# What the CLI says and exits with for each signal (docs/cli.md, "Exit codes"). SIGTERM keeps the 130 of Ctrl-C
# that scripts already rely on; SIGHUP (the terminal or ssh session closed) gets the shell's 128 + 1.
SIGNALS: dict[int, tuple[str, int]] = {signal.SIGINT: ("interrupted", 130), signal.SIGTERM: ("terminated", 130)}
if hasattr(signal, "SIGHUP"):  # not on Windows
    SIGNALS[signal.SIGHUP] = ("hung up (SIGHUP)", 129)


class Interrupted(KeyboardInterrupt):
    """Raised by the first stopping signal; ``signum`` says which."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signum)
        self.signum = signum

    @property
    def word(self) -> str:
        return SIGNALS.get(self.signum, ("interrupted", 130))[0]

    @property
    def exit_code(self) -> int:
        return SIGNALS.get(self.signum, ("interrupted", 130))[1]


_caught: int | None = None  # the first signal, once one has been raised
_pending: int | None = None  # a signal that arrived inside uninterrupted(), raised at its end
_deferring = 0  # depth of nested uninterrupted() sections
_installed = False


def _ignore_all() -> None:
    # SIG_IGN rather than a handler that returns: Python resets its own handlers to the default (which kills)
    # while the interpreter shuts down, so a late signal would still end the process with -SIGTERM; an
    # ignored signal stays ignored to the end.
    if sys.unraisablehook is not _quiet_race:
        global _previous_hook
        _previous_hook, sys.unraisablehook = sys.unraisablehook, _quiet_race
    for signum in SIGNALS:
        try:
            signal.signal(signum, signal.SIG_IGN)
        except (ValueError, OSError):  # not the main thread
            pass


_previous_hook = sys.unraisablehook


def _quiet_race(unraisable) -> None:
    """A signal that arrived just before the switch to SIG_IGN reaches Python after it; Python then reports
    "Signal N ignored due to race condition" as an unraisable error (a traceback-like text on stderr). Ignoring
    it is what was asked for: say nothing. Everything else goes to the previous hook."""
    exc = unraisable.exc_value
    if isinstance(exc, OSError) and "ignored due to race condition" in str(exc):
        return
    _previous_hook(unraisable)


def _handle(signum, frame) -> None:
    global _caught, _pending
    if _caught is not None:
        return  # the first signal's cleanup is running: let it finish
    if _deferring:
        _pending = _pending or signum
        return
    _caught = signum
    _ignore_all()
    raise Interrupted(signum)


def install() -> None:
    """Route SIGINT, SIGTERM and SIGHUP to the handler above (main thread only; elsewhere Python refuses)."""
    global _installed
    try:
        for signum in SIGNALS:
            signal.signal(signum, _handle)
        _installed = True
    except ValueError:  # not the main thread (a test runner's worker): keep the defaults
        pass


def caught() -> int | None:
    """The signal that stopped this process, or None."""
    return _caught or None


def ignore_further() -> None:
    """From now on no signal raises: the command has finished its work (or its cleanup) and is only exiting;
    a signal at this point must not turn a finished run into a traceback."""
    global _caught
    if _installed:
        if _caught is None:
            _caught = 0  # 0: no signal stopped the run, but later ones are ignored
        _ignore_all()


@contextmanager
def uninterrupted():
    """Run the block (a cleanup) to its end; a stopping signal that arrives meanwhile is raised after it."""
    global _deferring, _pending, _caught
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
        if not _deferring and _pending is not None:
            signum, _pending = _pending, None
            if _caught is None:
                _caught = signum
                _ignore_all()
                raise Interrupted(signum)
