"""One file of a Hub repo into the Hugging Face cache: verified before it is accepted, and within a deadline.

:mod:`sgnsep.hub.download` fetches checkpoints through this module instead of ``huggingface_hub.hf_hub_download``,
which falls short in two ways that matter for files that get loaded as model weights: it moves a download into the
cache after checking only its length, so a server, mirror or proxy that sends other bytes of the announced length
poisons the cache under the announced sha256, and a cached file is never checked again; and its transfers have
per-read timeouts but neither an overall deadline nor a minimum rate, so a server that sends a byte every few
seconds keeps it busy forever.

So the metadata still comes from huggingface_hub (:func:`huggingface_hub.get_hf_file_metadata`: commit, size and
ETag) and the bytes travel through the library's HTTP session (proxies, ``HF_TOKEN``, user agent), but this module
streams them into a temporary file of its own, checks them (:mod:`sgnsep.hub.blob_cache`), and only then renames
the file into the standard cache layout. Files the Hub stores with Xet travel over plain HTTPS as well, from the
URL the metadata names (what ``hf_hub_download`` does when the ``hf_xet`` package is not installed): Xet's chunk
transfer cannot be bounded or checked this way, and checkpoints are small enough not to need it.

Temporary files are ``blobs/<etag>.sgnsep-<random>.incomplete``, each locked (``flock``) by the process writing it
for as long as it lives; :func:`remove_stale_partials` removes the ones whose writer is gone (killed), and never one
that is still being written, nor the library's own ``.incomplete`` files.
"""

from __future__ import annotations

import collections
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from sgnsep.hub.repo_id import COMMIT_RE
from sgnsep.hub.blob_cache import ETAG_RE, discard_cached, file_problem, link
from sgnsep.hub.limits import (
    BadContent, BadDownload, DeadlineExceeded, Limits, NoAnswer, POLL_S, RETRIES, TooSlow, Unverifiable,
)

log = logging.getLogger(__name__)


_PARTIAL_MARK = ".sgnsep-"


_PARTIAL_SUFFIX = ".incomplete"


# Without flock (Windows) a partial file is only known to be abandoned when nothing has written to it for this long.
_STALE_WITHOUT_LOCKS_S = 24 * 3600.0


try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class _Meter:
    """Bytes a transfer has received: written by its worker thread, read by the supervising one."""

    def __init__(self, size: int | None):
        self.size = size
        self.received = 0  # all bytes that arrived, including those of an attempt that was restarted
        self.kept = 0  # bytes in the file now
        self.started: float | None = None  # when the first request was sent


def _supervise(work: Callable[[threading.Event], Any], *, until: float, on_timeout: Callable[[], Exception],
               meter: _Meter | None = None, limits: Limits | None = None,
               on_slow: Callable[[int, float], Exception] | None = None) -> Any:
    """Run ``work(cancel)`` in a daemon thread; return its result or raise its exception.

    Raises ``on_timeout()`` at ``until``, and ``on_slow(received, seconds)`` when ``meter`` shows fewer than
    ``limits.min_rate`` bytes per second over the last ``limits.window_s`` (or less than the rest of the file).
    Either way (and on Ctrl-C) ``cancel`` is set, so the worker stops at its next read; it is a daemon thread, so a
    worker still blocked in a read never keeps the process alive.
    """
    cancel = threading.Event()
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = work(cancel)
        except BaseException as exc:  # noqa: BLE001 - handed to the supervising thread
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="sgnsep-hub-fetch", daemon=True)
    samples: collections.deque[tuple[float, int]] = collections.deque()
    try:
        worker.start()
        while True:
            worker.join(max(0.0, min(POLL_S, until - time.monotonic())))
            if not worker.is_alive():
                break
            now = time.monotonic()
            if now >= until:
                raise on_timeout()
            if meter is None or limits is None or on_slow is None or limits.min_rate <= 0 or meter.started is None:
                continue
            samples.append((now, meter.received))
            while len(samples) > 1 and samples[1][0] <= now - limits.window_s:
                samples.popleft()
            since, before = samples[0] if now - meter.started >= limits.window_s else (None, 0)
            if since is None or now - since < limits.window_s - POLL_S:
                continue
            got = meter.received - before
            need = limits.min_rate * (now - since)
            if meter.size is not None:
                need = min(need, meter.size - meter.kept + got)  # the rest of the file within one window will do
            if got < need:
                raise on_slow(got, now - since)
    finally:
        cancel.set()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


@dataclass(frozen=True)
class RemoteFile:
    """What the Hub announces for one file at one commit."""

    filename: str
    commit: str
    etag: str  # sha256 (LFS files) or git blob id (others): the checksum, and the blob's name in the cache
    size: int
    url: str  # where the bytes are (a CDN for LFS files)
    headers: dict[str, str]  # for the GET (no Authorization header for another host)


