"""Fetch sgnsep checkpoints from the Hugging Face Hub, and publish them (:func:`push_checkpoint`).

A checkpoint is a Hub model repo (or a local folder) holding ``config.json`` and ``model.safetensors``
(optionally ``README.md``). Files go into the standard Hugging Face cache, in its usual layout, so the cache and the
settings other Hugging Face tools use apply unchanged:

* the cache lives in ``HF_HUB_CACHE`` (default ``$HF_HOME/hub``, i.e. ``~/.cache/huggingface/hub``),
* ``owner/name@revision`` pins a branch, a tag or a 40-hex commit id,
* ``HF_ENDPOINT`` points at a mirror or a private Hub, ``HF_TOKEN`` / ``hf auth login`` give access to private repos,
* ``HF_HUB_OFFLINE=1`` never touches the network and uses the cache only.

huggingface_hub reads its environment variables once, when it is imported. :func:`download_checkpoint` reads
``HF_ENDPOINT``, ``HF_HUB_CACHE``, ``HF_HUB_OFFLINE``, ``HF_HUB_ETAG_TIMEOUT`` and ``HF_HUB_DOWNLOAD_TIMEOUT`` again
at call time (falling back to the library's values), so a value set after import (e.g. by a test, or by the CLI
before calling in) is honoured too.

Every failure is raised as :class:`sgnsep.core.errors.ModelError` with one actionable message.

Verified downloads: the bytes are fetched by :mod:`sgnsep.hub_fetch` rather than ``hf_hub_download`` (which accepts
any bytes of the announced length into the cache, and never checks a cached file again). Each file's length and
checksum are checked against the Hub's metadata (``get_hf_file_metadata``: the sha256 of an LFS file, the git blob
id of others), the weights are parsed as safetensors and the config as JSON, and only then is the file renamed into
the cache. Cached files are checked the same way each time they are used: a damaged one is removed and downloaded
again (or reported, offline or when the Hub cannot be reached).

Time limits (the fail-fast note): a connection must open within :data:`CONNECT_TIMEOUT_S` (or
``HF_HUB_ETAG_TIMEOUT`` if lower); a metadata request must be answered within ``HF_HUB_ETAG_TIMEOUT`` (default 10 s)
more, with no retries, after which the cache is used (as when the Hub is down), so an unreachable Hub costs seconds,
not the library's half a minute of retries; a file transfer must bring at least ``SGNSEP_HUB_MIN_RATE`` bytes per
second (default 1000; 0 turns this off) on average over every ``HF_HUB_DOWNLOAD_TIMEOUT`` seconds (default 10, also
the longest a read may wait); and a whole checkpoint fetch must end within ``SGNSEP_HUB_TIMEOUT`` seconds (default
3600), so a server that trickles a byte every few seconds is given up on.

Publishing: :func:`push_checkpoint` validates a checkpoint folder strictly, then commits exactly its ``config.json``
and ``model.safetensors`` plus a generated model card ``README.md`` (:mod:`sgnsep.model_card`) with
``HfApi.create_repo(exist_ok=True)`` and ``HfApi.create_commit``, so the library's upload path (LFS or Xet, whichever
it picks), ``HF_ENDPOINT`` and the usual token sources (``HF_TOKEN``, ``hf auth login``) apply unchanged.
"""

from __future__ import annotations

import errno
import logging
import os
import re
from pathlib import Path

from sgnsep import hub_fetch
from sgnsep.core.errors import ModelError

__all__ = [
    "CHECKPOINT_FILES",
    "CONNECT_TIMEOUT_S",
    "PICKLE_SUFFIXES",
    "PushResult",
    "download_checkpoint",
    "is_commit_hash",
    "parse_repo_id",
    "push_checkpoint",
]

#: Files fetched from a checkpoint repo, in this order (config first: it is small and resolves the commit).
CHECKPOINT_FILES: tuple[str, ...] = ("config.json", "model.safetensors")

#: Seconds allowed to open a connection to the Hub before it is considered unreachable.
CONNECT_TIMEOUT_S: float = 5.0

log = logging.getLogger(__name__)

_COMMIT_RE = re.compile(r"[0-9a-f]{40}")
# One part of a repo id: ASCII letters, digits, '-', '_', '.'; starting and ending with a letter or digit.
_ID_PART_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?")
# Characters git forbids in ref names (plus whitespace and control characters).
_BAD_REF_CHARS_RE = re.compile(r"[\s\x00-\x1f\x7f~^:?*\[\\]")

_FORMAT_HINT = (
    "Use the form owner/name or owner/name@revision (a branch, tag or 40-character commit id), "
    "e.g. acme/sgn-base or acme/sgn-base@v1.0; for a checkpoint folder on disk pass --model /path/to/folder."
)


def is_commit_hash(revision: str | None) -> bool:
    """True when ``revision`` is a full 40-character lowercase hexadecimal commit id."""
    return revision is not None and _COMMIT_RE.fullmatch(revision) is not None


