"""User-facing errors.

Every failure a user can cause or fix (a bad file, an unknown class, a missing model) is raised as a
:class:`SgnsepError` carrying one actionable sentence. The CLI prints it on one line and exits with the
error's ``exit_code``; it never shows a traceback for these. Exit codes are documented in docs/cli.md.
"""

from __future__ import annotations


class SgnsepError(Exception):
    """An error the user can act on. ``str(err)`` is the whole message: what, which file, what to do."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None):
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message} {hint}")


class UsageError(SgnsepError):
    """Bad option values (unknown class, bad segment length, ...)."""

    exit_code = 2


class InputAudioError(SgnsepError):
    """An input file is missing, unreadable or holds no usable audio."""

    exit_code = 3


class OutputError(SgnsepError):
    """Outputs cannot be written, or would overwrite existing files."""

    exit_code = 4


class ModelError(SgnsepError):
    """A model cannot be found, fetched or loaded (missing files, mismatching weights, Hub offline)."""

    exit_code = 5


class DeviceError(SgnsepError):
    """The requested compute device is not available."""

    exit_code = 6


class NothingDetectedError(SgnsepError):
    """``--sources auto`` found none of the model's classes present in a file, so there is nothing to separate."""

    exit_code = 8


def exit_code_of(errors) -> int:
    """The exit status of a batch whose items failed with ``errors`` (SgnsepErrors): 0 if none, their exit code
    if they all share one, else 1."""
    codes = {e.exit_code for e in errors}
    return 0 if not codes else codes.pop() if len(codes) == 1 else 1
