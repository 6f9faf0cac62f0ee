"""Every way fetching a checkpoint can fail, each turned into one :class:`sgnsep.core.errors.ModelError` with an
actionable message: what was asked for, what went wrong, what to do."""

from __future__ import annotations

import errno
from pathlib import Path

from sgnsep.core.errors import ModelError
from sgnsep.hub.limits import (
    BadContent, BadDownload, DEFAULT_TIMEOUT_S, DeadlineExceeded, FetchError, TooSlow, Unverifiable,
)
from sgnsep.hub.repo_id import FORMAT_HINT
from sgnsep.hub.settings import CHECKPOINT_FILES, hub_unreachable_reason, one_line


class Context:
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


class FileFetchError(Exception):
    """A library error raised while fetching one checkpoint file (internal: always mapped to ModelError)."""

    def __init__(self, filename: str, error: BaseException):
        super().__init__(filename, error)
        self.filename = filename
        self.error = error


class DamagedCache(Exception):
    """A cached checkpoint file failed its check and was removed (internal: the caller decides what follows)."""

    def __init__(self, filename: str, problem: str):
        super().__init__(filename, problem)
        self.filename = filename
        self.problem = problem


def damaged_error(failure: DamagedCache, ctx: Context, *, offline: bool,
                   unreachable: BaseException | None) -> ModelError:
    what = (f"The cached copy of '{failure.filename}' of '{ctx.spec}' in {ctx.cache_dir} was damaged "
            f"({failure.problem}) and has been removed")
    if offline:
        return ModelError(f"{what}; offline mode is on (HF_HUB_OFFLINE=1 or local files only), so no good copy can "
                          f"be downloaded.",
                          hint="Unset HF_HUB_OFFLINE and run the command again to download it. " + ctx.fallback_hint())
    reason = hub_unreachable_reason(unreachable) or one_line(unreachable or Exception("no answer"))
    return ModelError(f"{what}, and the Hub at {ctx.endpoint} cannot be reached to download a good copy ({reason}).",
                      hint="Check the network connection, proxy, or the HF_ENDPOINT setting, and run the command "
                      "again. " + ctx.fallback_hint())


def not_cached_error(head_error: BaseException, ctx: Context, filename: str) -> ModelError:
    """The Hub did not give the metadata of ``filename`` and there is no (good) cached copy."""
    from huggingface_hub.errors import FileMetadataError, HfHubHTTPError

    if isinstance(head_error, (HfHubHTTPError, FileMetadataError)):
        return model_error(head_error, ctx, filename, offline=False, not_cached=True)
    if isinstance(head_error, DeadlineExceeded):
        return model_error(head_error, ctx, filename, offline=False)
    reason = hub_unreachable_reason(head_error) or one_line(head_error)
    return ModelError(
        f"Cannot reach the Hugging Face Hub at {ctx.endpoint} ({reason}) and '{filename}' of '{ctx.spec}' is not in "
        f"the cache at {ctx.cache_dir}.",
        hint="Check the network connection, proxy, or the HF_ENDPOINT setting. " + ctx.fallback_hint(),
    )


