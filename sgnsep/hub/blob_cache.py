"""The Hugging Face cache layout, and the checks that let a file into it or keep it there::

    <cache>/models--owner--name/blobs/<etag>                          the bytes
    <cache>/models--owner--name/snapshots/<commit>/<file> -> ../../blobs/<etag>
    <cache>/models--owner--name/refs/<branch or tag>                  the commit id

A file's length, checksum (the ETag: sha256 for LFS files, the git blob id for the others) and format (safetensors
/ JSON) are checked before it is accepted, and a cached file the same way each time it is used
(:func:`cached_problem`), so a damaged one is noticed and replaced instead of being loaded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from pathlib import Path

log = logging.getLogger(__name__)


#: A config.json larger than this is not a checkpoint config (and is not read into memory to find out).
MAX_CONFIG_BYTES = 16 * 1024 * 1024


ETAG_RE = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")  # git blob sha1 (regular files) or sha256 (LFS files)


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
    etag = blob.name if blob.parent.name == "blobs" and ETAG_RE.fullmatch(blob.name) else None
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
