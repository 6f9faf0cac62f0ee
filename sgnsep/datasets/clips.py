"""Clips: one recording of one class, read lazily (a window at a time, resampled to the model rate, mono)
or held in memory when its split is small, and :class:`ClipDataset`, the split every dataset becomes.

A dataset keeps each file's path, length and sample rate, and reads only the window a mixture needs (a
``soundfile`` seek, resampled to the model rate, downmixed to mono). A split whose audio at the model rate
fits in ``cache_bytes`` (1 GiB by default; ``SGNSEP_DATA_CACHE_MB`` changes it) is loaded into memory once
instead. Unreadable and too-short files are skipped and listed in ``dataset.skipped`` as ``(file or id,
reason)``; they never stop a run.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from sgnsep.audio import audio_io, resample
from sgnsep.core.errors import InputAudioError, SgnsepError, UsageError


DEFAULT_CACHE_BYTES = 1 << 30  # a split smaller than this at the model rate (float32) is held in memory


def cache_limit_bytes() -> int:
    """The in-memory cache budget: ``SGNSEP_DATA_CACHE_MB`` (MiB) or 1 GiB."""
    raw = os.environ.get("SGNSEP_DATA_CACHE_MB", "").strip()
    if not raw:
        return DEFAULT_CACHE_BYTES
    try:
        return max(0, int(float(raw) * (1 << 20)))
    except ValueError:
        raise UsageError(
            f"SGNSEP_DATA_CACHE_MB={raw!r} is not a number.", hint="Set it to a size in MiB (0 disables the cache)."
        ) from None


def resampled_length(frames: int, rate: int, target: int) -> int:
    """Samples that torchaudio's resampler returns for ``frames`` samples at ``rate`` -> ``target``."""
    if rate == target:
        return int(frames)
    g = math.gcd(int(rate), int(target))
    return math.ceil((target // g) * frames / (rate // g))


def _to_model_rate(mono: np.ndarray, rate: int, target: int) -> np.ndarray:
    """(1, n) float32 at ``rate`` -> (m,) float32 at ``target``."""
    if rate == target:
        return np.ascontiguousarray(mono[0], dtype=np.float32)
    return resample.resample(torch.from_numpy(np.ascontiguousarray(mono)), rate, target)[0].numpy().astype(np.float32)


def _read_frames(path: Path, start: int, stop: int) -> np.ndarray:
    """Frames [start, stop) downmixed to mono, (1, stop - start) float32. A body shorter than the header
    said (compressed formats give estimates) reads as silence; unreadable files and NaN are errors."""
    import soundfile as sf

    try:
        with sf.SoundFile(str(path)) as fh:
            if start:
                fh.seek(start)
            data = fh.read(stop - start, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise InputAudioError(
            f"{path}: reading samples {start}-{stop} failed ({audio_io.read_failure_reason(path, exc)}).",
            hint="Re-export or re-download the file, or delete it.",
        ) from None
    if not np.isfinite(data).all():
        raise InputAudioError(f"{path}: holds NaN or infinite samples.", hint="Re-export the file, or delete it.")
    mono = data.mean(axis=1)[None, :]
    if mono.shape[1] < stop - start:
        mono = np.pad(mono, ((0, 0), (0, stop - start - mono.shape[1])))
    return mono


def _resample_margin(rate: int, target: int) -> tuple[int, int, int]:
    """(o, n, margin): the reduced rates and how many input samples beyond a window the sinc filter reads."""
    g = math.gcd(int(rate), int(target))
    o, n = rate // g, target // g
    width = math.ceil(6 * o / (min(o, n) * 0.99))  # torchaudio's lowpass_filter_width=6, rolloff=0.99
    return o, n, width + 2


def read_window(path: Path, frames: int, rate: int, target: int, start: int, stop: int) -> np.ndarray:
    """Samples [start, stop) of a file at the ``target`` rate (mono float32), reading only what they need.

    Equal (to float rounding) to resampling the whole file and slicing it: the file is read from a multiple of
    the reduced input rate before ``start`` (so the resampler's phase is the same) with the filter's support
    on both sides. ``stop`` is clipped to the clip's length.
    """
    total = resampled_length(frames, rate, target)
    start, stop = max(0, int(start)), min(int(stop), total)
    if stop <= start:
        return np.zeros(0, dtype=np.float32)
    if rate == target:
        return _read_frames(path, start, stop)[0]
    o, n, margin = _resample_margin(rate, target)
    first_block, last_block = start // n, (stop - 1) // n
    k = max(0, first_block - -(-margin // o))  # whole input blocks before the window, covering the margin
    s0 = k * o
    s1 = min(frames, (last_block + 1) * o + margin + 1)
    out = _to_model_rate(_read_frames(path, s0, s1), rate, target)
    offset = start - k * n
    return out[offset : offset + (stop - start)]


class Clip:
    """One recording of one class: ``cls`` (class index), ``path``, ``frames`` and ``sample_rate`` of the
    file, ``rate`` (the model rate) and ``num_samples`` (its length at the model rate, also ``len(clip)``).

    ``clip.read(start, stop)`` returns samples [start, stop) at the model rate, mono float32, from memory when
    the clip is cached and with a seek in the file otherwise. ``clip.audio`` is the whole clip (the cached
    array, or the file read whole). ``Clip(cls, path, audio)`` wraps audio that is already in memory.
    """

    __slots__ = ("_audio", "cls", "frames", "num_samples", "path", "rate", "sample_rate")

    def __init__(
        self,
        cls: int,
        path: str | Path,
        audio: np.ndarray | None = None,
        *,
        frames: int | None = None,
        sample_rate: int | None = None,
        rate: int | None = None,
    ):
        self.cls = int(cls)
        self.path = Path(path)
        self._audio = None
        if audio is not None:
            self._audio = np.ascontiguousarray(audio, dtype=np.float32)
            self.rate = int(rate or sample_rate or 0)
            self.sample_rate = int(sample_rate or self.rate)
            self.frames = int(frames if frames is not None else len(self._audio))
            self.num_samples = len(self._audio)
        else:
            if frames is None or not sample_rate or not rate:
                raise ValueError("A lazy Clip needs frames, sample_rate and rate.")
            self.frames, self.sample_rate, self.rate = int(frames), int(sample_rate), int(rate)
            self.num_samples = resampled_length(self.frames, self.sample_rate, self.rate)

    @property
    def cached(self) -> bool:
        return self._audio is not None

    def __len__(self) -> int:
        return self.num_samples

    def __repr__(self) -> str:
        where = "cached" if self.cached else "lazy"
        return f"Clip(cls={self.cls}, path={str(self.path)!r}, num_samples={self.num_samples}, {where})"

    def load(self) -> np.ndarray:
        """Read the whole file (strictly: truncated or NaN files raise InputAudioError) and keep it."""
        if self._audio is None:
            data, rate = audio_io.read_audio(self.path)
            self._audio = _to_model_rate(data.mean(axis=0, keepdims=True), rate, self.rate)
            self.num_samples = len(self._audio)
        return self._audio

    def unload(self) -> None:
        """Drop the cached audio (lazy reads from then on)."""
        if self._audio is not None and self.frames and self.sample_rate:
            self._audio = None
            self.num_samples = resampled_length(self.frames, self.sample_rate, self.rate)

    @property
    def audio(self) -> np.ndarray:
        """The whole clip, mono float32 at the model rate (read from the file each time if not cached)."""
        if self._audio is not None:
            return self._audio
        return self.read(0, self.num_samples)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples [start, stop) at the model rate (fewer if the clip ends before ``stop``)."""
        if self._audio is not None:
            return self._audio[max(0, start) : stop]
        return read_window(self.path, self.frames, self.sample_rate, self.rate, start, stop)


class ClipDataset:
    """Clips of each class for one split.

    Attributes: ``name`` (dataset name), ``root``, ``split``, ``sample_rate`` (the model rate), ``classes``,
    ``clips``, ``by_class`` (class index -> clips), ``skipped`` ((file or id, reason) for everything of this
    split that could not be used), ``empty_classes`` (classes with no usable clip in this split; never drawn
    by :func:`sample_mixture`), ``read_errors`` (path -> reason for reads that failed during sampling) and
    ``cached`` (whether the audio is in memory).
    """

    name = "clips"

    def __init__(self) -> None:
        self.root = Path(".")
        self.split = "train"
        self.sample_rate = 0
        self.classes: list[str] = []
        self.clips: list[Clip] = []
        self.by_class: dict[int, list[Clip]] = {}
        self.skipped: list[tuple[str, str]] = []
        self.empty_classes: list[str] = []
        self.read_errors: dict[str, str] = {}
        self.registers: dict[tuple[str, str], float] = {}  # (track folder, class) -> median MIDI pitch, if known
        self.cached = False
        self._tracks: list[list[Clip]] | None = None

    def __len__(self) -> int:
        return len(self.clips)

    @property
    def tracks(self) -> list[list[Clip]]:
        """Clips that belong together: the stems of one track (clips of distinct classes in one folder, as in
        the stems and MUSDB18 layouts), for folders holding two classes or more. Empty for solo layouts, whose
        folders hold one class each. Stems of one track are time-aligned, so mixing them gives real music."""
        if self._tracks is None:
            folders: dict[Path, dict[int, Clip]] = {}
            for clip in self.clips:
                folders.setdefault(clip.path.parent, {}).setdefault(clip.cls, clip)
            self._tracks = [list(by_cls.values()) for _, by_cls in sorted(folders.items()) if len(by_cls) >= 2]
        return self._tracks

    @property
    def total_samples(self) -> int:
        """Audio in this split at the model rate, without reading it."""
        return sum(c.num_samples for c in self.clips)

    def summary(self) -> str:
        hours = self.total_samples / max(1, self.sample_rate) / 3600
        text = (
            f"{self.name} {self.split}: {len(self.clips)} clips of {len(self.classes) - len(self.empty_classes)} "
            f"classes ({hours:.2f} h, {'in memory' if self.cached else 'read lazily'})"
        )
        if self.skipped:
            text += f"; {len(self.skipped)} skipped"
        if self.empty_classes:
            text += f"; no clips for {', '.join(self.empty_classes[:5])}" + (" ..." if len(self.empty_classes) > 5 else "")
        return text

    def _materialize(
        self,
        candidates: Iterable[tuple[int, Path, str]],
        *,
        sample_rate: int,
        min_samples: int,
        cache_bytes: int | None,
    ) -> None:
        """Probe each (class index, path, key) file, skip the unreadable and the too short, and cache the
        whole split in memory when it fits in ``cache_bytes``."""
        probed = []
        for ci, path, key in candidates:
            try:
                info = audio_io.probe(path)
            except SgnsepError as exc:
                self.skipped.append((key, exc.message))
                continue
            problem = resample.rate_problem(info.sample_rate, sample_rate)
            if problem:
                self.skipped.append((key, problem))
                continue
            n = resampled_length(info.frames, info.sample_rate, sample_rate)
            if n < min_samples // 4:
                self.skipped.append((key, f"too short ({n} samples at {sample_rate} Hz)"))
                continue
            probed.append((ci, path, key, info, n))
        limit = cache_limit_bytes() if cache_bytes is None else cache_bytes
        self.cached = sum(p[4] for p in probed) * 4 <= limit
        for ci, path, key, info, n in probed:
            clip = Clip(ci, path, frames=info.frames, sample_rate=info.sample_rate, rate=sample_rate)
            if self.cached:
                try:
                    audio = clip.load()
                except SgnsepError as exc:
                    self.skipped.append((key, exc.message))
                    continue
                if len(audio) < min_samples // 4:
                    self.skipped.append((key, f"too short ({len(audio)} samples at {sample_rate} Hz)"))
                    continue
            self.clips.append(clip)
        self.by_class = {ci: [] for ci in range(len(self.classes))}
        for clip in self.clips:
            self.by_class[clip.cls].append(clip)
        self.empty_classes = [self.classes[ci] for ci, v in self.by_class.items() if not v]