def parse_repo_id(spec: str) -> tuple[str, str | None]:
    """Split ``owner/name`` or ``owner/name@revision`` into ``(repo_id, revision_or_None)``.

    The repo id must have exactly one ``/``; each part uses ASCII letters, digits, ``-``, ``_`` and ``.``, starts and
    ends with a letter or digit, has at most 96 characters and contains no ``--`` or ``..``; the name cannot end with
    ``.git``. The revision may be a branch (``main``, ``refs/pr/3``), a tag (``v1.0``) or a 40-hex commit id; it must
    be a valid git ref name. Raises :class:`ModelError` otherwise.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ModelError("No Hub model id was given.", hint=_FORMAT_HINT)
    spec = spec.strip()
    repo_id, sep, revision = spec.partition("@")
    if sep and not revision:
        raise ModelError(f"The Hub model id '{spec}' ends with '@' but names no revision.", hint=_FORMAT_HINT)
    _validate_repo_id(repo_id, spec)
    if not sep:
        return repo_id, None
    _validate_revision(revision, spec)
    return repo_id, revision


def _validate_repo_id(repo_id: str, spec: str) -> None:
    looks_like_path = (
        repo_id.startswith(("/", "./", "../", "~"))
        or "\\" in repo_id
        or repo_id.count("/") > 1
        or repo_id.endswith((".json", ".safetensors"))
    )
    if looks_like_path:
        raise ModelError(
            f"'{spec}' is not a Hub model id (owner/name); it looks like a file system path.",
            hint="To use a checkpoint folder on disk pass --model /path/to/folder (it must hold config.json and "
            "model.safetensors).",
        )
    parts = repo_id.split("/")
    if len(parts) != 2:
        raise ModelError(f"The Hub model id '{spec}' has no owner: it must be owner/name.", hint=_FORMAT_HINT)
    for part in parts:
        if not _ID_PART_RE.fullmatch(part) or "--" in part or ".." in part:
            raise ModelError(
                f"The Hub model id '{spec}' is not valid: '{part}' must use only ASCII letters, digits, '-', '_' "
                "and '.', start and end with a letter or digit, have at most 96 characters and contain no '--' "
                "or '..'.",
                hint=_FORMAT_HINT,
            )
    if parts[1].lower().endswith(".git"):
        raise ModelError(f"The Hub model id '{spec}' is not valid: the name cannot end with '.git'.", hint=_FORMAT_HINT)


def _validate_revision(revision: str, spec: str) -> None:
    problem = None
    if _BAD_REF_CHARS_RE.search(revision):
        problem = "it contains spaces or one of ~ ^ : ? * [ \\"
    elif "@{" in revision or revision == "@":
        problem = "it contains '@{'"
    elif ".." in revision or "//" in revision:
        problem = "it contains '..' or '//'"
    elif revision.startswith(("/", "-", ".")) or revision.endswith(("/", ".", ".lock")):
        problem = "it starts with '/', '-' or '.' or ends with '/', '.' or '.lock'"
    elif any(part.startswith(".") for part in revision.split("/")):
        problem = "a path component starts with '.'"
    elif len(revision) > 255:
        problem = "it is longer than 255 characters"
    if problem:
        raise ModelError(f"The revision '{revision}' in '{spec}' is not a valid branch, tag or commit id: {problem}.",
                         hint=_FORMAT_HINT)


# --------------------------------------------------------------------------------------------------------------------
# Download
# --------------------------------------------------------------------------------------------------------------------


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def _offline_mode() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or _env_true("HF_HUB_OFFLINE") or _env_true("TRANSFORMERS_OFFLINE")


def _endpoint() -> str:
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def _cache_dir(cache_dir: str | os.PathLike | None) -> Path:
    from huggingface_hub import constants

    if cache_dir is None:
        cache_dir = os.environ.get("HF_HUB_CACHE") or constants.HF_HUB_CACHE
    return Path(os.path.expandvars(os.fspath(cache_dir))).expanduser().resolve()


def _etag_timeout() -> float:
    from huggingface_hub import constants

    value = os.environ.get("HF_HUB_ETAG_TIMEOUT")
    try:
        return float(value) if value else float(constants.HF_HUB_ETAG_TIMEOUT)
    except ValueError:
        return float(constants.HF_HUB_ETAG_TIMEOUT)


def _connect_timeout() -> float:
    return min(CONNECT_TIMEOUT_S, _etag_timeout())


def _download_timeout() -> float:
    from huggingface_hub import constants

    value = os.environ.get("HF_HUB_DOWNLOAD_TIMEOUT")
    try:
        seconds = float(value) if value else float(constants.HF_HUB_DOWNLOAD_TIMEOUT)
    except ValueError:
        seconds = float(constants.HF_HUB_DOWNLOAD_TIMEOUT)
    return seconds if seconds > 0 else float(constants.DEFAULT_DOWNLOAD_TIMEOUT)


def _one_line(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


class _Context:
    """What a failure message needs to know."""

    def __init__(self, repo_id: str, revision: str | None, endpoint: str, cache_dir: Path):
        self.repo_id = repo_id
        self.revision = revision
        self.endpoint = endpoint
        self.cache_dir = cache_dir

    @property
    def spec(self) -> str:
        return self.repo_id if self.revision is None else f"{self.repo_id}@{self.revision}"

    def fallback_hint(self) -> str:
        return (
            f"Pre-fetch it with `sgnsep pull {self.spec}` on a connected machine (and copy its Hugging Face cache, "
            f"see HF_HUB_CACHE), or copy the checkpoint folder (config.json + model.safetensors) to this machine and "
            f"pass `--model /path/to/folder`."
        )


def _connectivity_errors() -> tuple[type[BaseException], ...]:
    import httpx2
    from huggingface_hub.errors import OfflineModeIsEnabled

    return (httpx2.TransportError, OfflineModeIsEnabled)


def _hub_unreachable_reason(exc: BaseException | None) -> str | None:
    """A short reason if ``exc`` means the Hub could not be reached at all (network, proxy, timeout, offline)."""
    if exc is None:
        return None
    import httpx2
    from huggingface_hub.errors import OfflineModeIsEnabled

    if isinstance(exc, OfflineModeIsEnabled):
        return "offline mode is enabled (HF_HUB_OFFLINE)"
    if isinstance(exc, hub_fetch.NoAnswer):
        return f"it did not answer within {exc.seconds:g} s; HF_HUB_ETAG_TIMEOUT sets how long to wait"
    if isinstance(exc, hub_fetch.DeadlineExceeded):
        return f"no answer within the {exc.timeout_s:g} s that SGNSEP_HUB_TIMEOUT allows"
    if isinstance(exc, httpx2.ProxyError):
        return f"the proxy refused the connection: {_one_line(exc)}"
    if isinstance(exc, httpx2.ConnectTimeout):
        return f"no connection within {_connect_timeout():g} s"
    if isinstance(exc, httpx2.TimeoutException):
        return f"the Hub did not answer in time ({_one_line(exc)})"
    if isinstance(exc, httpx2.TransportError):
        return _one_line(exc)
    return None


class _FileFetchError(Exception):
    """A library error raised while fetching one checkpoint file (internal: always mapped to ModelError)."""

    def __init__(self, filename: str, error: BaseException):
        super().__init__(filename, error)
        self.filename = filename
        self.error = error


class _DamagedCache(Exception):
    """A cached checkpoint file failed its check and was removed (internal: the caller decides what follows)."""

    def __init__(self, filename: str, problem: str):
        super().__init__(filename, problem)
        self.filename = filename
        self.problem = problem


def _from_cache(ctx: _Context, revision: str | None) -> Path:
    """The cached snapshot of ``revision`` (no network), every file checked (:func:`sgnsep.hub_fetch.cached_problem`).

    Raises _FileFetchError when a file is not cached, _DamagedCache (after removing it) when one is damaged.
    """
    from huggingface_hub import hf_hub_download

    storage = hub_fetch.storage_folder(ctx.cache_dir, ctx.repo_id)
    snapshot: Path | None = None
    for filename in CHECKPOINT_FILES:
        try:
            path = Path(hf_hub_download(ctx.repo_id, filename, revision=revision, cache_dir=ctx.cache_dir,
                                        endpoint=ctx.endpoint, local_files_only=True))
        except Exception as exc:  # noqa: BLE001 - mapped to ModelError by the caller
            raise _FileFetchError(filename, exc) from exc
        problem = hub_fetch.cached_problem(path, filename)
        if problem is not None:
            hub_fetch.discard_cached(storage, path)
            raise _DamagedCache(filename, problem)
        if snapshot is None:
            snapshot = path.parent
            # Pin the weights to the commit config.json came from (a ref may have moved since).
            if is_commit_hash(snapshot.name):
                revision = snapshot.name
    assert snapshot is not None
    return snapshot


def _damaged_error(failure: _DamagedCache, ctx: _Context, *, offline: bool,
                   unreachable: BaseException | None) -> ModelError:
    what = (f"The cached copy of '{failure.filename}' of '{ctx.spec}' in {ctx.cache_dir} was damaged "
            f"({failure.problem}) and has been removed")
    if offline:
        return ModelError(f"{what}; offline mode is on (HF_HUB_OFFLINE=1 or local files only), so no good copy can "
                          f"be downloaded.",
                          hint="Unset HF_HUB_OFFLINE and run the command again to download it. " + ctx.fallback_hint())
    reason = _hub_unreachable_reason(unreachable) or _one_line(unreachable or Exception("no answer"))
    return ModelError(f"{what}, and the Hub at {ctx.endpoint} cannot be reached to download a good copy ({reason}).",
                      hint="Check the network connection, proxy, or the HF_ENDPOINT setting, and run the command "
                      "again. " + ctx.fallback_hint())


def _not_cached_error(head_error: BaseException, ctx: _Context, filename: str) -> ModelError:
    """The Hub did not give the metadata of ``filename`` and there is no (good) cached copy."""
    from huggingface_hub.errors import FileMetadataError, HfHubHTTPError

    if isinstance(head_error, (HfHubHTTPError, FileMetadataError)):
        return _model_error(head_error, ctx, filename, offline=False, not_cached=True)
    if isinstance(head_error, hub_fetch.DeadlineExceeded):
        return _model_error(head_error, ctx, filename, offline=False)
    reason = _hub_unreachable_reason(head_error) or _one_line(head_error)
    return ModelError(
        f"Cannot reach the Hugging Face Hub at {ctx.endpoint} ({reason}) and '{filename}' of '{ctx.spec}' is not in "
        f"the cache at {ctx.cache_dir}.",
        hint="Check the network connection, proxy, or the HF_ENDPOINT setting. " + ctx.fallback_hint(),
    )


def _soft_metadata_errors() -> tuple[type[BaseException], ...]:
    """Metadata failures after which a cached copy is used, as hf_hub_download does: the Hub cannot be reached, does
    not answer (in time), answers an HTTP error (down, 401 private repo without a token, not a Hub); but not "this
    revision or file does not exist", which the Hub says for sure."""
    import httpx2
    from huggingface_hub.errors import FileMetadataError, HfHubHTTPError

    return (httpx2.TransportError, hub_fetch.NoAnswer, hub_fetch.DeadlineExceeded, HfHubHTTPError, FileMetadataError)


