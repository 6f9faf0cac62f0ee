"""One process at a time in a folder that a command writes: an output folder (``separate --out``), a run folder
(``train --out``), a corpus folder (``data synth``, ``data chorales``).

Without it two ``separate`` runs whose outputs collide both pass the "exists already?" check, both write,
both exit 0, and one has silently replaced the other's stems; two ``train`` runs into one folder interleave
``log.csv`` and overwrite each other's checkpoints. The second run is now refused at once with one line
naming the holder (:class:`FolderInUse`, exit 4).

The lock is an advisory ``flock`` on ``FOLDER/.sgnsep.lock``, which holds the holder's process id, machine,
command and start time (for the message; the lock itself is the ``flock``). The kernel drops a ``flock`` when
its process dies however it dies, so a lock left by a killed run never blocks: the next run takes it over.
The file is removed when the lock is released; a run that opened it just before is told apart by the inode
check in :func:`_acquire` and retries on the new file. Where ``fcntl`` is missing (Windows) folders are not
locked.

Locks are reentrant within one process (``train --dataset synth`` holds the corpus while the renderer it calls
takes it again).
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sgnsep.core.errors import OutputError
from sgnsep.core.interrupts import uninterrupted

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

LOCK_NAME = ".sgnsep.lock"


class FolderInUse(OutputError):
    """Another process holds the folder (exit 4, as every output problem)."""


class _Held:
    def __init__(self, fd: int | None, path: Path, created: list[Path]):
        self.fd, self.path, self.created, self.depth = fd, path, created, 1


_held: dict[Path, _Held] = {}


def _command_line() -> str:
    argv = list(sys.argv)
    if argv and (argv[0].endswith("__main__.py") or Path(argv[0]).name == "sgnsep"):
        argv[0] = "sgnsep"  # `python -m sgnsep` reports its __main__.py
    text = shlex.join(argv)
    return text if len(text) <= 160 else text[:157] + "..."


def holder(folder: Path) -> dict | None:
    """What the lock file of ``folder`` says about its holder (None if there is none or it is unreadable)."""
    try:
        data = json.loads((Path(folder) / LOCK_NAME).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def _describe(info: dict | None) -> str:
    if not info:
        return "another process"
    where = "" if info.get("host") == socket.gethostname() else f" on {info.get('host')}"
    since = f", since {info['started']}" if info.get("started") else ""
    return f"process {info.get('pid')}{where} (`{info.get('command', '?')}`{since})"


def _make_folders(folder: Path, option: str) -> list[Path]:
    """Create ``folder`` and its missing parents; return those created, outermost first."""
    missing = [d for d in (folder, *folder.parents) if not d.exists()][::-1]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        made = [d for d in missing if d.is_dir()]
        _remove_empty(made)
        raise OutputError(
            f"Cannot create the output folder {folder} ({exc.strerror or exc}).",
            hint=f"Choose another folder with {option} or fix its permissions.",
        ) from None
    return missing


def _remove_empty(folders: list[Path]) -> None:
    for d in reversed(folders):
        try:
            d.rmdir()  # only if empty: what the run wrote there stays
        except OSError:
            pass


def _acquire(path: Path) -> int | None:
    """An open descriptor of ``path`` that holds its flock, or None if another process holds it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # the holder removed the file as we opened it: take the lock on the new one


def _write_record(fd: int) -> None:
    record = {
        "pid": os.getpid(), "host": socket.gethostname(), "command": _command_line(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    try:
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps(record) + "\n").encode("utf-8"))
    except OSError:  # a full disk: the lock holds all the same, the message about it will just say less
        pass


@contextmanager
def hold(folder: str | os.PathLike, *, option: str = "--out", what: str = "folder", wait: bool = False) -> Iterator[Path]:
    """Hold ``folder`` (created if missing, and removed again at the end if it is then empty) for the block.

    Raises :class:`FolderInUse` naming the holder if another process holds it, unless ``wait``: then it
    waits for it (the processes of one ``torchrun`` that all render the same corpus). ``option`` and
    ``what`` word the messages (``--out``, "output folder")."""
    folder = Path(folder)
    key = Path(os.path.abspath(folder))
    if key in _held:
        _held[key].depth += 1
        try:
            yield folder
        finally:
            _held[key].depth -= 1
        return
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder} is a file, not a folder.", hint=f"Choose a folder with {option}.")
    lock_path = folder / LOCK_NAME
    try:
        while True:
            with uninterrupted():  # a signal must not leave a created folder or a taken lock unrecorded
                created = _make_folders(folder, option)
                fd = None
                if fcntl is not None:
                    try:
                        fd = _acquire(lock_path)
                    except OSError as exc:
                        _remove_empty(created)
                        raise OutputError(
                            f"Cannot write in {folder} ({exc.strerror or exc}).",
                            hint=f"Choose another folder with {option} or fix its permissions.",
                        ) from None
                if fd is not None or fcntl is None:
                    _held[key] = _Held(fd, lock_path, created)
                    if fd is not None:
                        _write_record(fd)
                    break
                _remove_empty(created)
                if not wait:
                    raise FolderInUse(
                        f"The {what} {folder} is in use by {_describe(holder(folder))}.",
                        hint=f"Wait for it to finish, or choose another {option}.",
                    )
            time.sleep(0.2)  # waiting outside the section above, where Ctrl-C still stops it
        yield folder
    finally:
        with uninterrupted():
            held = _held.pop(key, None)  # None: it was never taken
            if held is not None:
                if held.fd is not None:
                    try:
                        os.unlink(held.path)  # while still holding it: see the module docstring
                    except OSError:
                        pass
                    os.close(held.fd)
                _remove_empty(held.created)


def is_lock_file(path: Path) -> bool:
    return Path(path).name == LOCK_NAME
