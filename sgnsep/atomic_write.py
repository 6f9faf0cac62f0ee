"""Text and image outputs written whole or not at all, and never over an existing file by accident.

Audio outputs stream through :class:`sgnsep.audio_io.AtomicAudioWriter`; the small outputs here (JSON, CSV,
PNG) are built in memory, written under a temporary name in the destination folder and renamed into place,
so an interrupted or failed run leaves neither a half-written file nor a temporary one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterable

from sgnsep.audio_io import apply_umask
from sgnsep.errors import OutputError


def refuse_existing(paths: Iterable[Path | None], overwrite: bool, option_hint: str = "--overwrite") -> None:
    """Raise before any work is done if an output exists and ``overwrite`` is off."""
    if overwrite:
        return
    for path in paths:
        if path is not None and Path(path).exists():
            raise OutputError(f"{path} already exists.", hint=f"Pass {option_hint} or choose another name.")


def write_bytes_atomic(path: Path, data: bytes) -> None:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    except OSError as exc:
        raise OutputError(
            f"Cannot write {path} ({exc.strerror or exc}).", hint="Choose another file or folder, or fix its permissions."
        ) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        apply_umask(Path(tmp))
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(
            f"Cannot write {path} ({exc.strerror or exc}).", hint="Choose another file or folder, or free some space."
        ) from None
    except BaseException:  # Ctrl-C: no temporary file left behind
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))