def model_error(exc: BaseException, ctx: Context, filename: str | None, *, offline: bool,
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

    if isinstance(exc, FetchError):
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
        reason = hub_unreachable_reason(unreachable) or hub_unreachable_reason(cause)
        if reason is None and isinstance(cause, (HfHubHTTPError, FileMetadataError)):
            # The endpoint answered, but with an error (5xx, or not a Hub at all), and there is no cached copy.
            return model_error(cause, ctx, filename, offline=offline, not_cached=True)
        return ModelError(
            f"Cannot reach the Hugging Face Hub at {ctx.endpoint} ({reason or one_line(exc)}) and "
            f"{what_file}'{ctx.spec}' is not in the cache at {ctx.cache_dir}.",
            hint="Check the network connection, proxy, or the HF_ENDPOINT setting. " + ctx.fallback_hint(),
        )
    if isinstance(exc, httpx2.TransportError):
        # Reached the Hub for the metadata but the transfer itself failed (after the library's own retries).
        return ModelError(
            f"Downloading {what_file}'{ctx.spec}' from {ctx.endpoint} failed: {hub_unreachable_reason(exc)}.",
            hint="Check the network connection and run the command again (finished files are kept in the cache). "
            + ctx.fallback_hint(),
        )
    if isinstance(exc, HfHubHTTPError):
        status = exc.response.status_code if getattr(exc, "response", None) is not None else None
        server = getattr(exc, "server_message", None)
        detail = f"HTTP {status}" + (f": {one_line(Exception(server))}" if server else "")
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
            f"({one_line(exc)}){no_copy}.",
            hint="Check HF_ENDPOINT and any proxy or firewall in between. " + ctx.fallback_hint(),
        )
    if isinstance(exc, HFValidationError):
        return ModelError(f"'{ctx.spec}' is not a valid Hub model id: {one_line(exc)}.", hint=FORMAT_HINT)
    if isinstance(exc, OSError):
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT):
            return ModelError(
                f"Cannot write {what_file}'{ctx.spec}' to the Hugging Face cache at {ctx.cache_dir}: "
                f"{exc.strerror or one_line(exc)}.",
                hint="Free some space or point HF_HUB_CACHE (or HF_HOME) at a writable folder with enough space.",
            )
        if "Consistency check failed" in str(exc):
            return ModelError(
                f"The download of {what_file}'{ctx.spec}' from {ctx.endpoint} was incomplete (size mismatch).",
                hint="This is usually a network hiccup: run the command again.",
            )
        return ModelError(
            f"Fetching {what_file}'{ctx.spec}' failed: {one_line(exc)}.",
            hint=f"Check the cache folder {ctx.cache_dir} and run the command again. " + ctx.fallback_hint(),
        )
    return ModelError(
        f"Fetching {what_file}'{ctx.spec}' from {ctx.endpoint} failed: {type(exc).__name__}: {one_line(exc)}.",
        hint="Run the command again; if it keeps failing: " + ctx.fallback_hint(),
    )


def _fetch_error(exc: BaseException, ctx: Context) -> ModelError:
    """The message of a failure found by sgnsep.hub.transfer: too slow, too late, other bytes than announced."""
    name = f"'{exc.filename}' of '{ctx.spec}'"
    nothing = "The file was not added to the cache (a partial download is never kept)."
    if isinstance(exc, DeadlineExceeded):
        got = f" ({exc.received:,} of {exc.size:,} bytes had arrived)" if exc.size is not None else ""
        return ModelError(
            f"Fetching {name} from {ctx.endpoint} did not finish within {exc.timeout_s:g} s{got}. {nothing}",
            hint="On a slow connection allow more time with SGNSEP_HUB_TIMEOUT=SECONDS (default "
            f"{DEFAULT_TIMEOUT_S:g}) and run the command again; otherwise check the network, proxy or "
            "HF_ENDPOINT. " + ctx.fallback_hint(),
        )
    if isinstance(exc, TooSlow):
        return ModelError(
            f"Downloading {name} from {ctx.endpoint} was too slow: {exc.received:,} bytes in the last "
            f"{exc.seconds:.1f} s, below the minimum of {exc.min_rate:g} bytes/s. {nothing}",
            hint="Check the network, proxy or HF_ENDPOINT and run the command again; on a link that slow lower "
            "SGNSEP_HUB_MIN_RATE=BYTES_PER_SECOND (0 turns the check off; HF_HUB_DOWNLOAD_TIMEOUT sets the window, "
            "in seconds). " + ctx.fallback_hint(),
        )
    if isinstance(exc, BadDownload):
        return ModelError(
            f"The server at {ctx.endpoint} sent other bytes for {name} than it announced ({exc.detail}). {nothing}",
            hint="Run the command again; if it happens again, a mirror or proxy between you and the Hub is altering "
            "files: check HF_ENDPOINT and HTTP(S)_PROXY. " + ctx.fallback_hint(),
        )
    if isinstance(exc, BadContent):
        return ModelError(
            f"{name} on {ctx.endpoint} is {exc.detail}: the repo holds no usable sgnsep "
            f"checkpoint. The file was not added to the cache.",
            hint="Use another model, or ask the repo's owner to publish a checkpoint written by `sgnsep train` (with "
            "`sgnsep push`, which checks it first).",
        )
    if isinstance(exc, Unverifiable):
        return ModelError(
            f"The server at {ctx.endpoint} gave no checksum to verify {name} against ({exc.detail}), so it was not "
            f"downloaded.",
            hint="Check HF_ENDPOINT: it must be the Hugging Face Hub or a mirror that passes on its ETag, "
            "X-Linked-Etag and size headers. " + ctx.fallback_hint(),
        )
    reason = hub_unreachable_reason(exc) or one_line(exc)
    return ModelError(f"Fetching {name} from {ctx.endpoint} failed: {reason}.",
                      hint="Run the command again; if it keeps failing: " + ctx.fallback_hint())
