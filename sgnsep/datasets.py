"""Training and evaluation data: solo recordings per class, and mix-and-separate sampling over them.

Every dataset becomes the same thing: a list of :class:`Clip` (one recording of one class) per split, and
:func:`sample_mixture` draws N distinct classes, one clip and one random window each. Clips are lazy: a
dataset keeps each file's path, length and sample rate, and reads only the window a mixture needs (a
``soundfile`` seek, resampled to the model rate, downmixed to mono). A split whose audio at the model rate
fits in ``cache_bytes`` (1 GiB by default; ``SGNSEP_DATA_CACHE_MB`` changes it) is loaded into memory
once instead, as small datasets always were.

Layouts (``DATASETS[name].layout`` has the full text; ``default_data_dir(name)`` is
``$SGNSEP_DATA/<name>``, ``SGNSEP_DATA`` defaulting to ``~/.cache/sgnsep/data``):

- ``solos``: ``DIR/<class>/*.wav`` (any libsndfile format); if ``DIR/metadata.json`` (as written by
  `sgnsep data synth`) gives each clip a split, that split is used; otherwise each class's files are
  ordered by a hash of their relative path and the first 10 % (at least one) go to test, the next 10 %
  (at least one) to validation, the rest to training, when the class has 3 files or more. The split is
  reproducible; adding files to a class can move a few of its files between splits.
- ``stems``: ``DIR/<track>/<class>.<ext>`` (+ an ignored ``mixture.<ext>``), split by track; a corpus of
  `sgnsep data music` gives each track's split (by piece) and each stem's register in its metadata.json.
- ``music`` / ``music21``: the official JSON list of solo YouTube ids + ``DIR/audio/<class>/<id>.<ext>``.
- ``fuss``: ``DIR/ssdata/{train,validation,eval}/example*_sources/*.wav`` labelled through the ``.jams``
  files and FSD50K's ground truth.
- ``musdb18``: the MUSDB18-HQ wav layout ``DIR/{train,test}/<track>/{drums,bass,other,vocals}.wav``.
- ``vggsound``: ``DIR/vggsound.csv`` + ``DIR/audio/<id>_<start:06d>.<ext>`` (extracted audio).

Unreadable and too-short files are skipped and listed in ``dataset.skipped`` as ``(file or id, reason)``;
they never stop a run.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sgnsep import mixture_draws
from sgnsep.audio import audio_io, resample
from sgnsep.core.errors import InputAudioError, SgnsepError, UsageError

SPLITS = ("train", "val", "test")

log = logging.getLogger(__name__)  # `sgnsep train` prints its warnings (e.g. skipped files)

DEFAULT_CACHE_BYTES = 1 << 30  # a split smaller than this at the model rate (float32) is held in memory

# Extensions that libsndfile cannot read but that users commonly have (video containers, AAC/Opus-in-MP4).
VIDEO_EXTENSIONS = (".mp4", ".m4a", ".webm", ".mkv", ".mov", ".avi", ".aac", ".3gp")


def _hash(relpath: str) -> str:
    return hashlib.sha1(relpath.encode()).hexdigest()


def hash_fraction(key: str) -> float:
    """A stable number in [0, 1) for ``key`` (first 48 bits of its SHA-1): the basis of hash splits."""
    return int(_hash(key)[:12], 16) / float(1 << 48)


def rank_splits(relpaths: list[str], fractions=(0.8, 0.1, 0.1)) -> dict[str, str]:
    """Split one class's files: ordered by hash, test first, then validation, then training."""
    ordered = sorted(relpaths, key=_hash)
    n = len(ordered)
    if n < 3:
        return {p: "train" for p in ordered}
    n_test = max(1, round(fractions[2] * n))
    n_val = max(1, round(fractions[1] * n))
    return {
        p: "test" if i < n_test else "val" if i < n_test + n_val else "train" for i, p in enumerate(ordered)
    }


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


# --- clips and lazy windows -----------------------------------------------------------------------------


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


# --- datasets ------------------------------------------------------------------------------------------


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


