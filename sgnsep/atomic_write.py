"""Outputs written whole or not at all, and never over an existing file by accident.

Every output goes to a temporary sibling ``.<name>.<random>.partial`` (:class:`PartialFile`) and is renamed
into place when complete, so an interrupted or failed run leaves neither a half-written file nor a temporary
one. Audio streams through :class:`sgnsep.audio_io.AtomicAudioWriter`; the small outputs here (JSON, CSV, PNG,
checkpoints) are built in memory and written by :func:`write_bytes_atomic`.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Iterable

from sgnsep.errors import OutputError


def apply_umask(path: Path) -> None:
    """Temporary files are created 0600; give finished outputs the permissions any new file would get."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


class PartialFile:
    """The temporary sibling ``.<name>.<random>.partial`` of ``target``, named before it is created.

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

    def _new_name(self) -> Path:
        # 64 random bits: a name clash (retried below) is as unlikely as mkstemp's
        return self.target.parent / f".{self.target.name}.{secrets.token_hex(8)}.partial"

    def create(self) -> int:
        """Create the file (mode 0600, it must not exist yet) and return a descriptor open for writing."""
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

    @property
    def renamed(self) -> bool:
        """Whether the file is now ``target``. Read from the disk (the rename is atomic), not from a flag set
        after it: an interrupt between the rename and such a flag would leave an output its cleanup misses."""
        return self._renaming and not self.path.exists()

    def discard(self) -> None:
        """Remove the temporary file, unless it has already been renamed into place."""
        if self.renamed:
            return
        self._renaming = False
        self.path.unlink(missing_ok=True)


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
