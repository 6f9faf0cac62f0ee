"""A rebalanced mix: the separated stems with a gain each, plus the residual.

``remix = sum_i 10**(gain_i / 20) * stem_i + residual`` with ``residual = input - sum_i stem_i``, computed as
``input + sum_i (10**(gain_i / 20) - 1) * stem_i``: classes without a gain stay at 0 dB, and with every gain
at 0 dB the remix is the input itself (to float precision). It is read back from the written stems (float
wav by default, so nothing is lost) and the input, block by block.

Clipping: a remix is never clipped silently. If its peak would exceed full scale (1.0), the whole remix is
scaled down to peak at -1 dBFS, which keeps the balance the gains asked for, and the attenuation is reported
(``RemixResult.attenuation_db``; the CLI prints it). Below full scale nothing is scaled.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sgnsep.audio import audio_io
from sgnsep.core.errors import InputAudioError, UsageError

REMIX = "remix"
MAX_GAIN_DB = 40.0  # a larger boost is surely a typo; -inf (or "mute") silences a stem
LIMITED_PEAK = 10 ** (-1 / 20)  # -1 dBFS, where a remix that would clip is brought down to
_BLOCK_FRAMES = 1 << 18

_GAIN = re.compile(
    r"^\s*([^=]+?)\s*=\s*([+-]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?|inf)|mute)\s*(?:db)?\s*$", re.IGNORECASE
)


def parse_gains(text: str) -> dict[str, float]:
    """``"violin=-6,cello=+3"`` -> {"violin": -6.0, "cello": 3.0} (dB; ``-inf`` or ``mute`` silences).

    Class names are returned as written; map them to the model's names with ``Separator.class_names``.
    """
    gains: dict[str, float] = {}
    items = [t for t in text.split(",")]
    if not text.strip() or any(not t.strip() for t in items):
        raise UsageError(
            f"--gain '{text}' is empty or has an empty entry.", hint="Write class=dB pairs, e.g. --gain violin=-6,cello=+3."
        )
    for item in items:
        m = _GAIN.match(item)
        if not m:
            raise UsageError(
                f"--gain entry '{item.strip()}' is not class=dB.", hint="Write e.g. --gain violin=-6,cello=+3 (or violin=mute)."
            )
        name, value = m.group(1), m.group(2).lower()
        db = -math.inf if value in ("mute", "-inf") else float(value)
        if not db <= MAX_GAIN_DB:
            raise UsageError(f"--gain {name}={value}: at most +{MAX_GAIN_DB:g} dB.", hint="Use a smaller boost.")
        key = name.lower()
        if key in {k.lower() for k in gains}:
            raise UsageError(f"--gain names '{name}' twice; give each class one gain.")
        gains[name] = db
    return gains


def linear_gain(db: float) -> float:
    return 0.0 if db == -math.inf else 10.0 ** (db / 20.0)


@dataclass
class RemixResult:
    path: str
    gains_db: dict[str, float]
    peak: float  # of the remix before any scaling, linear full scale
    attenuation_db: float  # applied to keep it below full scale; 0.0 if none was needed

    def to_json(self) -> dict:
        return {
            "path": self.path,
            "gains_db": {k: (None if v == -math.inf else v) for k, v in self.gains_db.items()},
            "muted": [k for k, v in self.gains_db.items() if v == -math.inf],
            "peak_dbfs": None if self.peak <= 0 else round(20 * math.log10(self.peak), 3),
            "attenuation_db": round(self.attenuation_db, 3),
        }


def _blocks(mixture: Path, stems: dict[str, Path], gains: dict[str, float]):
    """Yield remix blocks (channels, samples), reading the input and the stems in step."""
    import soundfile as sf

    info = audio_io.probe(mixture)
    for name, path in stems.items():
        stem = sf.info(str(path))
        if (stem.frames, stem.channels) != (info.frames, info.channels):
            raise InputAudioError(
                f"{path}: the stem ({stem.frames} samples, {stem.channels} channels) does not match {mixture} "
                f"({info.frames} samples, {info.channels} channels).",
                hint="Remix stems separated from this very file.",
            )
    for start in range(0, info.frames, _BLOCK_FRAMES):
        stop = min(info.frames, start + _BLOCK_FRAMES)
        block = audio_io.read_block(info.path, start, stop).astype(np.float64)
        for name, path in stems.items():
            g = linear_gain(gains.get(name, 0.0))
            if g != 1.0:
                block += (g - 1.0) * audio_io.read_block(Path(path), start, stop)
        yield block


def write_remix(
    mixture: str | os.PathLike,
    stems: dict[str, str | os.PathLike],
    gains_db: dict[str, float],
    target: str | os.PathLike,
    *,
    ext: str = "wav",
    bit_depth: int | str | None = None,
) -> RemixResult:
    """Write the remix of ``mixture`` from its ``stems`` ({class: file}) with ``gains_db`` ({class: dB}).

    Two passes over the files: the first finds the remix's peak, the second writes it (atomically), scaled
    down only if it would clip (see the module docstring).
    """
    mixture, target = Path(mixture), Path(target)
    stems = {k: Path(v) for k, v in stems.items()}
    unknown = [k for k in gains_db if k not in stems]
    if unknown:
        raise UsageError(
            f"--gain names {', '.join(unknown)}, which is not among the separated classes ({', '.join(stems)}).",
            hint="Give gains only to classes you separate.",
        )
    fmt, subtype = audio_io.resolve_format(ext, bit_depth or audio_io.default_bit_depth(ext))
    peak = 0.0
    for block in _blocks(mixture, stems, gains_db):
        peak = max(peak, float(np.abs(block).max(initial=0.0)))
    scale = LIMITED_PEAK / peak if peak > 1.0 else 1.0
    info = audio_io.probe(mixture)
    writer = audio_io.AtomicAudioWriter(target, info.sample_rate, info.channels, fmt, subtype)
    try:
        writer.open()
        for block in _blocks(mixture, stems, gains_db):
            writer.write((block * scale).astype(np.float32))
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    return RemixResult(str(target), dict(gains_db), peak, -20.0 * math.log10(scale) if scale != 1.0 else 0.0)
