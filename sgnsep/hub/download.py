"""Fetch sgnsep checkpoints from the Hugging Face Hub (:func:`download_checkpoint`).

A checkpoint is a Hub model repo (or a local folder) holding ``config.json`` and ``model.safetensors``
(optionally ``README.md``). Files go into the standard Hugging Face cache, in its usual layout, so the cache and the
settings other Hugging Face tools use apply unchanged:

* the cache lives in ``HF_HUB_CACHE`` (default ``$HF_HOME/hub``, i.e. ``~/.cache/huggingface/hub``),
* ``owner/name@revision`` pins a branch, a tag or a 40-hex commit id,
* ``HF_ENDPOINT`` points at a mirror or a private Hub, ``HF_TOKEN`` / ``hf auth login`` give access to private repos,
* ``HF_HUB_OFFLINE=1`` never touches the network and uses the cache only.

Verified downloads: the bytes are fetched by :mod:`sgnsep.hub.transfer` rather than ``hf_hub_download`` (which
accepts any bytes of the announced length into the cache, and never checks a cached file again). Each file's
length and checksum are checked against the Hub's metadata, the weights are parsed as safetensors and the config as
JSON, and only then is the file renamed into the cache. Cached files are checked the same way each time they are
used: a damaged one is removed and downloaded again (or reported, offline or when the Hub cannot be reached). A
whole checkpoint fetch must end within ``SGNSEP_HUB_TIMEOUT`` seconds (default 3600).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from sgnsep.core.errors import ModelError
from sgnsep.hub.blob_cache import cached_problem, discard_cached, storage_folder, write_ref
from sgnsep.hub.download_errors import (
    Context, DamagedCache, FileFetchError, damaged_error, model_error, not_cached_error,
)
from sgnsep.hub.limits import DeadlineExceeded, Limits, NoAnswer
from sgnsep.hub.repo_id import FORMAT_HINT, is_commit_hash, parse_repo_id, validate_revision
from sgnsep.hub.settings import (
    CHECKPOINT_FILES, connect_timeout, download_timeout, etag_timeout, hub_cache_dir, hub_endpoint, offline_mode,
)
from sgnsep.hub.transfer import fetch, remote_file, remove_stale_partials

log = logging.getLogger(__name__)


def _from_cache(ctx: Context, revision: str | None) -> Path:
    """The cached snapshot of ``revision`` (no network), every file checked (:func:`sgnsep.hub.blob_cache.cached_problem`).

    Raises FileFetchError when a file is not cached, DamagedCache (after removing it) when one is damaged.
    """
    from huggingface_hub import hf_hub_download

    storage = storage_folder(ctx.cache_dir, ctx.repo_id)
    snapshot: Path | None = None
    for filename in CHECKPOINT_FILES:
        try:
            path = Path(hf_hub_download(ctx.repo_id, filename, revision=revision, cache_dir=ctx.cache_dir,
                                        endpoint=ctx.endpoint, local_files_only=True))
        except Exception as exc:  # noqa: BLE001 - mapped to ModelError by the caller
            raise FileFetchError(filename, exc) from exc
        problem = cached_problem(path, filename)
        if problem is not None:
            discard_cached(storage, path)
            raise DamagedCache(filename, problem)
        if snapshot is None:
            snapshot = path.parent
            # Pin the weights to the commit config.json came from (a ref may have moved since).
            if is_commit_hash(snapshot.name):
                revision = snapshot.name
    assert snapshot is not None
    return snapshot


def _soft_metadata_errors() -> tuple[type[BaseException], ...]:
    """Metadata failures after which a cached copy is used, as hf_hub_download does: the Hub cannot be reached, does
    not answer (in time), answers an HTTP error (down, 401 private repo without a token, not a Hub); but not "this
    revision or file does not exist", which the Hub says for sure."""
    import httpx2
    from huggingface_hub.errors import FileMetadataError, HfHubHTTPError

    return (httpx2.TransportError, NoAnswer, DeadlineExceeded, HfHubHTTPError, FileMetadataError)


def _hard_metadata_errors() -> tuple[type[BaseException], ...]:
    from huggingface_hub.errors import RemoteEntryNotFoundError, RevisionNotFoundError

    return (RevisionNotFoundError, RemoteEntryNotFoundError)