def remote_file(repo_id: str, filename: str, revision: str | None, *, endpoint: str, limits: Limits) -> RemoteFile:
    """The metadata of ``filename`` at ``revision`` (one HEAD request through huggingface_hub, no retries).

    Raises huggingface_hub's own errors (repo / revision / file not found, HTTP errors, FileMetadataError for an
    answer without the Hub's headers), httpx2's connection errors, :class:`NoAnswer` when the answer does not come
    within ``connect_s + etag_s``, :class:`DeadlineExceeded`, or :class:`Unverifiable`.
    """
    import httpx2
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import FileMetadataError
    from huggingface_hub.utils import build_hf_headers

    from sgnsep._version import __version__

    url = hf_hub_url(repo_id, filename, revision=revision, endpoint=endpoint)
    timeout = httpx2.Timeout(limits.etag_s, connect=limits.connect_s)
    budget = limits.connect_s + limits.etag_s
    until = min(limits.deadline, time.monotonic() + budget)

    def on_timeout() -> Exception:
        if time.monotonic() >= limits.deadline:
            return DeadlineExceeded(filename, timeout_s=limits.timeout_s)
        return NoAnswer(filename, seconds=budget)

    meta = _supervise(
        lambda cancel: get_hf_file_metadata(url, timeout=timeout, endpoint=endpoint,  # type: ignore[arg-type]
                                            library_name="sgnsep", library_version=__version__),
        until=until, on_timeout=on_timeout,
    )
    # The commit and the ETag become folder and file names in the cache: anything but hex is refused, not used.
    if not meta.commit_hash or not COMMIT_RE.fullmatch(meta.commit_hash):
        raise FileMetadataError(f"the answer for {url} has no valid X-Repo-Commit header ({meta.commit_hash!r})")
    if not meta.etag or not ETAG_RE.fullmatch(meta.etag):
        raise Unverifiable(filename, f"ETag {meta.etag!r} is neither a sha256 nor a git blob id")
    if meta.size is None or meta.size < 0:
        raise Unverifiable(filename, "no size was announced")
    location = str(httpx2.URL(url).join(meta.location))
    headers = build_hf_headers(library_name="sgnsep", library_version=__version__)
    # Like hf_hub_download: the token goes to the Hub only, never to the CDN host an LFS file is redirected to.
    if httpx2.URL(location).netloc != httpx2.URL(url).netloc:
        headers.pop("authorization", None)
    # Uncompressed, so that lengths and Range offsets count the file's own bytes.
    headers["Accept-Encoding"] = "identity"
    return RemoteFile(filename=filename, commit=meta.commit_hash, etag=meta.etag, size=meta.size,
                      url=location, headers=headers)


def _stream(remote: RemoteFile, path: Path, meter: _Meter, limits: Limits, cancel: threading.Event) -> None:
    """GET the file into ``path`` (worker thread), resuming with a Range request after a dropped connection."""
    import httpx2
    from huggingface_hub.utils import get_session, hf_raise_for_status

    session = get_session()
    failures = 0
    meter.started = time.monotonic()
    with open(path, "r+b") as fh:
        while not cancel.is_set():
            headers = dict(remote.headers)
            if fh.tell():
                headers["Range"] = f"bytes={fh.tell()}-"
            read_s = max(0.1, min(limits.window_s, limits.remaining()))
            timeout = httpx2.Timeout(read_s, connect=min(limits.connect_s, read_s))
            before = meter.received
            try:
                with session.stream("GET", remote.url, headers=headers, timeout=timeout,
                                    follow_redirects=True) as response:
                    if response.status_code >= 400:
                        response.read()
                        hf_raise_for_status(response)
                    if fh.tell() and response.status_code != 206:  # the server ignored the Range: start over
                        fh.seek(0)
                        fh.truncate()
                    for chunk in response.iter_bytes():
                        if cancel.is_set():
                            return
                        fh.write(chunk)
                        meter.received += len(chunk)
                        meter.kept = fh.tell()
                        if meter.kept > remote.size:  # never let a server fill the disk past what it announced
                            raise BadDownload(remote.filename, f"more than the announced {remote.size:,} bytes")
                return
            except (httpx2.ConnectError, httpx2.TimeoutException, httpx2.RemoteProtocolError):
                failures = 0 if meter.received > before else failures + 1
                if cancel.is_set() or failures >= RETRIES or limits.remaining() <= 1.0:
                    raise
                cancel.wait(1.0)


def _lock(fd: int) -> bool:
    if fcntl is None:  # pragma: no cover - Windows
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