def _hard_metadata_errors() -> tuple[type[BaseException], ...]:
    from huggingface_hub.errors import RemoteEntryNotFoundError, RevisionNotFoundError

    return (RevisionNotFoundError, RemoteEntryNotFoundError)


def _from_hub(ctx: _Context, revision: str | None, limits) -> Path:
    """Fetch every checkpoint file online: metadata from the Hub, bytes checked before they enter the cache; a cached
    copy is checked and reused (or replaced when damaged). Falls back to the cache when the Hub cannot be asked."""
    storage = hub_fetch.storage_folder(ctx.cache_dir, ctx.repo_id)
    commit: str | None = None
    snapshot: Path | None = None
    for filename in CHECKPOINT_FILES:
        try:
            remote = hub_fetch.remote_file(ctx.repo_id, filename, commit or revision, endpoint=ctx.endpoint,
                                           limits=limits)
        except _hard_metadata_errors() as exc:
            raise _model_error(exc, ctx, filename, offline=False) from exc
        except _soft_metadata_errors() as exc:
            if commit is None:  # nothing asked yet: the checkpoint as cached for this revision, if it is
                try:
                    return _from_cache(ctx, revision)
                except _DamagedCache as failure:
                    raise _damaged_error(failure, ctx, offline=False, unreachable=exc) from None
                except _FileFetchError as failure:
                    raise _not_cached_error(exc, ctx, failure.filename) from exc
            try:  # config.json came from the Hub: the weights of that commit, if cached
                snapshot = _from_cache(ctx, commit)
                break
            except _DamagedCache as failure:
                raise _damaged_error(failure, ctx, offline=False, unreachable=exc) from None
            except _FileFetchError:
                raise _not_cached_error(exc, ctx, filename) from exc
        except Exception as exc:  # noqa: BLE001 - every library / network failure becomes one message
            raise _model_error(exc, ctx, filename, offline=False) from exc
        if commit is not None and remote.commit != commit:
            raise ModelError(
                f"The Hub at {ctx.endpoint} answered commit {remote.commit} for '{filename}' of '{ctx.spec}' when "
                f"asked for commit {commit}.",
                hint="Check HF_ENDPOINT (a mirror must serve the files of the commit asked for) and run the command "
                "again.",
            )
        try:
            path = hub_fetch.fetch(storage, remote, limits, spec=ctx.spec)
        except ModelError:
            raise
        except Exception as exc:  # noqa: BLE001 - every library / network / disk failure becomes one message
            raise _model_error(exc, ctx, filename, offline=False) from exc
        commit, snapshot = remote.commit, path.parent
    assert commit is not None and snapshot is not None
    if not is_commit_hash(revision or "main"):
        # Written once every file is in place: a branch whose weights did not arrive keeps leading to the last
        # snapshot that is complete, for offline use.
        try:
            hub_fetch.write_ref(storage, revision or "main", commit)
        except OSError as exc:
            raise _model_error(exc, ctx, None, offline=False) from exc
    return snapshot


