"""The files of a rendered corpus: WAV stems (the writer is ours: libsndfile stamps the time into float WAV
files, and a corpus must be byte-identical from the same command), ``metadata.json`` with the provenance of
every file, and the rules for writing into a folder that may hold something else.
"""

from __future__ import annotations

import io
import json
import os
import struct
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from sgnsep.core import folder_lock
from sgnsep.core.atomic_write import write_bytes_atomic, write_text_atomic
from sgnsep.core.errors import OutputError, UsageError
from sgnsep.synth.instruments import INSTRUMENTS
from sgnsep.synth.soundfonts import soundfont_family


def write_wav(path: Path, audio: np.ndarray, sample_rate: int, subtype: str) -> None:
    """Mono WAV, byte-deterministic (libsndfile writes a time stamp into float files)."""
    if subtype == "PCM_16":
        data = np.clip(np.round(audio.astype(np.float64) * 32768.0), -32768, 32767).astype("<i2").tobytes()
        fmt = struct.pack("<HHIIHH", 1, 1, sample_rate, sample_rate * 2, 2, 16)
        chunks = [b"fmt " + struct.pack("<I", len(fmt)) + fmt]
    else:  # FLOAT
        data = audio.astype("<f4").tobytes()
        fmt = struct.pack("<HHIIHHH", 3, 1, sample_rate, sample_rate * 4, 4, 32, 0)
        chunks = [
            b"fmt " + struct.pack("<I", len(fmt)) + fmt,
            b"fact" + struct.pack("<II", 4, len(audio)),
        ]
    chunks.append(b"data" + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b""))
    body = b"WAVE" + b"".join(chunks)
    write_bytes_atomic(path, b"RIFF" + struct.pack("<I", len(body)) + body)


def write_manifest(manifest: dict, path: Path, started: float, audio_seconds: float) -> dict:
    """Write a corpus's metadata.json (last, so that it exists only for a complete corpus) and return the
    manifest with the run's timing added (not written: the file stays byte-identical between runs)."""
    write_text_atomic(path, json.dumps(manifest, indent=1, sort_keys=True, allow_nan=False) + "\n")
    wall = time.perf_counter() - started
    manifest["timing"] = {
        "wall_seconds": round(wall, 3),
        "audio_seconds": round(audio_seconds, 3),
        "realtime_factor": round(audio_seconds / wall, 1) if wall > 0 else None,
    }
    return manifest


def read_metadata(out_dir: str | os.PathLike) -> dict:
    """The metadata.json of a corpus written by :func:`synthesize_corpus`."""
    path = Path(out_dir) / "metadata.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise UsageError(f"{path} does not exist: is {out_dir} a synthesized corpus?") from exc


METADATA_FORMAT = "sgnsep-synth-solos"


def provenance(class_names: list[str], fonts: dict, target_db: float) -> dict:
    """The instruments, soundfonts and loudness rule behind a rendered set, for its metadata.json."""
    return {
        "instruments": {
            c: {
                "program": INSTRUMENTS[c].program,
                "gm_name": INSTRUMENTS[c].gm_name,
                "range": [INSTRUMENTS[c].low, INSTRUMENTS[c].high],
                "sustained": INSTRUMENTS[c].sustained,
            }
            for c in class_names
        },
        "soundfonts": {
            k: {"file": v.name, "path": str(v), "family": soundfont_family(k, v)} for k, v in fonts.items()
        },
        "loudness": {
            "method": ("active RMS: mean power of 50 ms frames above -70 dBFS and within 20 dB of their mean power"),
            "target_db": target_db,
            "peak_limit": 0.99,
        },
    }


def own_metadata(path: Path, fmt: str) -> dict | None:
    """The metadata.json at ``path`` if sgnsep wrote it (its "format" is ``fmt``), else None."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) and data.get("format") == fmt else None


def first_other_file(folder: Path, skip: Callable[[Path], bool] = lambda p: False) -> Path | None:
    """The first file under ``folder`` (sorted walk) that is not the folder's lock, a temporary ``.partial``
    file, or one ``skip`` accepts: a file this command did not write, i.e. one of the user's."""
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = Path(root) / name
            if name == folder_lock.LOCK_NAME or (name.startswith(".") and name.endswith(".partial")) or skip(path):
                continue
            return path
    return None


def refuse_foreign_corpus_folder(out: Path, fmt: str, overwrite: bool) -> None:
    """A corpus goes into a new or empty folder, or (``overwrite``) over a corpus rendered before. A folder
    that holds other files (a metadata.json of the user's, clips of a render that was killed, anything) is
    refused unless ``overwrite``: rendering writes clips under fixed names, which would replace the user's.
    With ``overwrite`` only the files the render writes are replaced; the others are kept."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out} is a file, not a folder.", hint="Choose a folder with --out.")
    if overwrite or not out.is_dir():
        return
    meta = out / "metadata.json"
    if meta.exists():
        if own_metadata(meta, fmt) is not None:
            raise OutputError(f"{meta} already exists.", hint="Pass --overwrite to replace that corpus (only its "
                              "own files; others are kept), or choose another directory.")
        raise OutputError(
            f"{meta} exists and is not the metadata of a corpus sgnsep rendered.",
            hint="Choose a new or empty directory, or pass --overwrite to render into this one anyway (its "
            "metadata.json and clips of the corpus's names are replaced; other files are kept).",
        )
    first = first_other_file(out)
    if first is not None:
        raise OutputError(
            f"{out} holds files but no metadata.json of a finished corpus (e.g. {first}): files of yours, or a "
            "render that was stopped before it finished.",
            hint="Choose a new or empty directory, or pass --overwrite (`sgnsep data synth --overwrite`) to render "
            "into it (only the files of the corpus's names are replaced; others are kept).",
        )


STEMS_FORMAT = "sgnsep-chorale-stems"


def write_stem(path: Path, audio: np.ndarray, sample_rate: int, fmt: str, subtype: str) -> None:
    """One mono stem, byte-deterministic. FLAC through libsndfile (it writes no time stamp into FLAC; the
    samples are quantised here, as the WAV writer does, so both formats hold the same integers)."""
    if fmt == "wav":
        write_wav(path, audio, sample_rate, subtype)
        return
    import soundfile as sf

    x = audio.astype(np.float64)
    if subtype == "PCM_16":
        data = np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)
    else:  # PCM_24, passed as the top 24 bits of int32 (libsndfile shifts them down)
        data = np.clip(np.round(x * 8388608.0), -8388608, 8388607).astype(np.int32) << 8
    encoded = io.BytesIO()
    sf.write(encoded, data, sample_rate, format="FLAC", subtype=subtype)
    write_bytes_atomic(path, encoded.getvalue())
