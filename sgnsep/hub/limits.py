"""The limits a transfer runs under, and how it fails.

Every network step runs in a worker thread that the calling thread supervises (:class:`Limits`), because a blocking
socket read cannot be interrupted from Python: the caller gives up at the deadline, or when the rate drops below
the minimum (``SGNSEP_HUB_MIN_RATE`` bytes per second, default 1000, 0 turns this off, on average over every
``HF_HUB_DOWNLOAD_TIMEOUT`` seconds), and the worker stops at its next read.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

from sgnsep.core.errors import UsageError


#: Overall seconds allowed for fetching one checkpoint (metadata and files), unless SGNSEP_HUB_TIMEOUT says otherwise.
DEFAULT_TIMEOUT_S = 3600.0


#: Minimum average transfer rate in bytes per second, unless SGNSEP_HUB_MIN_RATE says otherwise (0: no minimum).
DEFAULT_MIN_RATE = 1000.0


POLL_S = 0.05  # how often the supervising thread looks at the clock and the byte count


RETRIES = 5  # consecutive failed attempts (no byte received) before a transfer gives up, as hf_hub_download


def _env_number(name: str, default: float, *, allow_zero: bool, unit: str) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = "0 or more" if allow_zero else "more than 0"
        raise UsageError(f"The environment variable {name} must be a number of {unit} ({bound}), got '{raw}'.",
                         hint=f"Set it to a plain number such as {name}={default:g}, or unset it for the default.")
    return value


@dataclass(frozen=True)
class Limits:
    """How long one checkpoint fetch may take, and how slow its transfers may be.

    ``deadline`` (a :func:`time.monotonic` time) bounds everything; each metadata request must also be answered
    within ``connect_s + etag_s``; a file transfer must receive at least ``min_rate`` bytes per second on average
    over every ``window_s`` seconds (or the rest of the file within one window), and no read may wait longer than
    ``window_s``.
    """

    deadline: float
    timeout_s: float  # what the deadline was set from, for messages
    min_rate: float  # bytes per second; 0 turns the check off
    window_s: float  # HF_HUB_DOWNLOAD_TIMEOUT: the read timeout and the window of the rate check
    etag_s: float  # HF_HUB_ETAG_TIMEOUT: the read timeout of metadata requests
    connect_s: float

    @classmethod
    def from_env(cls, *, window_s: float, etag_s: float, connect_s: float) -> "Limits":
        """Read SGNSEP_HUB_TIMEOUT and SGNSEP_HUB_MIN_RATE now (not at import); start the clock."""
        timeout_s = _env_number("SGNSEP_HUB_TIMEOUT", DEFAULT_TIMEOUT_S, allow_zero=False, unit="seconds")
        min_rate = _env_number("SGNSEP_HUB_MIN_RATE", DEFAULT_MIN_RATE, allow_zero=True, unit="bytes per second")
        return cls(deadline=time.monotonic() + timeout_s, timeout_s=timeout_s, min_rate=min_rate, window_s=window_s,
                   etag_s=etag_s, connect_s=connect_s)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


class FetchError(Exception):
    """A failure of one file's fetch."""

    def __init__(self, filename: str, detail: str = ""):
        super().__init__(f"{filename}: {detail}" if detail else filename)
        self.filename = filename
        self.detail = detail


class DeadlineExceeded(FetchError):
    """The overall deadline passed; ``received`` of ``size`` bytes had arrived (``size`` None: still asking)."""

    def __init__(self, filename: str, *, timeout_s: float, received: int = 0, size: int | None = None):
        super().__init__(filename, f"not done within {timeout_s:g} s")
        self.timeout_s, self.received, self.size = timeout_s, received, size


class NoAnswer(FetchError):
    """A metadata request got no complete answer within its time (the server is there but does not answer)."""

    def __init__(self, filename: str, *, seconds: float):
        super().__init__(filename, f"no answer within {seconds:g} s")
        self.seconds = seconds


class TooSlow(FetchError):
    """Fewer than the minimum bytes arrived in the last window."""

    def __init__(self, filename: str, *, received: int, seconds: float, min_rate: float):
        super().__init__(filename, f"{received} bytes in {seconds:.1f} s")
        self.received, self.seconds, self.min_rate = received, seconds, min_rate


class BadDownload(FetchError):
    """The bytes received are not the ones the server announced (length or checksum): nothing was cached."""


class BadContent(FetchError):
    """The bytes are the ones announced, but not a usable file of that name (not safetensors, not JSON)."""


class Unverifiable(FetchError):
    """The server announced no checksum (or no size) to verify the file against: nothing was downloaded."""