def _model_error(exc: BaseException, ctx: _Context, filename: str | None, *, offline: bool,
                 unreachable: BaseException | None = None, not_cached: bool = False) -> ModelError:
    """Map a huggingface_hub / httpx2 / OS exception to an actionable ModelError."""
    import httpx2
    from huggingface_hub.errors import (
        DisabledRepoError,
        FileMetadataError,
        GatedRepoError,
        HfHubHTTPError,
        HFValidationError,
        LocalEntryNotFoundError,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = f"on {ctx.endpoint}"
    no_copy = f", and there is no cached copy in {ctx.cache_dir}" if not_cached else ""
    rev = ctx.revision or "main"
    what_file = f"'{filename}' of " if filename else ""

    if isinstance(exc, hub_fetch.FetchError):
        return _fetch_error(exc, ctx)

    if isinstance(exc, GatedRepoError):
        return ModelError(
            f"The model repo '{ctx.repo_id}' {where} is gated: you must accept its conditions to download it.",
            hint="Accept them on the repo's Hub page, then log in with `hf auth login` or set HF_TOKEN; or pass "
            "--model /path/to/folder for a checkpoint on disk.",
        )
    if isinstance(exc, RevisionNotFoundError):
        return ModelError(
            f"The revision '{rev}' does not exist in the model repo '{ctx.repo_id}' {where}.",
            hint="Check the branch, tag or commit id after '@' (or leave '@...' out to use the default branch "
            "'main').",
        )
    if isinstance(exc, RepositoryNotFoundError):
        return ModelError(
            f"The model repo '{ctx.repo_id}' was not found {where} (it does not exist, or it is private and no valid "
            f"token was sent).",
            hint="Check the spelling of owner/name; for a private repo log in with `hf auth login` or set HF_TOKEN; "
            "for a checkpoint folder on disk pass --model /path/to/folder.",
        )
    if isinstance(exc, DisabledRepoError):
        return ModelError(
            f"The model repo '{ctx.repo_id}' {where} has been disabled by the Hub.",
            hint="Use another checkpoint, or pass --model /path/to/folder for a checkpoint on disk.",
        )
    if isinstance(exc, RemoteEntryNotFoundError):
        return ModelError(
            f"The model repo '{ctx.repo_id}' (revision '{rev}') {where} has no file '{filename}': an sgnsep "
            f"checkpoint needs {' and '.join(CHECKPOINT_FILES)}.",
            hint="Check that this repo (and revision) is an sgnsep checkpoint; to publish one, upload both files to "
            "the repo root.",
        )
    if isinstance(exc, LocalEntryNotFoundError):
        if offline:
            return ModelError(
                f"Offline mode is on (HF_HUB_OFFLINE=1 or local files only) and {what_file}'{ctx.spec}' is not in "
                f"the Hugging Face cache at {ctx.cache_dir}.",
                hint="Unset HF_HUB_OFFLINE to download it. " + ctx.fallback_hint(),
            )
        cause = exc.__cause__
        reason = _hub_unreachable_reason(unreachable) or _hub_unreachable_reason(cause)
        if reason is None and isinstance(cause, (HfHubHTTPError, FileMetadataError)):
            # The endpoint answered, but with an error (5xx, or not a Hub at all), and there is no cached copy.
            return _model_error(cause, ctx, filename, offline=offline, not_cached=True)
        return ModelError(
            f"Cannot reach the Hugging Face Hub at {ctx.endpoint} ({reason or _one_line(exc)}) and "
            f"{what_file}'{ctx.spec}' is not in the cache at {ctx.cache_dir}.",
            hint="Check the network connection, proxy, or the HF_ENDPOINT setting. " + ctx.fallback_hint(),
        )
    if isinstance(exc, httpx2.TransportError):
        # Reached the Hub for the metadata but the transfer itself failed (after the library's own retries).
        return ModelError(
            f"Downloading {what_file}'{ctx.spec}' from {ctx.endpoint} failed: {_hub_unreachable_reason(exc)}.",
            hint="Check the network connection and run the command again (finished files are kept in the cache). "
            + ctx.fallback_hint(),
        )
    if isinstance(exc, HfHubHTTPError):
        status = exc.response.status_code if getattr(exc, "response", None) is not None else None
        server = getattr(exc, "server_message", None)
        detail = f"HTTP {status}" + (f": {_one_line(Exception(server))}" if server else "")
        if status in (401, 403):
            hint = "Log in with `hf auth login` or set HF_TOKEN to a token that can read this repo."
        elif status is not None and status >= 500 or status == 429:
            hint = "The Hub is busy or down: try again in a few minutes. " + ctx.fallback_hint()
        else:
            hint = "Check the model id and the HF_ENDPOINT setting. " + ctx.fallback_hint()
        return ModelError(f"The Hub at {ctx.endpoint} answered {detail} for {what_file}'{ctx.spec}'{no_copy}.", hint=hint)
    if isinstance(exc, FileMetadataError):
        return ModelError(
            f"The server at {ctx.endpoint} did not answer like a Hugging Face Hub for {what_file}'{ctx.spec}' "
            f"({_one_line(exc)}){no_copy}.",
            hint="Check HF_ENDPOINT and any proxy or firewall in between. " + ctx.fallback_hint(),
        )
    if isinstance(exc, HFValidationError):
        return ModelError(f"'{ctx.spec}' is not a valid Hub model id: {_one_line(exc)}.", hint=_FORMAT_HINT)
    if isinstance(exc, OSError):
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT):
            return ModelError(
                f"Cannot write {what_file}'{ctx.spec}' to the Hugging Face cache at {ctx.cache_dir}: "
                f"{exc.strerror or _one_line(exc)}.",
                hint="Free some space or point HF_HUB_CACHE (or HF_HOME) at a writable folder with enough space.",
            )
        if "Consistency check failed" in str(exc):
            return ModelError(
                f"The download of {what_file}'{ctx.spec}' from {ctx.endpoint} was incomplete (size mismatch).",
                hint="This is usually a network hiccup: run the command again.",
            )
        return ModelError(
            f"Fetching {what_file}'{ctx.spec}' failed: {_one_line(exc)}.",
            hint=f"Check the cache folder {ctx.cache_dir} and run the command again. " + ctx.fallback_hint(),
        )
    return ModelError(
        f"Fetching {what_file}'{ctx.spec}' from {ctx.endpoint} failed: {type(exc).__name__}: {_one_line(exc)}.",
        hint="Run the command again; if it keeps failing: " + ctx.fallback_hint(),
    )


