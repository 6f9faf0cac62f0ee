"""The Hub settings, read at call time, and what makes the Hub unreachable.

huggingface_hub reads its environment variables once, when it is imported, so ``HF_ENDPOINT``, ``HF_HUB_CACHE``,
``HF_HUB_OFFLINE``, ``HF_HUB_ETAG_TIMEOUT`` and ``HF_HUB_DOWNLOAD_TIMEOUT`` are read again here (falling back to the
library's values): a value set after import (by a test, or by the CLI before calling in) is honoured too.

Time limits (the fail-fast note): a connection must open within :data:`CONNECT_TIMEOUT_S` (or
``HF_HUB_ETAG_TIMEOUT`` if lower); a metadata request must be answered within ``HF_HUB_ETAG_TIMEOUT`` (default 10 s)
more, with no retries, after which the cache is used (as when the Hub is down), so an unreachable Hub costs seconds,
not the library's half a minute of retries.
"""

from __future__ import annotations

import os
from pathlib import Path

from sgnsep.hub.limits import DeadlineExceeded, NoAnswer


#: Files fetched from a checkpoint repo, in this order (config first: it is small and resolves the commit).
CHECKPOINT_FILES: tuple[str, ...] = ("config.json", "model.safetensors")


#: Seconds allowed to open a connection to the Hub before it is considered unreachable.
CONNECT_TIMEOUT_S: float = 5.0


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def offline_mode() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or _env_true("HF_HUB_OFFLINE") or _env_true("TRANSFORMERS_OFFLINE")


def hub_endpoint() -> str:
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def hub_cache_dir(cache_dir: str | os.PathLike | None) -> Path:
    from huggingface_hub import constants

    if cache_dir is None:
        cache_dir = os.environ.get("HF_HUB_CACHE") or constants.HF_HUB_CACHE
    return Path(os.path.expandvars(os.fspath(cache_dir))).expanduser().resolve()


def etag_timeout() -> float:
    from huggingface_hub import constants

    value = os.environ.get("HF_HUB_ETAG_TIMEOUT")
    try:
        return float(value) if value else float(constants.HF_HUB_ETAG_TIMEOUT)
    except ValueError:
        return float(constants.HF_HUB_ETAG_TIMEOUT)


def connect_timeout() -> float:
    return min(CONNECT_TIMEOUT_S, etag_timeout())


def download_timeout() -> float:
    from huggingface_hub import constants

    value = os.environ.get("HF_HUB_DOWNLOAD_TIMEOUT")
    try:
        seconds = float(value) if value else float(constants.HF_HUB_DOWNLOAD_TIMEOUT)
    except ValueError:
        seconds = float(constants.HF_HUB_DOWNLOAD_TIMEOUT)
    return seconds if seconds > 0 else float(constants.DEFAULT_DOWNLOAD_TIMEOUT)


def one_line(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def connectivity_errors() -> tuple[type[BaseException], ...]:
    import httpx2
    from huggingface_hub.errors import OfflineModeIsEnabled

    return (httpx2.TransportError, OfflineModeIsEnabled)


def hub_unreachable_reason(exc: BaseException | None) -> str | None:
    """A short reason if ``exc`` means the Hub could not be reached at all (network, proxy, timeout, offline)."""
    if exc is None:
        return None
    import httpx2
    from huggingface_hub.errors import OfflineModeIsEnabled

    if isinstance(exc, OfflineModeIsEnabled):
        return "offline mode is enabled (HF_HUB_OFFLINE)"
    if isinstance(exc, NoAnswer):
        return f"it did not answer within {exc.seconds:g} s; HF_HUB_ETAG_TIMEOUT sets how long to wait"
    if isinstance(exc, DeadlineExceeded):
        return f"no answer within the {exc.timeout_s:g} s that SGNSEP_HUB_TIMEOUT allows"
    if isinstance(exc, httpx2.ProxyError):
        return f"the proxy refused the connection: {one_line(exc)}"
    if isinstance(exc, httpx2.ConnectTimeout):
        return f"no connection within {connect_timeout():g} s"
    if isinstance(exc, httpx2.TimeoutException):
        return f"the Hub did not answer in time ({one_line(exc)})"
    if isinstance(exc, httpx2.TransportError):
        return one_line(exc)
    return None
