"""Training and evaluation data: solo recordings per class, and mix-and-separate sampling over them.

Layouts:
- ``solos``: ``DIR/<class>/*.wav`` (any libsndfile format); if ``DIR/metadata.json`` (as written by
  `sgnsep data synth`) gives each clip a split, that split is used; otherwise each class's files are
  ordered by a hash of their relative path and the first 10 % (at least one) go to test, the next 10 %
  (at least one) to validation, the rest to training, when the class has 3 files or more. The split is
  reproducible; adding files to a class can move a few of its files between splits.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sgnsep import audio_io
from sgnsep.errors import SgnsepError, UsageError

SPLITS = ("train", "val", "test")


def _hash(relpath: str) -> str:
    return hashlib.sha1(relpath.encode()).hexdigest()


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


@dataclass
class Clip:
    cls: int
    path: Path
    audio: np.ndarray  # mono float32 at the model rate


class SolosDataset:
    """Solo clips of each class, loaded into memory at the model rate (mono).

    Unreadable or too-short files are skipped and counted in ``skipped`` (with reasons), not fatal.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        split: str,
        sample_rate: int,
        min_samples: int,
        classes: list[str] | None = None,
    ):
        if split not in SPLITS:
            raise UsageError(f"Unknown split '{split}'; use one of {', '.join(SPLITS)}.")
        self.root = Path(root)
        if not self.root.is_dir():
            raise UsageError(f"Data folder {self.root} does not exist.", hint="Pass --data-dir DIR (solos layout).")
        found = sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
        self.classes = list(classes) if classes else found
        unknown = [c for c in self.classes if c not in found]
        if unknown:
            raise UsageError(f"{self.root} has no folder for class(es) {', '.join(unknown)}; it has {', '.join(found)}.")
        splits = self._metadata_splits()
        self.clips: list[Clip] = []
        self.skipped: list[tuple[str, str]] = []
        for ci, cls in enumerate(self.classes):
            paths = [p for p in sorted((self.root / cls).iterdir()) if p.suffix.lower() in audio_io.AUDIO_EXTENSIONS]
            rels = [p.relative_to(self.root).as_posix() for p in paths]
            fallback = rank_splits([r for r in rels if r not in splits])
            for path, rel in zip(paths, rels):
                if splits.get(rel, fallback.get(rel)) != split:
                    continue
                try:
                    data, rate = audio_io.read_audio(path)
                except SgnsepError as exc:
                    self.skipped.append((rel, exc.message))
                    continue
                mono = torch.from_numpy(data.mean(axis=0, keepdims=True))
                if rate != sample_rate:
                    import torchaudio.functional as AF

                    mono = AF.resample(mono, rate, sample_rate)
                mono = mono[0].numpy().astype(np.float32)
                if len(mono) < min_samples // 4:
                    self.skipped.append((rel, f"too short ({len(mono)} samples at {sample_rate} Hz)"))
                    continue
                self.clips.append(Clip(ci, path, mono))
        self.by_class = {ci: [c for c in self.clips if c.cls == ci] for ci in range(len(self.classes))}
        empty = [self.classes[ci] for ci, v in self.by_class.items() if not v]
        if empty:
            raise UsageError(
                f"{self.root}: no usable {split} clips for class(es) {', '.join(empty)}"
                + (f" ({len(self.skipped)} files skipped)" if self.skipped else "")
                + "."
            )

    def _metadata_splits(self) -> dict[str, str]:
        meta = self.root / "metadata.json"
        if not meta.is_file():
            return {}
        try:
            data = json.loads(meta.read_text())
        except (OSError, json.JSONDecodeError):
            return {}
        out = {}
        for clip in data.get("clips", []):
            if isinstance(clip, dict) and "path" in clip and clip.get("split") in SPLITS:
                out[str(clip["path"])] = clip["split"]
        return out


def sample_mixture(
    dataset: SolosDataset,
    num_sources: int,
    samples: int,
    rng: np.random.Generator,
    *,
    min_rms: float = 1e-3,
) -> tuple[np.ndarray, np.ndarray]:
    """N distinct classes, one random clip and offset each -> (sources (N, samples), classes (N,)).

    A window that is (nearly) silent is redrawn a few times, since a silent source makes an empty target.
    """
    if num_sources > len(dataset.classes):
        raise UsageError(f"Cannot mix {num_sources} distinct classes from {len(dataset.classes)}.")
    classes = rng.choice(len(dataset.classes), size=num_sources, replace=False)
    sources = np.zeros((num_sources, samples), dtype=np.float32)
    for i, c in enumerate(classes):
        pool = dataset.by_class[int(c)]
        for _ in range(8):
            clip = pool[rng.integers(len(pool))].audio
            if len(clip) >= samples:
                start = int(rng.integers(len(clip) - samples + 1))
                window = clip[start : start + samples]
            else:
                window = np.pad(clip, (0, samples - len(clip)))
            if np.sqrt(np.mean(window**2)) >= min_rms:
                break
        sources[i] = window
    return sources, classes.astype(np.int64)