def _fetch_error(exc: BaseException, ctx: _Context) -> ModelError:
    """The message of a failure found by sgnsep.hub_fetch: too slow, too late, other bytes than announced."""
    name = f"'{exc.filename}' of '{ctx.spec}'"
    nothing = "The file was not added to the cache (a partial download is never kept)."
    if isinstance(exc, hub_fetch.DeadlineExceeded):
        got = f" ({exc.received:,} of {exc.size:,} bytes had arrived)" if exc.size is not None else ""
        return ModelError(
            f"Fetching {name} from {ctx.endpoint} did not finish within {exc.timeout_s:g} s{got}. {nothing}",
            hint="On a slow connection allow more time with SGNSEP_HUB_TIMEOUT=SECONDS (default "
            f"{hub_fetch.DEFAULT_TIMEOUT_S:g}) and run the command again; otherwise check the network, proxy or "
            "HF_ENDPOINT. " + ctx.fallback_hint(),
        )
    if isinstance(exc, hub_fetch.TooSlow):
        return ModelError(
            f"Downloading {name} from {ctx.endpoint} was too slow: {exc.received:,} bytes in the last "
            f"{exc.seconds:.1f} s, below the minimum of {exc.min_rate:g} bytes/s. {nothing}",
            hint="Check the network, proxy or HF_ENDPOINT and run the command again; on a link that slow lower "
            "SGNSEP_HUB_MIN_RATE=BYTES_PER_SECOND (0 turns the check off; HF_HUB_DOWNLOAD_TIMEOUT sets the window, "
            "in seconds). " + ctx.fallback_hint(),
        )
    if isinstance(exc, hub_fetch.BadDownload):
        return ModelError(
            f"The server at {ctx.endpoint} sent other bytes for {name} than it announced ({exc.detail}). {nothing}",
            hint="Run the command again; if it happens again, a mirror or proxy between you and the Hub is altering "
            "files: check HF_ENDPOINT and HTTP(S)_PROXY. " + ctx.fallback_hint(),
        )
    if isinstance(exc, hub_fetch.BadContent):
        return ModelError(
            f"{name} on {ctx.endpoint} is {exc.detail}: the repo holds no usable sgnsep "
            f"checkpoint. The file was not added to the cache.",
            hint="Use another model, or ask the repo's owner to publish a checkpoint written by `sgnsep train` (with "
            "`sgnsep push`, which checks it first).",
        )
    if isinstance(exc, hub_fetch.Unverifiable):
        return ModelError(
            f"The server at {ctx.endpoint} gave no checksum to verify {name} against ({exc.detail}), so it was not "
            f"downloaded.",
            hint="Check HF_ENDPOINT: it must be the Hugging Face Hub or a mirror that passes on its ETag, "
            "X-Linked-Etag and size headers. " + ctx.fallback_hint(),
        )
    reason = _hub_unreachable_reason(exc) or _one_line(exc)
    return ModelError(f"Fetching {name} from {ctx.endpoint} failed: {reason}.",
                      hint="Run the command again; if it keeps failing: " + ctx.fallback_hint())


def download_checkpoint(
    repo_id: str,
    revision: str | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool | None = None,
) -> Path:
    """Fetch ``config.json`` and ``model.safetensors`` of a Hub checkpoint; return the snapshot folder holding both.

    Args:
        repo_id: ``owner/name`` (``owner/name@revision`` is accepted too when ``revision`` is not given).
        revision: branch, tag or 40-hex commit id; default: the repo's default branch ``main``.
        cache_dir: Hugging Face cache folder; default ``HF_HUB_CACHE`` (``$HF_HOME/hub``).
        local_files_only: ``True``: use the cache only, never the network. ``None`` (default): ``True`` when
            ``HF_HUB_OFFLINE`` is set, else ``False``.

    Returns:
        ``<cache>/models--owner--name/snapshots/<commit>``: a folder holding both files (as symlinks into the
        cache's blob store), both checked. A cached copy is used when it is current and intact (or when the Hub
        cannot be reached).

    Raises:
        ModelError: invalid id, repo/revision/file not found, gated/private repo, Hub unreachable (or offline mode)
            and not cached, cache not writable, interrupted download, a download that is too slow or not done by
            the deadline, bytes that differ from what the Hub announced, weights that are not safetensors, a damaged
            cached copy that cannot be downloaded again.
        UsageError: SGNSEP_HUB_TIMEOUT or SGNSEP_HUB_MIN_RATE is not a valid number.
    """
    spec_repo, spec_revision = parse_repo_id(repo_id)
    if revision is not None:
        if not isinstance(revision, str) or not revision.strip():
            raise ModelError(f"An empty revision was given for '{spec_repo}'.", hint=_FORMAT_HINT)
        revision = revision.strip()
        _validate_revision(revision, f"{spec_repo}@{revision}")
        if spec_revision is not None and spec_revision != revision:
            raise ModelError(
                f"Two different revisions were given for '{spec_repo}': '{spec_revision}' and '{revision}'.",
                hint="Give the revision once, either as owner/name@revision or as the revision option.",
            )
    else:
        revision = spec_revision

    offline = _offline_mode() if local_files_only is None else bool(local_files_only)
    ctx = _Context(spec_repo, revision, _endpoint(), _cache_dir(cache_dir))
    # The clock starts before anything else, and the settings are checked before any request is made.
    limits = hub_fetch.Limits.from_env(window_s=_download_timeout(), etag_s=_etag_timeout(),
                                       connect_s=_connect_timeout())
    # A pull killed earlier (even by SIGKILL) left its temporary file: this is where it goes.
    hub_fetch.remove_stale_partials(hub_fetch.storage_folder(ctx.cache_dir, ctx.repo_id))

    # A commit id is immutable: if it is cached (and intact), no network call is needed at all.
    if offline or is_commit_hash(revision):
        try:
            return _from_cache(ctx, revision)
        except _FileFetchError as failure:
            if offline:
                raise _model_error(failure.error, ctx, failure.filename, offline=True) from failure.error
        except _DamagedCache as failure:
            if offline:
                raise _damaged_error(failure, ctx, offline=True, unreachable=None) from None
            log.warning("The cached '%s' of '%s' was damaged (%s) and has been removed; downloading it again.",
                        failure.filename, ctx.spec, failure.problem)
    return _from_hub(ctx, revision, limits)