def _from_hub(ctx: Context, revision: str | None, limits) -> Path:
    """Fetch every checkpoint file online: metadata from the Hub, bytes checked before they enter the cache; a cached
    copy is checked and reused (or replaced when damaged). Falls back to the cache when the Hub cannot be asked."""
    storage = storage_folder(ctx.cache_dir, ctx.repo_id)
    commit: str | None = None
    snapshot: Path | None = None
    for filename in CHECKPOINT_FILES:
        try:
            remote = remote_file(ctx.repo_id, filename, commit or revision, endpoint=ctx.endpoint,
                                           limits=limits)
        except _hard_metadata_errors() as exc:
            raise model_error(exc, ctx, filename, offline=False) from exc
        except _soft_metadata_errors() as exc:
            if commit is None:  # nothing asked yet: the checkpoint as cached for this revision, if it is
                try:
                    return _from_cache(ctx, revision)
                except DamagedCache as failure:
                    raise damaged_error(failure, ctx, offline=False, unreachable=exc) from None
                except FileFetchError as failure:
                    raise not_cached_error(exc, ctx, failure.filename) from exc
            try:  # config.json came from the Hub: the weights of that commit, if cached
                snapshot = _from_cache(ctx, commit)
                break
            except DamagedCache as failure:
                raise damaged_error(failure, ctx, offline=False, unreachable=exc) from None
            except FileFetchError:
                raise not_cached_error(exc, ctx, filename) from exc
        except Exception as exc:  # noqa: BLE001 - every library / network failure becomes one message
            raise model_error(exc, ctx, filename, offline=False) from exc
        if commit is not None and remote.commit != commit:
            raise ModelError(
                f"The Hub at {ctx.endpoint} answered commit {remote.commit} for '{filename}' of '{ctx.spec}' when "
                f"asked for commit {commit}.",
                hint="Check HF_ENDPOINT (a mirror must serve the files of the commit asked for) and run the command "
                "again.",
            )
        try:
            path = fetch(storage, remote, limits, spec=ctx.spec)
        except ModelError:
            raise
        except Exception as exc:  # noqa: BLE001 - every library / network / disk failure becomes one message
            raise model_error(exc, ctx, filename, offline=False) from exc
        commit, snapshot = remote.commit, path.parent
    assert commit is not None and snapshot is not None
    if not is_commit_hash(revision or "main"):
        # Written once every file is in place: a branch whose weights did not arrive keeps leading to the last
        # snapshot that is complete, for offline use.
        try:
            write_ref(storage, revision or "main", commit)
        except OSError as exc:
            raise model_error(exc, ctx, None, offline=False) from exc
    return snapshot


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
            raise ModelError(f"An empty revision was given for '{spec_repo}'.", hint=FORMAT_HINT)
        revision = revision.strip()
        validate_revision(revision, f"{spec_repo}@{revision}")
        if spec_revision is not None and spec_revision != revision:
            raise ModelError(
                f"Two different revisions were given for '{spec_repo}': '{spec_revision}' and '{revision}'.",
                hint="Give the revision once, either as owner/name@revision or as the revision option.",
            )
    else:
        revision = spec_revision

    offline = offline_mode() if local_files_only is None else bool(local_files_only)
    ctx = Context(spec_repo, revision, hub_endpoint(), hub_cache_dir(cache_dir))
    # The clock starts before anything else, and the settings are checked before any request is made.
    limits = Limits.from_env(window_s=download_timeout(), etag_s=etag_timeout(),
                                       connect_s=connect_timeout())
    # A pull killed earlier (even by SIGKILL) left its temporary file: this is where it goes.
    remove_stale_partials(storage_folder(ctx.cache_dir, ctx.repo_id))

    # A commit id is immutable: if it is cached (and intact), no network call is needed at all.
    if offline or is_commit_hash(revision):
        try:
            return _from_cache(ctx, revision)
        except FileFetchError as failure:
            if offline:
                raise model_error(failure.error, ctx, failure.filename, offline=True) from failure.error
        except DamagedCache as failure:
            if offline:
                raise damaged_error(failure, ctx, offline=True, unreachable=None) from None
            log.warning("The cached '%s' of '%s' was damaged (%s) and has been removed; downloading it again.",
                        failure.filename, ctx.spec, failure.problem)
    return _from_hub(ctx, revision, limits)