def _new_partial(blobs: Path, etag: str) -> tuple[Path, int]:
    """Create and lock ``blobs/<etag>.sgnsep-<random>.incomplete``; return its path and the locking descriptor."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        path = blobs / f"{etag}{_PARTIAL_MARK}{secrets.token_hex(8)}{_PARTIAL_SUFFIX}"
        try:
            fd = os.open(path, flags, 0o600)
        except FileExistsError:
            continue
        _lock(fd)
        # Another process's clean-up may have taken the file for abandoned between its creation and the lock:
        # then the name no longer leads to this descriptor's file, and a new one is made.
        try:
            if os.path.samestat(os.fstat(fd), os.stat(path)):
                return path, fd
        except FileNotFoundError:
            pass
        os.close(fd)


def remove_stale_partials(storage: Path) -> list[Path]:
    """Remove this module's temporary files in ``storage/blobs`` whose writer is gone; return what was removed.

    A writer holds a lock on its file for as long as it runs, and the operating system releases it when the
    process ends however it ends (SIGKILL included), so a file that can be locked is abandoned. Files of a live
    download, and the library's own ``<etag>.<hex>.incomplete`` files, are left alone.
    """
    removed: list[Path] = []
    blobs = storage / "blobs"
    try:
        candidates = [p for p in blobs.iterdir() if _PARTIAL_MARK in p.name and p.name.endswith(_PARTIAL_SUFFIX)]
    except OSError:
        return removed
    for path in candidates:
        try:
            if fcntl is None:  # pragma: no cover - Windows: no locks, only a long silence tells
                if time.time() - path.stat().st_mtime > _STALE_WITHOUT_LOCKS_S:
                    path.unlink()
                    removed.append(path)
                continue
            fd = os.open(path, os.O_RDONLY)
            try:
                if _lock(fd) and os.path.samestat(os.fstat(fd), os.stat(path)):
                    path.unlink()
                    removed.append(path)
            finally:
                os.close(fd)
        except OSError:
            continue
    return removed


def download(storage: Path, remote: RemoteFile, limits: Limits) -> Path:
    """Download ``remote`` into ``storage/blobs/<etag>`` and return that path, or raise and leave nothing behind.

    The bytes go to a locked temporary file, are checked (length, checksum, format) and only then renamed to the
    blob's name, so a blob in the cache is always a file that passed the checks.
    """
    from sgnsep.core.atomic_write import apply_umask

    blobs = storage / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    path, lock_fd = _new_partial(blobs, remote.etag)
    meter = _Meter(remote.size)
    try:
        _supervise(
            lambda cancel: _stream(remote, path, meter, limits, cancel),
            until=limits.deadline,
            on_timeout=lambda: DeadlineExceeded(remote.filename, timeout_s=limits.timeout_s, received=meter.kept,
                                                size=remote.size),
            meter=meter, limits=limits,
            on_slow=lambda got, seconds: TooSlow(remote.filename, received=got, seconds=seconds,
                                                 min_rate=limits.min_rate),
        )
        problem = file_problem(path, remote.filename, etag=remote.etag, size=remote.size)
        if problem is not None:
            kind, why = problem
            raise (BadDownload if kind == "bytes" else BadContent)(remote.filename, why)
        apply_umask(path)  # created 0600: give the blob the permissions any new file gets
        blob = blobs / remote.etag
        os.replace(path, blob)
        return blob
    finally:
        # After a failure (or Ctrl-C) the temporary file goes; a worker still blocked in a read writes into the
        # unlinked file and stops at its next read. After success the name is gone already.
        try:
            path.unlink(missing_ok=True)
        finally:
            os.close(lock_fd)


def fetch(storage: Path, remote: RemoteFile, limits: Limits, *, spec: str) -> Path:
    """Make sure ``snapshots/<commit>/<filename>`` in ``storage`` holds exactly ``remote``; return its path.

    A cached copy is checked against the announced size and checksum and its format: a good one is used as it is,
    a bad one is removed (with a warning) and downloaded again. ``spec`` names the model in that warning.
    """
    pointer = storage / "snapshots" / remote.commit / remote.filename
    blob = storage / "blobs" / remote.etag
    for cached in (pointer, blob):
        if not os.path.lexists(cached):
            continue
        problem = file_problem(Path(os.path.realpath(cached)), remote.filename, etag=remote.etag, size=remote.size)
        if problem is None:
            return pointer if cached == pointer else link(storage, blob, remote.commit, remote.filename)
        log.warning("The cached %s of %s (commit %s) is damaged (%s); downloading it again.", remote.filename,
                    spec, remote.commit[:12], problem[1])
        discard_cached(storage, cached)
    return link(storage, download(storage, remote, limits), remote.commit, remote.filename)