# --------------------------------------------------------------------------------------------------------------------
# Upload
# --------------------------------------------------------------------------------------------------------------------

#: File suffixes that may hold pickled Python objects: a folder holding any of them is never pushed.
PICKLE_SUFFIXES: tuple[str, ...] = (".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle")

#: The model card generated by :func:`push_checkpoint`.
CARD_FILE = "README.md"

_TOKEN_HINT = (
    "Log in with `hf auth login` (or set HF_TOKEN) with a token that has write access, or pass --token hf_...; "
    "tokens are made at https://huggingface.co/settings/tokens."
)
_PUSH_REPO_HINT = (
    "Pass --repo as owner/name (ASCII letters, digits, '-', '_' and '.'; e.g. --repo acme/sgn-strings), optionally "
    "with @branch; the checkpoint folder goes to --model."
)


class PushResult(str):
    """What :func:`push_checkpoint` returns: the URL of the commit (a ``str``), plus where it went.

    Attributes: ``repo_id``, ``revision`` (the branch), ``commit_id`` (40 hex), ``commit_url`` (``str(self)``),
    ``repo_url``, ``endpoint``, ``files`` (the files sent), ``classes`` (the model's classes), ``changed`` (False
    when the branch already held exactly these files, so no commit was made and ``commit_id`` is the branch's head).
    """

    repo_id: str
    revision: str
    commit_id: str
    repo_url: str
    endpoint: str
    files: tuple[str, ...]
    classes: tuple[str, ...]
    changed: bool

    def __new__(cls, commit_url: str, *, repo_id: str, revision: str, commit_id: str, endpoint: str,
                files: tuple[str, ...], changed: bool, classes: tuple[str, ...] = ()) -> "PushResult":
        self = super().__new__(cls, commit_url)
        self.repo_id, self.revision, self.commit_id = repo_id, revision, commit_id
        self.endpoint, self.files, self.changed, self.classes = endpoint, tuple(files), changed, tuple(classes)
        self.repo_url = f"{endpoint}/{repo_id}" + ("" if revision == "main" else f"/tree/{revision}")
        return self

    @property
    def commit_url(self) -> str:
        return str(self)


def _push_target(repo_id: str, revision: str | None) -> tuple[str, str]:
    """Validate ``owner/name[@branch]`` and ``revision`` for a push; return ``(repo_id, branch)``."""
    try:
        spec_repo, spec_revision = parse_repo_id(repo_id)
    except ModelError as exc:
        raise ModelError(exc.message.replace("Hub model id", "Hub repo id"), hint=_PUSH_REPO_HINT) from None
    if revision is not None:
        if not isinstance(revision, str) or not revision.strip():
            raise ModelError(f"An empty revision was given for '{spec_repo}'.",
                             hint="Name a branch, e.g. --revision main.")
        revision = revision.strip()
        try:
            _validate_revision(revision, f"{spec_repo}@{revision}")
        except ModelError as exc:
            raise ModelError(exc.message, hint="Name a branch, e.g. --revision main or --revision candidate.") from None
        if spec_revision is not None and spec_revision != revision:
            raise ModelError(
                f"Two different branches were given for '{spec_repo}': '{spec_revision}' and '{revision}'.",
                hint="Give the branch once, either as --repo owner/name@branch or with --revision.",
            )
    revision = revision or spec_revision or "main"
    if is_commit_hash(revision):
        raise ModelError(
            f"Cannot push to the commit id '{revision}': a push adds a commit on top of a branch.",
            hint="Name a branch with --revision (it is created from main if it does not exist).",
        )
    return spec_repo, revision


def _read_validated_checkpoint(folder: Path):
    """Strictly load the checkpoint and return ``(loaded, config_bytes, weights_bytes)``: exactly the validated bytes.

    The bytes are read around the validation and compared with what was validated, so a checkpoint that is being
    rewritten (e.g. ``runs/x/best`` while training still runs) is refused instead of being pushed half old, half new.
    """
    import hashlib

    from sgnsep.models.checkpoint import CONFIG_NAME, WEIGHTS_NAME, load_checkpoint

    if not folder.exists():
        raise ModelError(f"Checkpoint folder {folder} does not exist.",
                         hint="Pass --model the folder `sgnsep train` wrote, e.g. runs/x/best.")
    if not folder.is_dir():
        raise ModelError(f"--model {folder} is a file; a checkpoint is a folder holding {CONFIG_NAME} and "
                         f"{WEIGHTS_NAME}.", hint=f"Pass the folder: --model {folder.parent}")
    pickles = sorted(
        p.relative_to(folder).as_posix() for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in PICKLE_SUFFIXES
    )
    if pickles:
        shown = ", ".join(pickles[:5]) + (f" (+{len(pickles) - 5} more)" if len(pickles) > 5 else "")
        raise ModelError(
            f"Refusing to push {folder}: it holds pickle-style files ({shown}), which can run code when loaded and "
            f"are never part of an sgnsep checkpoint.",
            hint=f"Push a folder that holds only {CONFIG_NAME} and {WEIGHTS_NAME} (as `sgnsep train` writes them in "
            f"runs/x/best); move the other files out or copy those two files to a clean folder.",
        )
    config_path, weights_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    if not config_path.is_file():
        inside = [sub for sub in ("best", "last") if (folder / sub / CONFIG_NAME).is_file()]
        if inside:
            raise ModelError(
                f"{folder} has no {CONFIG_NAME}: it looks like a training run folder, not a checkpoint.",
                hint=f"Push one of its checkpoints, e.g. --model {folder / inside[0]}",
            )
    try:
        config_before = config_path.read_bytes() if config_path.is_file() else None
    except OSError as exc:
        raise ModelError(f"Cannot read {config_path}: {exc.strerror or exc}.") from None
    loaded = load_checkpoint(folder)  # strict: config, weights, names and shapes must all agree
    try:
        config_bytes = config_path.read_bytes()
        weights_bytes = weights_path.read_bytes()
    except OSError as exc:
        raise ModelError(f"Cannot read the checkpoint in {folder}: {exc.strerror or exc}.") from None
    if config_bytes != config_before or hashlib.sha256(weights_bytes).hexdigest() != loaded.sha256:
        raise ModelError(
            f"The checkpoint in {folder} changed while it was being read (is training still writing it?).",
            hint="Wait until training has finished writing it (or copy the folder elsewhere) and push again.",
        )
    return loaded, config_bytes, weights_bytes


