"""The datasets `--dataset` names, each with its loader, and :func:`load_dataset`, which reads one split."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from sgnsep.core.errors import UsageError
from sgnsep.datasets.catalog import INFO, DatasetInfo, DatasetNotFound, default_data_dir
from sgnsep.datasets.clips import ClipDataset
from sgnsep.datasets.folders import load_solos, load_stems
from sgnsep.datasets.listing import listed_loader
from sgnsep.datasets.public import MUSIC11_CLASSES, MUSIC21_CLASSES, list_fuss, list_musdb, list_vggsound, music_lister
from sgnsep.datasets.splits import SPLITS

log = logging.getLogger(__name__)  # `sgnsep train` prints its warnings (e.g. skipped files)


@dataclass(frozen=True)
class DatasetSpec(DatasetInfo):
    """A dataset's text (:class:`~sgnsep.datasets.catalog.DatasetInfo`) and its
    ``loader(root, split=, sample_rate=, min_samples=, classes=, cache_bytes=)``."""

    loader: Callable[..., ClipDataset]


DATASETS: dict[str, DatasetSpec] = {  # the order of catalog.INFO
    "solos": DatasetSpec(**asdict(INFO["solos"]), loader=load_solos),
    "stems": DatasetSpec(**asdict(INFO["stems"]), loader=load_stems),
    "music": DatasetSpec(**asdict(INFO["music"]), loader=listed_loader(
        "music", music_lister("music", ("MUSIC_solo_videos.json", "MUSIC21_solo_videos.json"), MUSIC11_CLASSES))),
    "music21": DatasetSpec(**asdict(INFO["music21"]), loader=listed_loader(
        "music21", music_lister("music21", ("MUSIC21_solo_videos.json",), MUSIC21_CLASSES))),
    "fuss": DatasetSpec(**asdict(INFO["fuss"]), loader=listed_loader("fuss", list_fuss)),
    "musdb18": DatasetSpec(**asdict(INFO["musdb18"]), loader=listed_loader("musdb18", list_musdb)),
    "vggsound": DatasetSpec(**asdict(INFO["vggsound"]), loader=listed_loader("vggsound", list_vggsound)),
}


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


def describe_datasets() -> str:
    """One line per dataset: name, title and default folder (for --help texts)."""
    return "\n".join(f"{s.name:9s} {s.title} (default folder {default_data_dir(s.name)})" for s in DATASETS.values())
