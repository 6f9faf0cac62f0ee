"""One file of a Hub repo into the Hugging Face cache: verified before it is accepted, and within a deadline.

:mod:`sgnsep.hub` fetches checkpoints through this module instead of ``huggingface_hub.hf_hub_download``, which
falls short in two ways that matter for files that get loaded as model weights:

* it moves a download into the cache after checking only its length, so a server, mirror or proxy that sends other
  bytes of the announced length poisons the cache under the announced sha256, and a cached file is never checked
  again (a second pull, even from a good server, keeps the bad copy);
* its transfers have per-read timeouts but neither an overall deadline nor a minimum rate: a server that sends a
  byte every few seconds keeps it busy forever.

So the metadata still comes from huggingface_hub (:func:`huggingface_hub.get_hf_file_metadata`: commit, size and
ETag, which is the file's sha256 for LFS files and its git blob id for the others) and the bytes travel through the
library's HTTP session (proxies, ``HF_TOKEN``, user agent), but this module streams them into a temporary file of
its own, checks length, checksum and format (safetensors / JSON), and only then renames the file into the standard
cache layout that ``hf_hub_download`` and every other Hugging Face tool read::

    <cache>/models--owner--name/blobs/<etag>                          the bytes
    <cache>/models--owner--name/snapshots/<commit>/<file> -> ../../blobs/<etag>
    <cache>/models--owner--name/refs/<branch or tag>                  the commit id

Files the Hub stores with Xet travel over plain HTTPS as well, from the URL the metadata names (what
``hf_hub_download`` does when the ``hf_xet`` package is not installed): Xet's chunk transfer cannot be bounded or
checked this way, and checkpoints are small enough not to need it.

A cached file is checked the same way each time it is used (:func:`cached_problem`), so a damaged one is noticed
and replaced instead of being loaded.

Temporary files are ``blobs/<etag>.sgnsep-<random>.incomplete``, each locked (``flock``) by the process writing it
for as long as it lives; :func:`remove_stale_partials` removes the ones whose writer is gone (killed), and never one
that is still being written, nor the library's own ``.incomplete`` files.

Every network step runs in a worker thread that the calling thread supervises (:class:`Limits`), because a blocking
socket read cannot be interrupted from Python: the caller gives up at the deadline, or when the rate drops below
the minimum, and the worker stops at its next read.
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import math
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from sgnsep.core.errors import UsageError

log = logging.getLogger(__name__)

#: Overall seconds allowed for fetching one checkpoint (metadata and files), unless SGNSEP_HUB_TIMEOUT says otherwise.
DEFAULT_TIMEOUT_S = 3600.0
#: Minimum average transfer rate in bytes per second, unless SGNSEP_HUB_MIN_RATE says otherwise (0: no minimum).
DEFAULT_MIN_RATE = 1000.0
#: A config.json larger than this is not a checkpoint config (and is not read into memory to find out).
MAX_CONFIG_BYTES = 16 * 1024 * 1024

_POLL_S = 0.05  # how often the supervising thread looks at the clock and the byte count
_RETRIES = 5  # consecutive failed attempts (no byte received) before a transfer gives up, as hf_hub_download
_ETAG_RE = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")  # git blob sha1 (regular files) or sha256 (LFS files)
_COMMIT_RE = re.compile(r"[0-9a-f]{40}")
_PARTIAL_MARK = ".sgnsep-"
_PARTIAL_SUFFIX = ".incomplete"
# Without flock (Windows) a partial file is only known to be abandoned when nothing has written to it for this long.
_STALE_WITHOUT_LOCKS_S = 24 * 3600.0

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


# --------------------------------------------------------------------------------------------------------------------
# Limits
# --------------------------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------------------------
# Failures (mapped to ModelError messages by sgnsep.hub, which knows the repo, endpoint and cache)
# --------------------------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------------------------------


def _digest(path: Path, etag: str) -> str:
    """The checksum of ``path`` in the form of ``etag``: sha256 (64 hex), or git's blob id (40 hex: sha1 of
    ``"blob <size>\\0"`` + the bytes, which the Hub sends as the ETag of files stored in git itself)."""
    if len(etag) == 64:
        digest = hashlib.sha256()
    else:
        digest = hashlib.sha1()
        digest.update(b"blob %d\0" % path.stat().st_size)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def content_problem(path: Path, filename: str) -> str | None:
    """Why ``path`` is not usable as ``filename`` of a checkpoint (None if it is).

    The weights must parse as safetensors (its header is read and checked to cover the file exactly; no tensor is
    loaded), the config as a JSON object. Any other name is not checked.
    """
    if filename.endswith(".safetensors"):
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="numpy") as fh:
                fh.keys()
        except Exception as exc:  # noqa: BLE001 - SafetensorError, OSError, ...: all mean "not usable"
            text = " ".join(str(exc).split()) or type(exc).__name__
            return f"not a safetensors file ({text})"
        return None
    if filename.endswith(".json"):
        if path.stat().st_size > MAX_CONFIG_BYTES:
            return f"{path.stat().st_size:,} bytes, too large for a checkpoint config"
        try:
            data = json.loads(path.read_bytes().decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError, or an integer of >4300 digits
            return f"not valid JSON ({' '.join(str(exc).split())})"
        except RecursionError:
            return "not valid JSON (nested too deeply)"
        if not isinstance(data, dict):
            return f"not a JSON object but a JSON {type(data).__name__}"
    return None


def file_problem(path: Path, filename: str, *, etag: str | None, size: int | None) -> tuple[str, str] | None:
    """``(kind, why)`` if ``path`` is not the announced file, else None. ``kind`` is ``"bytes"`` (length or checksum
    differ from ``size`` / ``etag``: the bytes were damaged or replaced) or ``"content"`` (they match, but the file
    is not usable as ``filename``)."""
    try:
        actual = path.stat().st_size
        if size is not None and actual != size:
            return "bytes", f"{actual:,} bytes instead of the announced {size:,}"
        if etag is not None:
            digest = _digest(path, etag)
            if digest != etag:
                algorithm = "sha256" if len(etag) == 64 else "git blob id"
                return "bytes", f"{algorithm} {digest[:12]}... instead of the announced {etag[:12]}..."
    except FileNotFoundError:
        return "bytes", "the file is missing"
    problem = content_problem(path, filename)
    return None if problem is None else ("content", problem)


def cached_problem(pointer: Path, filename: str) -> str | None:
    """Why a cached file is not usable (None if it is), checked without the network.

    The blob a snapshot file links to is named by its checksum, so the bytes are checked against their name; a
    cache without symlinks (the file itself in the snapshot) can only have its format checked.
    """
    blob = Path(os.path.realpath(pointer))
    etag = blob.name if blob.parent.name == "blobs" and _ETAG_RE.fullmatch(blob.name) else None
    problem = file_problem(blob, filename, etag=etag, size=None)
    return None if problem is None else problem[1]


def discard_cached(storage: Path, pointer: Path) -> None:
    """Remove a bad cached file: the snapshot entry and the blob it links to (if that is one of this repo's).

    Best effort: a cache that cannot be written (read-only mount) keeps it, and the caller's error says why.
    """
    try:
        blob = Path(os.path.realpath(pointer))
        if pointer.is_symlink():
            pointer.unlink()
        if blob.parent == (storage / "blobs").resolve():
            blob.unlink(missing_ok=True)
        elif not pointer.is_symlink():
            pointer.unlink(missing_ok=True)
    except OSError as exc:
        log.debug("could not remove %s: %s", pointer, exc)


# --------------------------------------------------------------------------------------------------------------------
# Supervision: every network step runs in a worker thread, bounded by the calling thread
# --------------------------------------------------------------------------------------------------------------------


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
            worker.join(max(0.0, min(_POLL_S, until - time.monotonic())))
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
            if since is None or now - since < limits.window_s - _POLL_S:
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


# --------------------------------------------------------------------------------------------------------------------
# Metadata
# --------------------------------------------------------------------------------------------------------------------


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
    if not meta.commit_hash or not _COMMIT_RE.fullmatch(meta.commit_hash):
        raise FileMetadataError(f"the answer for {url} has no valid X-Repo-Commit header ({meta.commit_hash!r})")
    if not meta.etag or not _ETAG_RE.fullmatch(meta.etag):
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


# --------------------------------------------------------------------------------------------------------------------
# Transfer
# --------------------------------------------------------------------------------------------------------------------


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
                if cancel.is_set() or failures >= _RETRIES or limits.remaining() <= 1.0:
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


# --------------------------------------------------------------------------------------------------------------------
# Cache layout
# --------------------------------------------------------------------------------------------------------------------


def storage_folder(cache_dir: Path, repo_id: str) -> Path:
    from huggingface_hub.file_download import repo_folder_name

    return cache_dir / repo_folder_name(repo_id=repo_id, repo_type="model")


def link(storage: Path, blob: Path, commit: str, filename: str) -> Path:
    """Make ``snapshots/<commit>/<filename>`` lead to ``blob`` (a relative symlink, as hf_hub_download makes; the
    blob itself is moved there where the file system has no symlinks). Returns the snapshot path."""
    from huggingface_hub.file_download import are_symlinks_supported

    pointer = storage / "snapshots" / commit / filename
    pointer.parent.mkdir(parents=True, exist_ok=True)
    if os.path.lexists(pointer):
        pointer.unlink()
    if are_symlinks_supported(storage.parent):
        try:
            os.symlink(os.path.relpath(blob, pointer.parent), pointer)
        except FileExistsError:  # another process linked it meanwhile: its link leads to the same verified blob
            pass
    else:  # pragma: no cover - file systems without symlinks
        os.replace(blob, pointer)
    return pointer


def write_ref(storage: Path, revision: str, commit: str) -> None:
    """Record that branch or tag ``revision`` is at ``commit`` (``refs/<revision>``), replaced whole or not at all."""
    from sgnsep.core.atomic_write import PartialFile

    ref = storage / "refs" / revision
    try:
        if ref.read_text() == commit:
            return
    except OSError:
        pass
    ref.parent.mkdir(parents=True, exist_ok=True)
    partial = PartialFile(ref)
    try:
        with os.fdopen(partial.create(), "w") as fh:
            fh.write(commit)
        partial.publish()
    except BaseException:
        partial.discard()
        raise


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