def _resolve_token(token: str | None) -> tuple[str | None, str | None]:
    """``(token, where it came from)``: --token, else HF_TOKEN, else the `hf auth login` token; (None, None) if none."""
    if token is not None:
        token = token.strip()
        if not token:
            raise ModelError("The token given is empty.", hint=_TOKEN_HINT)
        return token, "--token"
    from huggingface_hub import get_token

    try:
        found = get_token()
    except Exception as exc:  # noqa: BLE001 - e.g. an HF_OIDC_RESOURCE exchange that failed
        raise ModelError(f"Could not get a Hugging Face token: {_one_line(exc)}.", hint=_TOKEN_HINT) from None
    if not found:
        return None, None
    env = (os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN") or "").strip()
    return found, "HF_TOKEN" if env and env == found else "the saved login (`hf auth login`)"


def _probe_write_hub(endpoint: str, repo_id: str, token: str | None) -> BaseException | None:
    """One GET of the repo's info with a short connect timeout: the connectivity error if the Hub is unreachable.

    huggingface_hub's upload requests have no timeout and retry connection errors with back-off, so without this a
    black-holed endpoint would hang the push; the answer itself (repo found or not) does not matter here.
    """
    import httpx2
    from huggingface_hub.utils import build_hf_headers, get_session

    timeout = httpx2.Timeout(_etag_timeout(), connect=_connect_timeout())
    headers = build_hf_headers(token=token if token else False)
    try:
        get_session().get(f"{endpoint}/api/models/{repo_id}", headers=headers, timeout=timeout)
    except _connectivity_errors() as exc:
        return exc
    except Exception:  # answered, or failed in another way: the real calls report it
        return None
    return None


def _push_error(exc: BaseException, *, endpoint: str, repo_id: str, revision: str, stage: str,
                token_source: str | None) -> ModelError:
    """Map a huggingface_hub / httpx2 error raised while pushing to an actionable ModelError."""
    import httpx2
    from huggingface_hub.errors import (
        HfHubHTTPError,
        HFValidationError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    # An LFS upload failure arrives as RuntimeError("Error while uploading 'x' to the Hub.") from the real error.
    while isinstance(exc, RuntimeError) and exc.__cause__ is not None and "upload" in str(exc).lower():
        exc = exc.__cause__
    target = f"'{repo_id}' (branch '{revision}') on {endpoint}"
    nothing = "Nothing was committed."

    if isinstance(exc, OfflineModeIsEnabled):
        return ModelError(f"Cannot push to {target}: offline mode is on (HF_HUB_OFFLINE).",
                          hint="Unset HF_HUB_OFFLINE and run the command again.")
    if isinstance(exc, httpx2.TransportError):
        return ModelError(
            f"Cannot reach the Hugging Face Hub at {endpoint} while {stage} ({_hub_unreachable_reason(exc)}). "
            f"{nothing}",
            hint="Check the network connection, proxy, or the HF_ENDPOINT setting, and run the command again.",
        )
    if isinstance(exc, HFValidationError):
        return ModelError(f"'{repo_id}' is not a valid Hub repo id: {_one_line(exc)}.", hint=_PUSH_REPO_HINT)
    if isinstance(exc, HfHubHTTPError) and getattr(exc, "response", None) is not None:
        status = exc.response.status_code
        server = getattr(exc, "server_message", None) or exc.response.headers.get("X-Error-Message")
        detail = f"HTTP {status}" + (f": {_one_line(Exception(server))}" if server else "")
        if status == 401:
            if token_source is None:
                return ModelError(
                    f"No Hugging Face token was found, and the Hub at {endpoint} refused to let an anonymous user "
                    f"push to '{repo_id}' ({detail}). {nothing}",
                    hint=_TOKEN_HINT,
                )
            return ModelError(
                f"The Hub at {endpoint} rejected the token from {token_source} while {stage} ({detail}). {nothing}",
                hint="The token may be invalid, expired or read-only. " + _TOKEN_HINT,
            )
        if status == 403:
            owner = repo_id.split("/")[0]
            return ModelError(
                f"The token from {token_source or 'nowhere (none was sent)'} may not write to {target} ({detail}). "
                f"{nothing}",
                hint=f"Use a token with write access to '{owner}' (a fine-grained token needs write permission on "
                f"that namespace), or push to a namespace you own. " + _TOKEN_HINT,
            )
        if isinstance(exc, RevisionNotFoundError):
            return ModelError(
                f"The branch '{revision}' does not exist in '{repo_id}' on {endpoint} and could not be created "
                f"({detail}). {nothing}",
                hint="Push to an existing branch, or create it on the Hub first.",
            )
        if isinstance(exc, RepositoryNotFoundError) or status == 404:
            return ModelError(
                f"The model repo '{repo_id}' was not found on {endpoint} while {stage} ({detail}). {nothing}",
                hint="Check that the token can see and write to this repo. " + _TOKEN_HINT,
            )
        if status == 400:
            return ModelError(
                f"The Hub at {endpoint} refused the request while {stage} for '{repo_id}' ({detail}). {nothing}",
                hint="Check the repo name (owner/name: ASCII letters, digits, '-', '_' and '.', starting and ending "
                "with a letter or digit) and the branch name.",
            )
        if status in (409, 412):
            return ModelError(
                f"The branch '{revision}' of '{repo_id}' changed while pushing ({detail}). {nothing}",
                hint="Run the command again.",
            )
        if status == 413:
            return ModelError(f"The Hub at {endpoint} refused the upload as too large ({detail}). {nothing}",
                              hint="Check the size of model.safetensors and the Hub's limits.")
        if status == 429 or status >= 500:
            return ModelError(
                f"The Hub at {endpoint} answered {detail} while {stage}. {nothing}",
                hint="The Hub is busy or down: try again in a few minutes (a commit is all-or-nothing, so running "
                "the command again is safe).",
            )
        return ModelError(f"The Hub at {endpoint} answered {detail} while {stage} for '{repo_id}'. {nothing}",
                          hint="Check the repo id, your token and the HF_ENDPOINT setting.")
    if isinstance(exc, ValueError):
        return ModelError(
            f"Pushing to {target} failed while {stage}: {_one_line(exc)}. {nothing}",
            hint="If HF_ENDPOINT points at a mirror, check that it accepts uploads like the Hugging Face Hub.",
        )
    return ModelError(
        f"Pushing to {target} failed while {stage}: {type(exc).__name__}: {_one_line(exc)}. {nothing}",
        hint="Run the command again; if it keeps failing, check HF_ENDPOINT, the network and your token.",
    )


def push_checkpoint(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    revision: str | None = None,
    private: bool = False,
    token: str | None = None,
    message: str | None = None,
    card: bool = True,
) -> PushResult:
    """Publish a checkpoint folder to the Hugging Face Hub as one commit; return the commit's URL.

    The folder is validated first (strict :func:`sgnsep.models.checkpoint.load_checkpoint`: config, weights, tensor names
    and shapes must agree) and refused if it holds pickle-style files (:data:`PICKLE_SUFFIXES`); nothing is sent
    before that. Then, through huggingface_hub's own upload path (``HfApi.create_repo(exist_ok=True)``,
    ``create_branch(exist_ok=True)`` for a branch other than ``main``, ``create_commit``), exactly the validated
    ``config.json`` and ``model.safetensors`` bytes and a generated model card ``README.md``
    (:func:`sgnsep.model_card.model_card`) are committed. Files identical to the branch's are skipped by the library;
    if all are, no commit is made (``result.changed`` is False).

    Args:
        folder: checkpoint folder (``config.json`` + ``model.safetensors``), e.g. ``runs/x/best``.
        repo_id: ``owner/name`` (``owner/name@branch`` accepted too); the repo is created if it does not exist.
        revision: branch to commit to (default ``main``); created from ``main`` if missing.
        private: create the repo as private (no effect on a repo that exists already).
        token: a Hugging Face token with write access; default ``HF_TOKEN`` or the ``hf auth login`` token.
        message: commit message; default "Upload sgnsep checkpoint <name>".
        card: also upload the generated ``README.md`` model card.

    Returns:
        :class:`PushResult`: the commit URL as a ``str``, with ``commit_id``, ``repo_url``, ``revision``, ...

    Raises:
        ModelError: invalid checkpoint or repo id, pickle files in the folder, no or rejected token (401/403), Hub
            unreachable or offline mode, and any other Hub error, each with what to do next.
    """
    from sgnsep._version import __version__
    from sgnsep.models.checkpoint import CONFIG_NAME, WEIGHTS_NAME

    repo_id, revision = _push_target(repo_id, revision)
    folder = Path(folder).expanduser()
    loaded, config_bytes, weights_bytes = _read_validated_checkpoint(folder)
    meta, weights_sha256 = loaded.meta, loaded.sha256
    files: dict[str, bytes] = {CONFIG_NAME: config_bytes, WEIGHTS_NAME: weights_bytes}
    if card:
        from sgnsep.model_card import model_card

        num_parameters = sum(p.numel() for p in loaded.model.parameters())
        files[CARD_FILE] = model_card(
            meta, repo_id=repo_id, num_parameters=num_parameters, weights_bytes=len(weights_bytes),
            weights_sha256=weights_sha256, where=str(folder / CONFIG_NAME),
        ).encode("utf-8")
    del loaded  # the model itself is not needed any more

    endpoint = _endpoint()
    if _offline_mode():
        raise ModelError(f"Cannot push to '{repo_id}': offline mode is on (HF_HUB_OFFLINE=1).",
                         hint="Unset HF_HUB_OFFLINE (and TRANSFORMERS_OFFLINE) and run the command again.")
    token, token_source = _resolve_token(token)
    send_token: str | bool = token if token else False

    unreachable = _probe_write_hub(endpoint, repo_id, token)
    if unreachable is not None:
        raise ModelError(
            f"Cannot reach the Hugging Face Hub at {endpoint} ({_hub_unreachable_reason(unreachable)}). "
            f"Nothing was uploaded.",
            hint="Check the network connection, proxy, or the HF_ENDPOINT setting, and run the command again.",
        )

    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(endpoint=endpoint, library_name="sgnsep", library_version=__version__)
    name = meta.name or folder.resolve().name
    summary = (message or "").strip() or f"Upload sgnsep checkpoint {name}"
    description = (
        f"sgnsep {__version__} checkpoint '{name}': {len(meta.classes)} classes ({', '.join(meta.classes)}), "
        f"{meta.audio.sample_rate} Hz; model.safetensors sha256 {weights_sha256}."
    )
    operations = [CommitOperationAdd(path_in_repo=path, path_or_fileobj=data) for path, data in files.items()]
    stage = "creating the repo"
    try:
        api.create_repo(repo_id, token=send_token, private=True if private else None, repo_type="model",
                        exist_ok=True)
        if revision != "main" and not revision.startswith("refs/pr/"):
            stage = f"creating the branch '{revision}'"
            api.create_branch(repo_id, branch=revision, token=send_token, repo_type="model", exist_ok=True)
        stage = "uploading and committing the files"
        info = api.create_commit(
            repo_id, operations, commit_message=summary, commit_description=description, token=send_token,
            repo_type="model", revision=revision,
        )
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - every library/network failure becomes one actionable message
        raise _push_error(exc, endpoint=endpoint, repo_id=repo_id, revision=revision, stage=stage,
                          token_source=token_source) from exc
    changed = any(getattr(op, "_is_committed", True) for op in operations)
    commit_id = str(info.oid)
    commit_url = str(getattr(info, "commit_url", "") or f"{endpoint}/{repo_id}/commit/{commit_id}")
    return PushResult(commit_url, repo_id=repo_id, revision=revision, commit_id=commit_id, endpoint=endpoint,
                      files=tuple(files), changed=changed, classes=tuple(meta.classes))
