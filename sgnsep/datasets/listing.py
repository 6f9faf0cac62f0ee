"""Datasets listed as (class, file, split) entries, and the one builder that turns a listing into clips."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sgnsep.audio import audio_io
from sgnsep.core.errors import UsageError
from sgnsep.datasets.catalog import INFO, DatasetNotFound
from sgnsep.datasets.clips import ClipDataset


# Extensions that libsndfile cannot read but that users commonly have (video containers, AAC/Opus-in-MP4).
VIDEO_EXTENSIONS = (".mp4", ".m4a", ".webm", ".mkv", ".mov", ".avi", ".aac", ".3gp")


@dataclass
class Entry:
    cls: str
    key: str  # what `skipped` names: a path relative to the dataset folder, or an id
    split: str
    path: Path | None = None
    reason: str = ""  # set: not usable, skipped with this reason


def audio_files(folder: Path) -> dict[str, list[Path]]:
    """stem -> files in ``folder`` (one listing, no recursion)."""
    out: dict[str, list[Path]] = {}
    if not folder.is_dir():  # a class of the official lists that was not downloaded
        return out
    items = audio_io.list_folder(folder)
    for p in items:
        if p.is_file() and not p.name.startswith("."):
            out.setdefault(p.stem, []).append(p)
    return out


def pick_audio(files: list[Path], root: Path) -> tuple[Path | None, str, str | None]:
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


class ListedDataset(ClipDataset):
    """A dataset built from a listing of entries (all splits), filtered to one split and some classes."""

    def __init__(
        self,
        name: str,
        root: Path,
        entries: list[Entry],
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
                    f"{INFO[name].title} at {root} has no class {', '.join(map(repr, unknown))}.",
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
                f"{INFO[name].title} at {root}: no usable {split} clips"
                + (f" ({len(self.skipped)} skipped, e.g. {self.skipped[0][0]}: {self.skipped[0][1]})" if self.skipped else "")
                + ".",
                hint=f"Check the layout: {INFO[name].layout.splitlines()[0].strip()}",
            )


def listed_loader(name: str, lister: Callable[[Path], tuple[list[Entry], list[str]]]):
    def load(root, *, split, sample_rate, min_samples, classes=None, cache_bytes=None) -> ClipDataset:
        root = Path(root)
        entries, order = lister(root)
        return ListedDataset(
            name, root, entries, order, split=split, sample_rate=sample_rate, min_samples=min_samples,
            classes=classes, cache_bytes=cache_bytes,
        )

    return load
