"""The Hub's repo ids and revisions as sgnsep accepts them: ``owner/name@revision``, where the revision is a
branch, a tag or a 40-hex commit id; each part checked before anything is requested."""

from __future__ import annotations

import re

from sgnsep.core.errors import ModelError


COMMIT_RE = re.compile(r"[0-9a-f]{40}")


# One part of a repo id: ASCII letters, digits, '-', '_', '.'; starting and ending with a letter or digit.
_ID_PART_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?")


# Characters git forbids in ref names (plus whitespace and control characters).
_BAD_REF_CHARS_RE = re.compile(r"[\s\x00-\x1f\x7f~^:?*\[\\]")


FORMAT_HINT = (
    "Use the form owner/name or owner/name@revision (a branch, tag or 40-character commit id), "
    "e.g. acme/sgn-base or acme/sgn-base@v1.0; for a checkpoint folder on disk pass --model /path/to/folder."
)


# What a spec must look like to be taken for a Hub id at all (rather than a missing local folder or a name
# that is not registered); parse_repo_id then checks it strictly.
_LOOKS_LIKE_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(@[\w./-]+)?$")


def looks_like_repo_id(spec: str) -> bool:
    """Whether ``spec`` has the shape ``owner/name[@revision]`` and is not a path (``./x/y``, ``/x/y``, ``~/x``)."""
    return bool(_LOOKS_LIKE_REPO_ID.match(spec)) and not spec.startswith((".", "/", "~"))


def is_commit_hash(revision: str | None) -> bool:
    """True when ``revision`` is a full 40-character lowercase hexadecimal commit id."""
    return revision is not None and COMMIT_RE.fullmatch(revision) is not None


def parse_repo_id(spec: str) -> tuple[str, str | None]:
    """Split ``owner/name`` or ``owner/name@revision`` into ``(repo_id, revision_or_None)``.

    The repo id must have exactly one ``/``; each part uses ASCII letters, digits, ``-``, ``_`` and ``.``, starts and
    ends with a letter or digit, has at most 96 characters and contains no ``--`` or ``..``; the name cannot end with
    ``.git``. The revision may be a branch (``main``, ``refs/pr/3``), a tag (``v1.0``) or a 40-hex commit id; it must
    be a valid git ref name. Raises :class:`ModelError` otherwise.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ModelError("No Hub model id was given.", hint=FORMAT_HINT)
    spec = spec.strip()
    repo_id, sep, revision = spec.partition("@")
    if sep and not revision:
        raise ModelError(f"The Hub model id '{spec}' ends with '@' but names no revision.", hint=FORMAT_HINT)
    _validate_repo_id(repo_id, spec)
    if not sep:
        return repo_id, None
    validate_revision(revision, spec)
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
        raise ModelError(f"The Hub model id '{spec}' has no owner: it must be owner/name.", hint=FORMAT_HINT)
    for part in parts:
        if not _ID_PART_RE.fullmatch(part) or "--" in part or ".." in part:
            raise ModelError(
                f"The Hub model id '{spec}' is not valid: '{part}' must use only ASCII letters, digits, '-', '_' "
                "and '.', start and end with a letter or digit, have at most 96 characters and contain no '--' "
                "or '..'.",
                hint=FORMAT_HINT,
            )
    if parts[1].lower().endswith(".git"):
        raise ModelError(f"The Hub model id '{spec}' is not valid: the name cannot end with '.git'.", hint=FORMAT_HINT)


def validate_revision(revision: str, spec: str) -> None:
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
                         hint=FORMAT_HINT)
