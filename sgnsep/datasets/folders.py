"""The user's own folders: solos (``DIR/<class>/*.wav``) and stems (``DIR/<track>/<class>.wav``), including the
corpora `sgnsep data synth`, `data chorales` and `data music` write (their metadata.json gives the splits).
"""

from __future__ import annotations

import json
from pathlib import Path

from sgnsep.audio import audio_io
from sgnsep.core.errors import UsageError
from sgnsep.datasets.catalog import DatasetNotFound
from sgnsep.datasets.clips import ClipDataset
from sgnsep.datasets.listing import Entry, audio_files, listed_loader, pick_audio
from sgnsep.datasets.splits import SPLITS, rank_splits


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


def load_solos(root, *, split, sample_rate, min_samples, classes=None, cache_bytes=None) -> ClipDataset:
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


MUSIC_CORPUS_FORMAT = "sgnsep-music-corpus"  # the "format" of the metadata.json of `sgnsep data music`


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


def load_stems(root, *, split, sample_rate, min_samples, classes=None, cache_bytes=None) -> ClipDataset:
    root = Path(root)
    dataset = listed_loader("stems", list_stems)(
        root, split=split, sample_rate=sample_rate, min_samples=min_samples, classes=classes, cache_bytes=cache_bytes
    )
    for track, info in music_corpus_tracks(root).items():
        for cls, register in info["registers"].items():
            dataset.registers[(track, cls)] = register
    return dataset


def list_stems(root: Path, *, name: str = "stems") -> tuple[list[Entry], list[str]]:
    tracks = [p for p in audio_io.list_folder(root) if p.is_dir() and not p.name.startswith(".")]
    known = music_corpus_tracks(root)
    split_of = rank_splits([t.name for t in tracks if t.name not in known])
    split_of.update({t: info["split"] for t, info in known.items()})
    entries, names = [], set()
    for track in tracks:
        for stem, files in audio_files(track).items():
            if stem.lower() == "mixture":
                continue
            path, reason, key = pick_audio(files, root)
            if key is None:
                continue  # not audio at all (notes, images)
            cls = stem.lower()
            names.add(cls)
            entries.append(Entry(cls, key, split_of[track.name], path, reason))
    if not entries:
        raise DatasetNotFound(name, root, f"{root} has no <track>/<class>.wav stems.")
    return entries, sorted(names)
