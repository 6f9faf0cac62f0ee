"""Outputs written whole or not at all, and never over an existing file by accident.

Every output goes to a temporary sibling ``.<name>.<pid>-<host>-<random>.partial`` (:class:`PartialFile`) and
is renamed into place when complete, so an interrupted or failed run leaves neither a half-written file nor a
temporary one. Audio streams through :class:`sgnsep.audio.audio_io.AtomicAudioWriter`; the small outputs here (JSON,
CSV, PNG, checkpoints) are built in memory and written by :func:`write_bytes_atomic`.

A process killed outright (SIGKILL, the OOM killer, a power cut) runs no cleanup at all and leaves its
temporary files. The writer's process id and a tag of its machine are in the name so that a later run can
tell such leftovers from the temporary files of a run still going: :func:`remove_stale_partials` removes only
those whose writer is no longer alive on this machine, and every writer sweeps the folder it writes into once.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import socket
from pathlib import Path
from typing import Iterable

from sgnsep.core.errors import OutputError
from sgnsep.core.interrupts import uninterrupted

# A 4-hex tag of this machine's name: a folder on a network file system may hold temporary files of writers
# on other machines, whose process ids mean nothing here; those are never removed.
HOST_TAG = hashlib.sha1(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:4]
_PARTIAL = re.compile(r"^\.(?P<target>.+)\.(?P<pid>[0-9]{1,10})-(?P<host>[0-9a-f]{4})-[0-9a-f]{8}\.partial$")
# Before process ids were in the name: ".<name>.<16 hex>.partial". Nothing says whose they are; only a caller
# that holds the folder's lock (a training run folder) may remove them.
_LEGACY_PARTIAL = re.compile(r"^\.(?P<target>.+)\.[0-9a-f]{16}\.partial$")
# Bytes the temporary name adds to an output's own name (".", ".", pid up to 10 digits, "-", tag, "-", 8 hex,
# ".partial"): the output's name must leave room for them within NAME_MAX.
PARTIAL_EXTRA = 1 + 1 + 10 + 1 + 4 + 1 + 8 + len(".partial")

_live: set["PartialFile"] = set()  # temporary files of this process not yet renamed or removed
_swept: set[Path] = set()  # folders already cleared of dead writers' leftovers by this process


def _alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine. Unknown counts as alive: a leftover is kept
    rather than a live run's file removed (a reused id only delays the removal)."""
    if pid == os.getpid():
        return True
    if os.name == "nt":  # os.kill(pid, 0) would send CTRL_C_EVENT there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, under another user
        return True
    return True


def remove_stale_partials(folder: Path, *, legacy: bool = False) -> list[Path]:
    """Remove the temporary files in ``folder`` (not below it) whose writer was killed on this machine, and
    with ``legacy`` those of older versions (whose names carry no process id: only for a folder this process
    holds locked, see :mod:`sgnsep.core.folder_lock`). Never the user's files, never a live run's. Returns what
    was removed."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if not (name.startswith(".") and name.endswith(".partial")):
            continue
        m = _PARTIAL.match(name)
        if m:
            if m["host"] != HOST_TAG or _alive(int(m["pid"])):
                continue
        elif not (legacy and _LEGACY_PARTIAL.match(name)):
            continue
        try:
            if entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:  # gone meanwhile, or not ours to remove: leave it
            pass
    return removed


def discard_partials() -> None:
    """Remove every temporary file this process has open: the last sweep of an interrupted command (each
    writer's own cleanup normally did it already; this makes "partial outputs were removed" true even if an
    interrupt landed before one of those cleanups began)."""
    with uninterrupted():
        for partial in list(_live):
            try:
                partial.discard()
            except OSError:
                pass


def apply_umask(path: Path) -> None:
    """Temporary files are created 0600; give finished outputs the permissions any new file would get."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


