"""Fetch sgnsep checkpoints from the Hugging Face Hub.

A checkpoint is a Hub model repo (or a local folder) holding ``config.json`` and ``model.safetensors``
(optionally ``README.md``). Files are fetched with :func:`huggingface_hub.hf_hub_download`, so the standard
Hugging Face cache and settings apply unchanged:

* the cache lives in ``HF_HUB_CACHE`` (default ``$HF_HOME/hub``, i.e. ``~/.cache/huggingface/hub``),
* ``owner/name@revision`` pins a branch, a tag or a 40-hex commit id,
* ``HF_ENDPOINT`` points at a mirror or a private Hub, ``HF_TOKEN`` / ``hf auth login`` give access to private repos,
* ``HF_HUB_OFFLINE=1`` never touches the network and uses the cache only.

huggingface_hub reads its environment variables once, when it is imported. :func:`download_checkpoint` reads
``HF_ENDPOINT``, ``HF_HUB_CACHE`` and ``HF_HUB_OFFLINE`` again at call time (falling back to the library's
values), so a value set after import (e.g. by a test, or by the CLI before calling in) is honoured too.

Every failure is raised as :class:`sgnsep.errors.ModelError` with one actionable message.

Fail-fast note: when the Hub cannot be reached and the file is not cached, ``hf_hub_download`` (huggingface_hub 2.x)
retries the metadata request with a 60 s timeout and exponential back-off (about half a minute or more). To fail in a
few seconds instead, :func:`download_checkpoint` first probes the Hub with a single HEAD request for ``config.json``
(connect timeout :data:`CONNECT_TIMEOUT_S`, no retries). If the Hub is unreachable it goes straight to the cache
(``local_files_only=True``); otherwise it calls ``hf_hub_download`` as usual.
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

from sgnsep.errors import ModelError

__all__ = [
    "CHECKPOINT_FILES",
    "CONNECT_TIMEOUT_S",
    "download_checkpoint",
    "is_commit_hash",
    "parse_repo_id",
]

#: Files fetched from a checkpoint repo, in this order (config first: it is small and resolves the commit).
CHECKPOINT_FILES: tuple[str, ...] = ("config.json", "model.safetensors")

#: Seconds allowed to open a connection to the Hub before it is considered unreachable.
CONNECT_TIMEOUT_S: float = 5.0

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
    if isinstance(exc, httpx2.ProxyError):
        return f"the proxy refused the connection: {_one_line(exc)}"
    if isinstance(exc, httpx2.ConnectTimeout):
        return f"no connection within {_connect_timeout():g} s"
    if isinstance(exc, httpx2.TimeoutException):
        return f"the Hub did not answer in time ({_one_line(exc)})"
    if isinstance(exc, httpx2.TransportError):
        return _one_line(exc)
    return None


def _probe_hub(ctx: _Context, revision: str | None) -> BaseException | None:
    """One HEAD request for config.json, short connect timeout, no retries.

    Returns the connectivity error if the Hub cannot be reached, else None (whatever the answer: errors such as
    "repo not found" are left to hf_hub_download, which raises them with the library's own semantics).
    """
    import httpx2
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    url = hf_hub_url(ctx.repo_id, CHECKPOINT_FILES[0], revision=revision, endpoint=ctx.endpoint)
    timeout = httpx2.Timeout(_etag_timeout(), connect=_connect_timeout())
    try:
        get_hf_file_metadata(url, timeout=timeout, endpoint=ctx.endpoint)  # type: ignore[arg-type]
    except _connectivity_errors() as exc:
        return exc
    except Exception:  # answered, but with an error: hf_hub_download reports it
        return None
    return None


class _FileFetchError(Exception):
    """A library error raised while fetching one checkpoint file (internal: always mapped to ModelError)."""

    def __init__(self, filename: str, error: BaseException):
        super().__init__(filename, error)
        self.filename = filename
        self.error = error


def _fetch(ctx: _Context, revision: str | None, *, local_files_only: bool) -> Path:
    """hf_hub_download every checkpoint file; all from the commit the first one resolved to."""
    from huggingface_hub import hf_hub_download

    snapshot: Path | None = None
    for filename in CHECKPOINT_FILES:
        try:
            path = Path(
                hf_hub_download(
                    ctx.repo_id,
                    filename,
                    revision=revision,
                    cache_dir=ctx.cache_dir,
                    endpoint=ctx.endpoint,
                    etag_timeout=_etag_timeout(),
                    local_files_only=local_files_only,
                )
            )
        except Exception as exc:  # noqa: BLE001 - mapped to ModelError by the caller
            raise _FileFetchError(filename, exc) from exc
        if snapshot is None:
            snapshot = path.parent
            # Pin the remaining files to the commit config.json came from, so a branch that moves in between cannot
            # mix files of two commits (and cached files then resolve without any network call).
            if is_commit_hash(snapshot.name):
                revision = snapshot.name
        elif path.parent != snapshot:  # pragma: no cover - defensive, hf_hub_download keeps one folder per commit
            raise ModelError(
                f"The files of '{ctx.spec}' were cached in two different snapshot folders ({snapshot} and "
                f"{path.parent}).",
                hint=f"Delete the cached copy under {ctx.cache_dir} and download it again.",
            )
    assert snapshot is not None
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
        cache's blob store). A cached copy is used when it is current (or when the Hub cannot be reached).

    Raises:
        ModelError: invalid id, repo/revision/file not found, gated/private repo, Hub unreachable (or offline mode)
            and not cached, cache not writable, interrupted download.
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

    def attempt(*, cache_only: bool, unreachable: BaseException | None = None) -> Path:
        try:
            return _fetch(ctx, revision, local_files_only=cache_only)
        except _FileFetchError as failure:
            raise _model_error(
                failure.error, ctx, failure.filename, offline=offline, unreachable=unreachable
            ) from failure.error

    if offline:
        return attempt(cache_only=True)

    # A commit id is immutable: if it is cached, no network call is needed at all (hf_hub_download does the same).
    if is_commit_hash(revision):
        try:
            return _fetch(ctx, revision, local_files_only=True)
        except _FileFetchError:  # not (fully) cached: go online below
            pass

    unreachable = _probe_hub(ctx, revision)
    if unreachable is not None:
        # Hub unreachable: use the cache right away instead of letting hf_hub_download retry for half a minute.
        return attempt(cache_only=True, unreachable=unreachable)
    return attempt(cache_only=False)