class SolosDataset(ClipDataset):
    """Solo clips of each class (``root/<class>/*.<ext>``), mono at the model rate.

    Unreadable or too-short files are skipped and counted in ``skipped`` (with reasons), not fatal. Every
    class must have at least one usable clip in the split. ``cache_bytes`` (default: 1 GiB or
    ``SGNSEP_DATA_CACHE_MB``) decides whether the split is loaded into memory or read lazily.
    """

    name = "solos"

    def __init__(
        self,
        root: str | Path,
        *,
        split: str,
        sample_rate: int,
        min_samples: int,
        classes: list[str] | None = None,
        cache_bytes: int | None = None,
    ):
        super().__init__()
        if split not in SPLITS:
            raise UsageError(f"Unknown split '{split}'; use one of {', '.join(SPLITS)}.")
        self.root = Path(root)
        self.split, self.sample_rate = split, sample_rate
        if not self.root.is_dir():
            raise UsageError(f"Data folder {self.root} does not exist.", hint="Pass --data-dir DIR (solos layout).")
        found = sorted(p.name for p in audio_io.list_folder(self.root) if p.is_dir() and not p.name.startswith("."))
        self.classes = list(classes) if classes else found
        unknown = [c for c in self.classes if c not in found]
        if unknown:
            raise UsageError(f"{self.root} has no folder for class(es) {', '.join(unknown)}; it has {', '.join(found)}.")
        splits = self._metadata_splits()
        candidates = []
        for ci, cls in enumerate(self.classes):
            paths = [p for p in audio_io.list_folder(self.root / cls) if p.suffix.lower() in audio_io.AUDIO_EXTENSIONS]
            rels = [p.relative_to(self.root).as_posix() for p in paths]
            fallback = rank_splits([r for r in rels if r not in splits])
            for path, rel in zip(paths, rels):
                if splits.get(rel, fallback.get(rel)) == split:
                    candidates.append((ci, path, rel))
        self._materialize(candidates, sample_rate=sample_rate, min_samples=min_samples, cache_bytes=cache_bytes)
        if self.empty_classes:
            raise UsageError(
                f"{self.root}: no usable {split} clips for class(es) {', '.join(self.empty_classes)}"
                + (f" ({len(self.skipped)} files skipped)" if self.skipped else "")
                + "."
            )

    def _metadata_splits(self) -> dict[str, str]:
        meta = self.root / "metadata.json"
        if not meta.is_file():
            return {}
        try:
            data = json.loads(meta.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            return {}
        out = {}
        for clip in data.get("clips", []) if isinstance(data, dict) else []:
            if isinstance(clip, dict) and "path" in clip and clip.get("split") in SPLITS:
                out[str(clip["path"])] = clip["split"]
        return out


def sample_mixture(
    dataset: ClipDataset,
    num_sources: int,
    samples: int,
    rng: np.random.Generator,
    *,
    min_rms: float = 1e-3,
    coherent: float = 0.0,
    level_range_db: float = 0.0,
    hard_pairs: float = 0.0,
    hard_pair_classes: Sequence[str] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """N distinct classes, one random clip and offset each -> (sources (N, samples), classes (N,)).

    With probability ``coherent`` the N sources are instead N stems of one track (:attr:`ClipDataset.tracks`)
    at one shared offset: music whose parts share harmony and rhythm, which random pairs of solos never do
    (their harmonics rarely collide). Falls back to independent draws when no track has N stems.

    ``level_range_db`` > 0 gives the sources relative levels up to that many dB apart from the first one's
    (sgnsep.mixture_draws.relative_gains; the sources returned carry their gains). ``hard_pairs`` is the
    probability that a mixture of two or more holds a hard pair: two classes of ``hard_pair_classes``
    (``"a/b"`` strings; empty: sgnsep.mixture_draws.DEFAULT_HARD_PAIRS) or, for coherent draws, two stems in
    the same register. With both at 0 nothing more is drawn from ``rng`` (the mixtures of earlier versions).

    A window that is (nearly) silent is redrawn a few times, since a silent source makes an empty target.
    Only the window is read (from memory for cached clips, with a seek for lazy ones). The draws depend on
    ``rng`` alone: the same generator state gives the same mixture. Classes without clips in this split are
    never drawn. A read that fails (a file damaged after the dataset was opened) counts as a silent window and
    is recorded in ``dataset.read_errors``.
    """
    k = len(dataset.classes)
    available = [c for c in range(k) if dataset.by_class.get(c)]
    if num_sources > len(available):
        if len(available) == k:
            raise UsageError(f"Cannot mix {num_sources} distinct classes from {k}.")
        raise UsageError(
            f"Cannot mix {num_sources} distinct classes: only {len(available)} of the {k} classes have clips"
            f" in this split.",
            hint="Lower the number of sources or add recordings of more classes.",
        )
    pairs = mixture_draws.parse_pairs(hard_pair_classes) if hard_pairs > 0 else ()
    if coherent > 0 and rng.random() < coherent:
        hard = bool(pairs) and num_sources >= 2 and rng.random() < hard_pairs
        mixed = _sample_track(dataset, num_sources, samples, rng, min_rms, pairs=pairs if hard else None)
        if mixed is not None:
            return _with_levels(mixed, level_range_db, rng)
    classes = None
    if pairs and num_sources >= 2 and rng.random() < hard_pairs:
        classes = mixture_draws.hard_classes(available, dataset.classes, pairs, num_sources, rng)
    if classes is None:
        if len(available) == k:
            classes = rng.choice(k, size=num_sources, replace=False)
        else:
            classes = np.asarray(available)[rng.choice(len(available), size=num_sources, replace=False)]
    sources = np.zeros((num_sources, samples), dtype=np.float32)
    errors = getattr(dataset, "read_errors", None)
    for i, c in enumerate(classes):
        pool = dataset.by_class[int(c)]
        window = np.zeros(samples, dtype=np.float32)
        for _ in range(8):
            clip = pool[rng.integers(len(pool))]
            length = len(clip)
            start = int(rng.integers(length - samples + 1)) if length >= samples else 0
            try:
                window = clip.read(start, start + samples)
            except SgnsepError as exc:
                if errors is not None:
                    errors[str(clip.path)] = exc.message
                window = np.zeros(samples, dtype=np.float32)
                continue
            if len(window) < samples:
                window = np.pad(window, (0, samples - len(window)))
            if np.sqrt(np.mean(window**2)) >= min_rms:
                break
        sources[i] = window
    return _with_levels((sources, classes.astype(np.int64)), level_range_db, rng)


def _with_levels(mixed: tuple[np.ndarray, np.ndarray], level_range_db: float, rng: np.random.Generator):
    if level_range_db <= 0:
        return mixed
    sources, classes = mixed
    return sources * mixture_draws.relative_gains(len(sources), level_range_db, rng)[:, None], classes


def _sample_track(
    dataset: ClipDataset, num_sources: int, samples: int, rng: np.random.Generator, min_rms: float,
    pairs: Sequence[tuple[str, str]] | None = None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """N stems of one random track at one offset (redrawn a few times while a stem is silent there); with
    ``pairs``, of a track holding a hard pair or two stems in one register, that pair among the N."""
    tracks = [t for t in dataset.tracks if len(t) >= num_sources]
    if not tracks:
        return None
    hard = []
    if pairs:
        memo = dataset.__dict__.setdefault("_hard_tracks", {})
        key = (num_sources, tuple(pairs))
        if key not in memo:
            memo[key] = [(t, c) for t in tracks
                         if (c := mixture_draws.hard_pairs_in(t, dataset.classes, pairs, dataset.registers))]
        hard = memo[key]
    errors = getattr(dataset, "read_errors", None)
    for _ in range(8):
        if hard:
            track, candidates = hard[rng.integers(len(hard))]
            picked = mixture_draws.pick_with_pair(track, candidates[int(rng.integers(len(candidates)))],
                                                  num_sources, rng)
        else:
            track = tracks[rng.integers(len(tracks))]
            picked = [track[int(i)] for i in rng.choice(len(track), size=num_sources, replace=False)]
        length = min(len(c) for c in picked)
        start = int(rng.integers(length - samples + 1)) if length >= samples else 0
        sources = np.zeros((num_sources, samples), dtype=np.float32)
        try:
            for i, clip in enumerate(picked):
                window = clip.read(start, start + samples)
                sources[i, : len(window)] = window[:samples]
        except SgnsepError as exc:
            if errors is not None:
                errors[str(clip.path)] = exc.message
            continue
        if np.sqrt(np.mean(sources**2, axis=1)).min() >= min_rms:
            return sources, np.array([c.cls for c in picked], dtype=np.int64)
    return None


# --- the registry ---------------------------------------------------------------------------------------

OFFLINE_TEXT = (
    "To train offline right away, render a solo corpus into a new folder and train on it:\n"
    "  sgnsep data synth --out SYNTH_DIR && sgnsep train --dataset solos --data-dir SYNTH_DIR"
)

MUSIC11_CLASSES = (
    "accordion", "acoustic_guitar", "cello", "clarinet", "erhu", "flute", "saxophone", "trumpet", "tuba",
    "violin", "xylophone",
)
MUSIC21_CLASSES = tuple(sorted(MUSIC11_CLASSES + (
    "bagpipe", "banjo", "bassoon", "congas", "drum", "electric_bass", "guzheng", "piano", "pipa", "ukulele",
)))

MUSDB_SOURCES = ("drums", "bass", "other", "vocals")
# The official validation subset of the MUSDB18 training tracks (musdb/configs/mus.yaml, `validation_tracks`).
MUSDB_VALIDATION_TRACKS = (
    "Actions - One Minute Smile",
    "Clara Berry And Wooldog - Waltz For My Victims",
    "Johnny Lokke - Promises & Lies",
    "Patrick Talbot - A Reason To Leave",
    "Triviul - Angelsaint",
    "Alexander Ross - Goodbye Bolero",
    "Fergessen - Nos Palpitants",
    "Leaf - Summerghost",
    "Skelpolu - Human Mistakes",
    "Young Griffo - Pennies",
    "ANiMAL - Rockshow",
    "James May - On The Line",
    "Meaxic - Take A Step",
    "Traffic Experiment - Sirens",
)

FUSS_SPLITS = {"train": "train", "val": "validation", "test": "eval"}

# Hash splits (hash_fraction of the id): MUSIC videos below 0.2 are test, below 0.3 validation, the rest
# training; VGG-Sound training rows below 0.05 are validation.
MUSIC_TEST_FRACTION, MUSIC_VAL_FRACTION = 0.2, 0.1
VGGSOUND_VAL_FRACTION = 0.05


class DatasetNotFound(UsageError):
    """A dataset's folder is missing, or lacks the files it needs (index lists, labels, any audio).

    ``str(err)`` says what is missing where, then how to get the dataset (several lines) and how to train
    offline instead. ``err.dataset`` and ``err.root`` name the dataset and the folder.
    """

    def __init__(self, name: str, root: Path, problem: str):
        spec = DATASETS[name]
        self.dataset, self.root = name, Path(root)
        super().__init__(f"{spec.title} not found: {problem}", hint=f"{spec.help_text(self.root)}\n{OFFLINE_TEXT}")

    def __str__(self) -> str:  # the problem on the first line, then the instructions
        return f"{self.message}\n{self.hint}"


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: ``name`` (for --dataset), ``title``, ``description``, ``layout`` (the files expected
    under the dataset folder, one per line), ``get`` (how to obtain them), ``splits`` (how train/val/test are
    made) and ``loader(root, split=, sample_rate=, min_samples=, classes=, cache_bytes=)``."""

    name: str
    title: str
    description: str
    layout: str
    get: str
    splits: str
    loader: Callable[..., ClipDataset]

    def default_dir(self) -> Path:
        return default_data_dir(self.name)

    def help_text(self, root: Path | None = None) -> str:
        root = Path(root) if root is not None else self.default_dir()
        return (
            f"{self.description}\n"
            f"Expected layout (DIR = {root}):\n{self.layout}\n"
            f"{self.get}\n"
            f"Splits: {self.splits}"
        )


def data_root() -> Path:
    """Where datasets live by default: ``$SGNSEP_DATA``, else ``~/.cache/sgnsep/data``."""
    return Path(os.environ.get("SGNSEP_DATA") or "~/.cache/sgnsep/data").expanduser()


def default_data_dir(name: str) -> Path:
    """``$SGNSEP_DATA/<name>``; ``SGNSEP_DATA`` defaults to ``~/.cache/sgnsep/data``."""
    if name not in DATASETS:
        raise UsageError(f"Unknown dataset '{name}'; use one of {', '.join(DATASETS)}.")
    return data_root() / name


def load_dataset(
    name: str,
    root: str | Path | None = None,
    *,
    split: str,
    sample_rate: int,
    min_samples: int,
    classes: list[str] | None = None,
    cache_bytes: int | None = None,
) -> ClipDataset:
    """The ``split`` of dataset ``name`` read from ``root`` (default: :func:`default_data_dir`).

    ``classes`` picks and orders the classes (class indices follow it); by default every class of the
    dataset with audio on disk, in the dataset's order. Raises :class:`DatasetNotFound` when the folder or
    the files the dataset needs are missing, ``UsageError`` for unknown names, splits or classes.
    """
    if name not in DATASETS:
        raise UsageError(f"Unknown dataset '{name}'; use one of {', '.join(DATASETS)}.")
    if split not in SPLITS:
        raise UsageError(f"Unknown split '{split}'; use one of {', '.join(SPLITS)}.")
    root = default_data_dir(name) if root is None or str(root) == "" else Path(root).expanduser()
    if not root.is_dir():
        raise DatasetNotFound(name, root, f"the folder {root} does not exist.")
    dataset = DATASETS[name].loader(
        root, split=split, sample_rate=sample_rate, min_samples=min_samples, classes=classes, cache_bytes=cache_bytes
    )
    if dataset.skipped:
        shown = "; ".join((why if key in why else f"{key}: {why}").rstrip(".") for key, why in dataset.skipped[:5])
        more = f"; and {len(dataset.skipped) - 5} more" if len(dataset.skipped) > 5 else ""
        log.warning(
            "%s %s split in %s: skipped %d unusable file(s) and using the other %d: %s%s.",
            name, split, root, len(dataset.skipped), len(dataset.clips), shown, more,
        )
    return dataset


# --- listings: every dataset as (class, file, split) entries, then one builder -------------------------


@dataclass
class _Entry:
    cls: str
    key: str  # what `skipped` names: a path relative to the dataset folder, or an id
    split: str
    path: Path | None = None
    reason: str = ""  # set: not usable, skipped with this reason


def _audio_files(folder: Path) -> dict[str, list[Path]]:
    """stem -> files in ``folder`` (one listing, no recursion)."""
    out: dict[str, list[Path]] = {}
    if not folder.is_dir():  # a class of the official lists that was not downloaded
        return out
    items = audio_io.list_folder(folder)
    for p in items:
        if p.is_file() and not p.name.startswith("."):
            out.setdefault(p.stem, []).append(p)
    return out


def _pick_audio(files: list[Path], root: Path) -> tuple[Path | None, str, str | None]:
    """Among same-stem files: (the readable audio file, "", its key), or (None, why not, the unreadable
    file's key), or (None, "", None) when none of them is audio or video."""
    for p in files:
        if p.suffix.lower() in audio_io.AUDIO_EXTENSIONS:
            return p, "", p.relative_to(root).as_posix()
    video = [p for p in files if p.suffix.lower() in VIDEO_EXTENSIONS]
    if video:
        rel = video[0].relative_to(root).as_posix()
        return None, (
            f"{rel} is {video[0].suffix.lower()[1:]}, which libsndfile cannot read; extract its audio, e.g. "
            f"ffmpeg -i {rel} -vn -ac 1 {Path(rel).with_suffix('.wav').as_posix()}"
        ), rel
    return None, "", None


class _ListedDataset(ClipDataset):
    """A dataset built from a listing of entries (all splits), filtered to one split and some classes."""

    def __init__(
        self,
        name: str,
        root: Path,
        entries: list[_Entry],
        order: list[str],
        *,
        split: str,
        sample_rate: int,
        min_samples: int,
        classes: list[str] | None,
        cache_bytes: int | None,
    ):
        super().__init__()
        self.name, self.root, self.split, self.sample_rate = name, root, split, sample_rate
        present = {e.cls for e in entries if e.path is not None and not e.reason}
        if not present:
            missing = sum(1 for e in entries if e.path is None)
            raise DatasetNotFound(
                name, root,
                f"{root} holds no usable audio"
                + (f" ({len(entries)} listed, {missing} of them not on disk)" if entries else "")
                + ".",
            )
        known = list(order)
        if classes:
            unknown = [c for c in classes if c not in known]
            if unknown:
                shown = ", ".join(known[:30]) + (" ..." if len(known) > 30 else "")
                raise UsageError(
                    f"{DATASETS[name].title} at {root} has no class {', '.join(map(repr, unknown))}.",
                    hint=f"Its classes: {shown}.",
                )
            self.classes = list(classes)
        else:
            self.classes = [c for c in known if c in present]
        index = {c: i for i, c in enumerate(self.classes)}
        candidates = []
        for e in entries:
            if e.split != split or (e.cls and e.cls not in index):
                continue
            if not e.cls or e.reason or e.path is None:
                self.skipped.append((e.key, e.reason or "not on disk"))
            else:
                candidates.append((index[e.cls], e.path, e.key))
        self._materialize(candidates, sample_rate=sample_rate, min_samples=min_samples, cache_bytes=cache_bytes)
        if not self.clips:
            raise UsageError(
                f"{DATASETS[name].title} at {root}: no usable {split} clips"
                + (f" ({len(self.skipped)} skipped, e.g. {self.skipped[0][0]}: {self.skipped[0][1]})" if self.skipped else "")
                + ".",
                hint=f"Check the layout: {DATASETS[name].layout.splitlines()[0].strip()}",
            )


def _listed_loader(name: str, lister: Callable[[Path], tuple[list[_Entry], list[str]]]):
    def load(root, *, split, sample_rate, min_samples, classes=None, cache_bytes=None) -> ClipDataset:
        root = Path(root)
        entries, order = lister(root)
        return _ListedDataset(
            name, root, entries, order, split=split, sample_rate=sample_rate, min_samples=min_samples,
            classes=classes, cache_bytes=cache_bytes,
        )

    return load


def _load_solos(root, *, split, sample_rate, min_samples, classes=None, cache_bytes=None) -> ClipDataset:
    root = Path(root)
    has_audio = any(
        p.suffix.lower() in audio_io.AUDIO_EXTENSIONS
        for d in audio_io.list_folder(root) if d.is_dir() and not d.name.startswith(".")
        for p in audio_io.list_folder(d)
    )
    if not has_audio:
        raise DatasetNotFound("solos", root, f"{root} has no <class>/<clip>.wav files.")
    return SolosDataset(
        root, split=split, sample_rate=sample_rate, min_samples=min_samples, classes=classes, cache_bytes=cache_bytes
    )


# stems ---------------------------------------------------------------------------------------------------


MUSIC_CORPUS_FORMAT = "sgnsep-music-corpus"  # sgnsep.music_corpus.FORMAT (not imported: it loads the renderer)


def music_corpus_tracks(root: Path) -> dict[str, dict]:
    """Track folder -> ``{"split", "registers": {class: median MIDI pitch}}`` from the metadata.json of a
    corpus written by `sgnsep data music` (its splits are by piece); {} for any other folder."""
    try:
        data = json.loads((Path(root) / "metadata.json").read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    if not isinstance(data, dict) or data.get("format") != MUSIC_CORPUS_FORMAT:
        return {}
    out = {}
    for t in data.get("tracks", []):
        try:
            if t["split"] in SPLITS:
                out[str(t["track_id"])] = {"split": t["split"],
                                           "registers": {c: float(s["register"]) for c, s in t["stems"].items()}}
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
    return out


def _load_stems(root, *, split, sample_rate, min_samples, classes=None, cache_bytes=None) -> ClipDataset:
    root = Path(root)
    dataset = _listed_loader("stems", _list_stems)(
        root, split=split, sample_rate=sample_rate, min_samples=min_samples, classes=classes, cache_bytes=cache_bytes
    )
    for track, info in music_corpus_tracks(root).items():
        for cls, register in info["registers"].items():
            dataset.registers[(track, cls)] = register
    return dataset


def _list_stems(root: Path, *, name: str = "stems") -> tuple[list[_Entry], list[str]]:
    tracks = [p for p in audio_io.list_folder(root) if p.is_dir() and not p.name.startswith(".")]
    known = music_corpus_tracks(root)
    split_of = rank_splits([t.name for t in tracks if t.name not in known])
    split_of.update({t: info["split"] for t, info in known.items()})
    entries, names = [], set()
    for track in tracks:
        for stem, files in _audio_files(track).items():
            if stem.lower() == "mixture":
                continue
            path, reason, key = _pick_audio(files, root)
            if key is None:
                continue  # not audio at all (notes, images)
            cls = stem.lower()
            names.add(cls)
            entries.append(_Entry(cls, key, split_of[track.name], path, reason))
    if not entries:
        raise DatasetNotFound(name, root, f"{root} has no <track>/<class>.wav stems.")
    return entries, sorted(names)


# MUSIC ---------------------------------------------------------------------------------------------------


def music_split(youtube_id: str) -> str:
    """The split of a MUSIC video: by a hash of its YouTube id alone, so a video has the same split in MUSIC
    and MUSIC-21 and whatever else was downloaded (20 % test as in the paper's 358/90, 10 % validation)."""
    h = hash_fraction(youtube_id)
    return "test" if h < MUSIC_TEST_FRACTION else "val" if h < MUSIC_TEST_FRACTION + MUSIC_VAL_FRACTION else "train"


def _read_music_json(path: Path, name: str, root: Path) -> dict[str, list[str]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        videos = data["videos"]
        if not isinstance(videos, dict) or not all(isinstance(v, list) for v in videos.values()):
            raise TypeError
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
        raise DatasetNotFound(
            name, root, f"{path} is not a MUSIC video list ({{\"videos\": {{class: [youtube_id, ...]}}}})."
        ) from None
    return {str(c): [str(v) for v in ids] for c, ids in videos.items()}


def _music_lister(name: str, json_names: tuple[str, ...], class_list: tuple[str, ...]):
    def lister(root: Path) -> tuple[list[_Entry], list[str]]:
        json_path = next((root / j for j in json_names if (root / j).is_file()), None)
        if json_path is None:
            raise DatasetNotFound(name, root, f"{root} has no {json_names[0]} (the list of solo videos).")
        videos = _read_music_json(json_path, name, root)
        entries = []
        for cls in class_list:
            ids = list(dict.fromkeys(videos.get(cls, [])))
            on_disk = _audio_files(root / "audio" / cls)
            for vid in ids:
                path, reason, key = _pick_audio(on_disk.get(vid, []), root)
                key = key or f"audio/{cls}/{vid}"
                if path is None and not reason:
                    reason = f"listed in {json_path.name} but not downloaded (no audio/{cls}/{vid}.wav)"
                entries.append(_Entry(cls, key, music_split(vid), path, reason))
        if not any(e.path for e in entries):
            raise DatasetNotFound(
                name, root,
                f"none of the {len(entries)} solo videos listed in {json_path.name} has audio under {root / 'audio'}.",
            )
        return entries, list(class_list)

    return lister


# FUSS ----------------------------------------------------------------------------------------------------


def _fuss_base(root: Path) -> Path | None:
    for base in (root / "ssdata", root / "ssdata_reverb", root):
        if any((base / f"{s}_example_list.txt").is_file() or (base / s).is_dir() for s in FUSS_SPLITS.values()):
            return base
    return None


def _fsd50k_labels(root: Path, base: Path) -> dict[str, list[str]] | None:
    """Freesound id -> FSD50K labels (most specific first), from FSD50K.ground_truth/{dev,eval}.csv."""
    for folder in (root / "FSD50K.ground_truth", base.parent / "FSD50K.ground_truth"):
        files = [folder / "dev.csv", folder / "eval.csv"]
        if not any(f.is_file() for f in files):
            continue
        labels: dict[str, list[str]] = {}
        for f in files:
            if not f.is_file():
                continue
            with open(f, newline="", encoding="utf-8") as fh:
                for row in csv.DictReader(fh):
                    if row.get("fname") and row.get("labels"):
                        labels[str(row["fname"]).strip()] = [x.strip() for x in row["labels"].split(",") if x.strip()]
        return labels
    return None


def _jams_sources(path: Path) -> dict[str, str]:
    """Isolated-source file stem (``background0_sound``) -> the source file it was cut from, from scaper's
    JAMS: scaper names the k-th event of a role ``<role><k>_<label>`` in the annotation's order."""
    data = json.loads(path.read_text(encoding="utf-8"))
    anns = data.get("annotations") or []
    ann = next((a for a in anns if a.get("namespace") == "scaper"), anns[0] if anns else None)
    if ann is None:
        return {}
    obs = ann.get("data") or []
    if isinstance(obs, dict):  # JAMS < 0.3 stored columns
        obs = [{"value": v} for v in obs.get("value", [])]
    counters: dict[str, int] = {}
    out = {}
    for o in obs:
        v = o.get("value") or {}
        role, label, src = v.get("role"), v.get("label"), v.get("source_file")
        if not role or src is None:
            continue
        k = counters.get(role, 0)
        counters[role] = k + 1
        out[f"{role}{k}_{label}"] = str(src)
    return out


def _fuss_examples(base: Path, folder: str) -> list[tuple[str, list[str]]]:
    """(example name, source paths relative to base) from ``<folder>_example_list.txt``, or the folder."""
    listing = base / f"{folder}_example_list.txt"
    out = []
    if listing.is_file():
        for line in listing.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if parts:
                out.append((Path(parts[0]).stem, parts[1:]))
        return out
    split_dir = base / folder
    if split_dir.is_dir():
        for src_dir in [d for d in audio_io.list_folder(split_dir) if d.name.endswith("_sources")]:
            files = sorted(p.relative_to(base).as_posix() for p in audio_io.list_folder(src_dir) if p.suffix.lower() == ".wav")
            out.append((src_dir.name[: -len("_sources")], files))
    return out


def _list_fuss(root: Path) -> tuple[list[_Entry], list[str]]:
    base = _fuss_base(root)
    if base is None:
        raise DatasetNotFound("fuss", root, f"{root} has no ssdata/ folder with train/validation/eval examples.")
    labels = _fsd50k_labels(root, base)
    if labels is None:
        raise DatasetNotFound(
            "fuss", root,
            f"FUSS ships without class labels (every source is named '..._sound.wav'); sgnsep labels each source "
            f"with its FSD50K clip's labels, read from {root / 'FSD50K.ground_truth'}/dev.csv and eval.csv, "
            f"which are missing.",
        )
    entries = []
    for split, folder in FUSS_SPLITS.items():
        for example, sources in _fuss_examples(base, folder):
            jams = base / folder / f"{example}.jams"
            try:
                origin = _jams_sources(jams)
                jams_problem = ""
            except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError, TypeError) as exc:
                origin, jams_problem = {}, f"{jams.relative_to(root).as_posix()} is missing or unreadable ({type(exc).__name__})"
            for rel in sources:
                path = base / rel
                key = path.relative_to(root).as_posix()
                src = origin.get(Path(rel).stem)
                if src is None:
                    entries.append(_Entry("", key, split, None, jams_problem or "not described in the example's .jams"))
                    continue
                fsd_id = src.replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
                names = labels.get(fsd_id)
                if not names:
                    entries.append(_Entry("", key, split, None, f"no FSD50K label for Freesound clip {fsd_id}"))
                    continue
                entries.append(_Entry(names[0], key, split, path if path.is_file() else None,
                                      "" if path.is_file() else "listed but not on disk"))
    if not entries:
        raise DatasetNotFound("fuss", root, f"{base} lists no examples.")
    return entries, sorted({e.cls for e in entries if e.cls})


# MUSDB18 -------------------------------------------------------------------------------------------------


def musdb_split(folder: str, track: str) -> str:
    """Official: test/ -> test; the 14 validation tracks of train/ -> val; the other 86 -> train."""
    if folder == "test":
        return "test"
    return "val" if track in MUSDB_VALIDATION_TRACKS else "train"


def _list_musdb(root: Path) -> tuple[list[_Entry], list[str]]:
    entries = []
    stem_mp4 = []
    for folder in ("train", "test"):
        d = root / folder
        if not d.is_dir():
            continue
        stem_mp4 += list(d.glob("*.stem.mp4"))
        for track in [p for p in audio_io.list_folder(d) if p.is_dir()]:
            on_disk = _audio_files(track)
            for src in MUSDB_SOURCES:
                path, reason, key = _pick_audio(on_disk.get(src, []), root)
                key = key or f"{folder}/{track.name}/{src}.wav"
                entries.append(_Entry(src, key, musdb_split(folder, track.name), path, reason or ("" if path else "missing")))
    if not entries:
        if stem_mp4:
            raise DatasetNotFound(
                "musdb18", root,
                f"{root} holds the compressed MUSDB18 (.stem.mp4), which libsndfile cannot read; convert it to wav "
                f"(pip install musdb; musdbconvert {root} {root}-wav) or use MUSDB18-HQ.",
            )
        raise DatasetNotFound("musdb18", root, f"{root} has no train/<track>/ or test/<track>/ folders.")
    return entries, list(MUSDB_SOURCES)


# VGG-Sound -----------------------------------------------------------------------------------------------


def vggsound_split(csv_split: str, clip_id: str) -> str:
    """test -> test; train -> val for the 5 % of clips whose id hashes lowest, train for the rest."""
    if csv_split == "test":
        return "test"
    return "val" if hash_fraction(clip_id) < VGGSOUND_VAL_FRACTION else "train"


def vggsound_clip_id(youtube_id: str, start_seconds: int | str) -> str:
    """The official clip file stem: ``<youtube_id>_<start seconds, 6 digits>``."""
    return f"{youtube_id}_{int(float(start_seconds)):06d}"


def _list_vggsound(root: Path) -> tuple[list[_Entry], list[str]]:
    table = root / "vggsound.csv"
    if not table.is_file():
        raise DatasetNotFound("vggsound", root, f"{table} is missing.")
    rows = []
    with open(table, newline="", encoding="utf-8") as fh:
        for row in csv.reader(fh):
            if len(row) < 4:
                continue
            yid, start, label, split = (x.strip() for x in row[:4])
            try:
                clip_id = vggsound_clip_id(yid, start)
            except ValueError:
                continue  # a header line
            if split in ("train", "test"):
                rows.append((clip_id, label, split))
    if not rows:
        raise DatasetNotFound("vggsound", root, f"{table} has no (youtube_id, start_seconds, label, split) rows.")
    audio, video = _audio_files(root / "audio"), _audio_files(root / "video")
    entries = []
    for clip_id, label, split in rows:
        path, reason, key = _pick_audio(audio.get(clip_id, []) + video.get(clip_id, []), root)
        if path is None and not reason:
            reason = f"not on disk (no audio/{clip_id}.wav)"
        key = key or clip_id
        entries.append(_Entry(label, key, vggsound_split(split, clip_id), path, reason))
    return entries, sorted({label for _, label, _ in rows})


# the registry itself -------------------------------------------------------------------------------------

DATASETS: dict[str, DatasetSpec] = {
    "solos": DatasetSpec(
        name="solos",
        title="Solos folder",
        description="A folder of solo recordings, one subfolder per class (what `sgnsep data synth` writes).",
        layout=(
            "  DIR/<class>/<clip>.wav    solo recordings of one class each (wav, flac, ogg, mp3, aiff, ...)\n"
            "  DIR/metadata.json         optional: {\"clips\": [{\"path\": \"<class>/<clip>.wav\", \"split\": "
            "\"train|val|test\"}, ...]}"
        ),
        get="Put your own recordings in that layout, or render one with `sgnsep data synth --out DIR`.",
        splits="metadata.json when it gives them; otherwise per class by hash of the file path, 10 % test, "
        "10 % validation, 80 % training (classes of 3 files or more; smaller ones train only).",
        loader=_load_solos,
    ),
    "stems": DatasetSpec(
        name="stems",
        title="Stems folder",
        description="Multitrack recordings: one folder per track with one file per source class; every stem is "
        "used as a solo clip of its class.",
        layout=(
            "  DIR/<track>/<class>.wav   one stem per source class (file name = class, any audio extension)\n"
            "  DIR/<track>/mixture.wav   optional, ignored for training"
        ),
        get="Put your multitracks in that layout (the same one `sgnsep eval --dataset stems` reads).",
        splits="by track (all stems of a track stay together): tracks ordered by hash of their name, 10 % test, "
        "10 % validation, 80 % training (3 tracks or more; fewer: training only); a corpus of `sgnsep data "
        "music` by the split its metadata.json gives each track (by piece).",
        loader=_load_stems,
    ),
    "music": DatasetSpec(
        name="music",
        title="MUSIC (MUSIC-11)",
        description="MUSIC (Zhao et al., \"The Sound of Pixels\", ECCV 2018): YouTube videos of solos and duets on "
        "11 instrument classes (accordion, acoustic_guitar, cello, clarinet, erhu, flute, saxophone, trumpet, "
        "tuba, violin, xylophone); MUSIC-21 (--dataset music21) adds 10 more. Only the lists of YouTube ids are "
        "published; you download the audio yourself. sgnsep trains on the solo videos only.",
        layout=(
            "  DIR/MUSIC_solo_videos.json            the official list: {\"version\": ..., \"videos\": "
            "{\"<class>\": [\"<youtube_id>\", ...]}}\n"
            "                                        (MUSIC21_solo_videos.json is used, restricted to the 11 "
            "classes, when it is the only list)\n"
            "  DIR/audio/<class>/<youtube_id>.wav    one file per downloaded solo video (.wav, .flac, .ogg or "
            ".mp3; not .mp4/.webm/.m4a),\n"
            "                                        e.g. DIR/audio/acoustic_guitar/M3dekVSwNjY.wav"
        ),
        get=(
            "Get the JSON lists from https://github.com/roudimit/MUSIC_dataset, then the audio of each listed "
            "video, e.g.\n"
            "  yt-dlp -x --audio-format wav -o \"DIR/audio/<class>/%(id)s.%(ext)s\" "
            "\"https://www.youtube.com/watch?v=<youtube_id>\"\n"
            "Videos listed but not downloaded are skipped and counted."
        ),
        splits="no official split file exists; each video goes by a hash of its YouTube id: 20 % test (the "
        "paper's 358 train / 90 test), 10 % validation, 70 % training, the same in MUSIC and MUSIC-21.",
        loader=_listed_loader(
            "music", _music_lister("music", ("MUSIC_solo_videos.json", "MUSIC21_solo_videos.json"), MUSIC11_CLASSES)
        ),
    ),
    "music21": DatasetSpec(
        name="music21",
        title="MUSIC-21",
        description="MUSIC-21 (Zhao et al., \"The Sound of Motions\", ICCV 2019; MUSIC of \"The Sound of Pixels\", "
        "2018, extended): YouTube solo and duet videos of 21 instrument classes, the 11 of MUSIC plus bagpipe, "
        "banjo, bassoon, congas, drum, electric_bass, guzheng, piano, pipa, ukulele. Only the lists of YouTube "
        "ids are published; you download the audio yourself. sgnsep trains on the solo videos only.",
        layout=(
            "  DIR/MUSIC21_solo_videos.json          the official list: {\"version\": ..., \"videos\": "
            "{\"<class>\": [\"<youtube_id>\", ...]}}\n"
            "  DIR/audio/<class>/<youtube_id>.wav    one file per downloaded solo video (.wav, .flac, .ogg or "
            ".mp3; not .mp4/.webm/.m4a),\n"
            "                                        e.g. DIR/audio/bagpipe/kw-OQpF9N4E.wav"
        ),
        get=(
            "Get MUSIC21_solo_videos.json from https://github.com/roudimit/MUSIC_dataset, then the audio of each "
            "listed video, e.g.\n"
            "  yt-dlp -x --audio-format wav -o \"DIR/audio/<class>/%(id)s.%(ext)s\" "
            "\"https://www.youtube.com/watch?v=<youtube_id>\"\n"
            "Videos listed but not downloaded are skipped and counted."
        ),
        splits="by a hash of the YouTube id: 20 % test, 10 % validation, 70 % training (as for MUSIC; a video "
        "has the same split in both).",
        loader=_listed_loader("music21", _music_lister("music21", ("MUSIC21_solo_videos.json",), MUSIC21_CLASSES)),
    ),
    "fuss": DatasetSpec(
        name="fuss",
        title="FUSS",
        description="FUSS (Wisdom et al., \"What's All the FUSS About Free Universal Sound Separation Data?\", "
        "2020): 10 s mixtures of 1 to 4 sources cut from FSD50K clips, with every source as its own file. FUSS "
        "itself names every source '..._sound' (no classes); sgnsep labels a source with the first (most "
        "specific) FSD50K label of the clip it was cut from, found through the example's .jams file.",
        layout=(
            "  DIR/ssdata/{train,validation,eval}_example_list.txt     (from FUSS_ssdata.tar.gz; ssdata_reverb/ "
            "is read too)\n"
            "  DIR/ssdata/<split>/exampleNNNNN.wav                     the mixture (ignored for training)\n"
            "  DIR/ssdata/<split>/exampleNNNNN_sources/background0_sound.wav, foreground<k>_sound.wav\n"
            "  DIR/ssdata/<split>/exampleNNNNN.jams                    scaper's record: the FSD50K clip of each source\n"
            "  DIR/FSD50K.ground_truth/dev.csv, eval.csv               FSD50K labels (fname,labels,mids[,split])"
        ),
        get=(
            "Download FUSS_ssdata.tar.gz from https://zenodo.org/record/3743844 and FSD50K.ground_truth.zip from "
            "https://zenodo.org/record/4060432, and extract both into DIR."
        ),
        splits="official: train -> train, validation -> val, eval -> test.",
        loader=_listed_loader("fuss", _list_fuss),
    ),
    "musdb18": DatasetSpec(
        name="musdb18",
        title="MUSDB18",
        description="MUSDB18 (Rafii et al., 2017): 150 full music tracks with drums, bass, other and vocals "
        "stems; each stem is used as a solo clip of its class.",
        layout=(
            "  DIR/train/<Artist - Title>/{mixture,drums,bass,other,vocals}.wav   (100 tracks; mixture ignored)\n"
            "  DIR/test/<Artist - Title>/{mixture,drums,bass,other,vocals}.wav    (50 tracks)"
        ),
        get=(
            "That is the MUSDB18-HQ layout (https://zenodo.org/record/3338373). The compressed MUSDB18 "
            "(<track>.stem.mp4) cannot be read by libsndfile: convert it with `pip install musdb` and "
            "`musdbconvert MUSDB18_DIR DIR`."
        ),
        splits="official: test/ -> test; the 14 validation tracks of the musdb package (e.g. 'Actions - One "
        "Minute Smile') -> val; the other 86 train/ tracks -> train.",
        loader=_listed_loader("musdb18", _list_musdb),
    ),
    "vggsound": DatasetSpec(
        name="vggsound",
        title="VGG-Sound",
        description="VGG-Sound (Chen et al., ICASSP 2020): about 200k 10 s YouTube clips of 309 sound classes; "
        "each clip is used as a solo clip of its label.",
        layout=(
            "  DIR/vggsound.csv                          rows youtube_id,start_seconds,label,split (train|test), "
            "no header\n"
            "  DIR/audio/<youtube_id>_<start:06d>.wav    the clip's audio (.wav, .flac, .ogg or .mp3), e.g. "
            "DIR/audio/---g-f_I2yQ_000001.wav\n"
            "  DIR/video/<youtube_id>_<start:06d>.mp4    the released videos: libsndfile cannot read mp4, so "
            "extract the audio first:\n"
            "                                            ffmpeg -i video/<name>.mp4 -vn -ac 1 audio/<name>.wav"
        ),
        get="Get vggsound.csv (and the clips) from https://www.robots.ox.ac.uk/~vgg/data/vggsound/.",
        splits="official test rows -> test; training rows -> val for the 5 % whose clip id hashes lowest, "
        "train for the rest.",
        loader=_listed_loader("vggsound", _list_vggsound),
    ),
}


def describe_datasets() -> str:
    """One line per dataset: name, title and default folder (for --help texts)."""
    return "\n".join(f"{s.name:9s} {s.title} (default folder {default_data_dir(s.name)})" for s in DATASETS.values())