class PartialFile:
    """The temporary sibling ``.<name>.<pid>-<host>-<random>.partial`` of ``target``, named before it is created.

    Ctrl-C and SIGTERM arrive as exceptions between any two Python bytecodes. With ``tempfile.mkstemp`` one
    that lands after the file is created but before its name is returned and stored leaves an orphan that no
    cleanup knows of (CI saw it: a SIGTERM while the residual's temporary file was being made left
    ``.residual.wav.<random>.partial``). Here the name is held first, so :meth:`discard` removes the file
    whenever it got created; the caller keeps the object where its cleanup finds it before calling :meth:`create`.
    """

    def __init__(self, target: Path):
        self.target = Path(target)
        self.path = self._new_name()
        self._renaming = False
        _live.add(self)  # before the file can exist: discard_partials() knows of it whenever it is created

    def _new_name(self) -> Path:
        # The process id tells a killed writer's leftover from a live one's file; 32 random bits keep the
        # names of one process apart (a clash is retried below).
        tag = f"{os.getpid()}-{HOST_TAG}-{secrets.token_hex(4)}"
        return self.target.parent / f".{self.target.name}.{tag}.partial"

    def create(self) -> int:
        """Create the file (mode 0600, it must not exist yet) and return a descriptor open for writing."""
        folder = self.target.parent
        if folder not in _swept:  # once per folder: what killed writers left there goes
            _swept.add(folder)
            remove_stale_partials(folder)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        while True:
            try:
                return os.open(self.path, flags, 0o600)
            except FileExistsError:
                self.path = self._new_name()

    def publish(self) -> None:
        """Give the finished file the usual permissions and rename it over ``target``."""
        apply_umask(self.path)
        self._renaming = True
        os.replace(self.path, self.target)
        _live.discard(self)

    @property
    def renamed(self) -> bool:
        """Whether the file is now ``target``. Read from the disk (the rename is atomic), not from a flag set
        after it: an interrupt between the rename and such a flag would leave an output its cleanup misses."""
        return self._renaming and not self.path.exists()

    def discard(self) -> None:
        """Remove the temporary file, unless it has already been renamed into place. Idempotent, and not
        stopped half-way by a signal (see :mod:`sgnsep.core.interrupts`)."""
        with uninterrupted():
            if not self.renamed:
                self._renaming = False
                self.path.unlink(missing_ok=True)
            _live.discard(self)


class NewOutputs:
    """The files and folders one run adds, taken away again if the run does not finish.

    Used as ``with NewOutputs() as outputs:``; call :meth:`add` for each path *before* creating it. Only
    paths that do not exist yet are remembered, so what the user had is never removed; and since nothing is
    created before it is remembered, an interrupt (Ctrl-C, SIGTERM) at any point leaves nothing unaccounted
    for. Leaving the block on an exception removes the remembered files, then the remembered folders that
    are empty, newest first.
    """

    def __init__(self):
        self._paths: list[Path] = []

    def add(self, path: Path) -> Path:
        path = Path(path)
        if not path.exists():
            self._paths.append(path)
        return path

    def folder(self, path: Path) -> Path:
        """Create ``path`` and its missing parents, remembering those it creates."""
        path = Path(path)
        for missing in reversed([d for d in (path, *path.parents) if not d.exists()]):
            self.add(missing)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def remove(self) -> None:
        with uninterrupted():  # a signal now would leave half the outputs
            for path in reversed(self._paths):
                try:
                    if path.is_dir() and not path.is_symlink():
                        path.rmdir()  # only if empty: a folder the user filled meanwhile stays
                    else:
                        path.unlink(missing_ok=True)
                except OSError:
                    pass

    def __enter__(self) -> "NewOutputs":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.remove()


def refuse_existing(paths: Iterable[Path | None], overwrite: bool, option_hint: str = "--overwrite") -> None:
    """Raise before any work is done if an output exists and ``overwrite`` is off."""
    if overwrite:
        return
    for path in paths:
        if path is not None and Path(path).exists():
            raise OutputError(f"{path} already exists.", hint=f"Pass {option_hint} or choose another name.")


def write_bytes_atomic(path: Path, data: bytes, *, durable: bool = False) -> None:
    """Write ``data`` to ``path`` whole or not at all. ``durable`` also flushes it to the disk before the rename
    (checkpoints and training state: after a power cut the file holds the old contents or the new ones)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"Cannot write {path} ({exc.strerror or exc}).", hint="Choose another file or folder, or fix its permissions."
        ) from None
    partial = PartialFile(path)
    try:
        fd = partial.create()
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        partial.publish()
    except OSError as exc:
        partial.discard()
        raise OutputError(
            f"Cannot write {path} ({exc.strerror or exc}).",
            hint="Choose another file or folder, fix its permissions, or free some space.",
        ) from None
    except BaseException:  # Ctrl-C: no temporary file left behind
        partial.discard()
        raise


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))
