"""The public datasets in their published layouts: MUSIC and MUSIC-21 (Sound of Pixels), FUSS, MUSDB18 and
VGG-Sound, each listed with its official split or, where none exists, a hash split.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from sgnsep.audio import audio_io
from sgnsep.datasets.catalog import DatasetNotFound
from sgnsep.datasets.listing import Entry, audio_files, pick_audio
from sgnsep.datasets.splits import hash_fraction


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


def music_lister(name: str, json_names: tuple[str, ...], class_list: tuple[str, ...]):
    def lister(root: Path) -> tuple[list[Entry], list[str]]:
        json_path = next((root / j for j in json_names if (root / j).is_file()), None)
        if json_path is None:
            raise DatasetNotFound(name, root, f"{root} has no {json_names[0]} (the list of solo videos).")
        videos = _read_music_json(json_path, name, root)
        entries = []
        for cls in class_list:
            ids = list(dict.fromkeys(videos.get(cls, [])))
            on_disk = audio_files(root / "audio" / cls)
            for vid in ids:
                path, reason, key = pick_audio(on_disk.get(vid, []), root)
                key = key or f"audio/{cls}/{vid}"
                if path is None and not reason:
                    reason = f"listed in {json_path.name} but not downloaded (no audio/{cls}/{vid}.wav)"
                entries.append(Entry(cls, key, music_split(vid), path, reason))
        if not any(e.path for e in entries):
            raise DatasetNotFound(
                name, root,
                f"none of the {len(entries)} solo videos listed in {json_path.name} has audio under {root / 'audio'}.",
            )
        return entries, list(class_list)

    return lister


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


def list_fuss(root: Path) -> tuple[list[Entry], list[str]]:
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
                    entries.append(Entry("", key, split, None, jams_problem or "not described in the example's .jams"))
                    continue
                fsd_id = src.replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
                names = labels.get(fsd_id)
                if not names:
                    entries.append(Entry("", key, split, None, f"no FSD50K label for Freesound clip {fsd_id}"))
                    continue
                entries.append(Entry(names[0], key, split, path if path.is_file() else None,
                                      "" if path.is_file() else "listed but not on disk"))
    if not entries:
        raise DatasetNotFound("fuss", root, f"{base} lists no examples.")
    return entries, sorted({e.cls for e in entries if e.cls})


def musdb_split(folder: str, track: str) -> str:
    """Official: test/ -> test; the 14 validation tracks of train/ -> val; the other 86 -> train."""
    if folder == "test":
        return "test"
    return "val" if track in MUSDB_VALIDATION_TRACKS else "train"


def list_musdb(root: Path) -> tuple[list[Entry], list[str]]:
    entries = []
    stem_mp4 = []
    for folder in ("train", "test"):
        d = root / folder
        if not d.is_dir():
            continue
        stem_mp4 += list(d.glob("*.stem.mp4"))
        for track in [p for p in audio_io.list_folder(d) if p.is_dir()]:
            on_disk = audio_files(track)
            for src in MUSDB_SOURCES:
                path, reason, key = pick_audio(on_disk.get(src, []), root)
                key = key or f"{folder}/{track.name}/{src}.wav"
                entries.append(Entry(src, key, musdb_split(folder, track.name), path, reason or ("" if path else "missing")))
    if not entries:
        if stem_mp4:
            raise DatasetNotFound(
                "musdb18", root,
                f"{root} holds the compressed MUSDB18 (.stem.mp4), which libsndfile cannot read; convert it to wav "
                f"(pip install musdb; musdbconvert {root} {root}-wav) or use MUSDB18-HQ.",
            )
        raise DatasetNotFound("musdb18", root, f"{root} has no train/<track>/ or test/<track>/ folders.")
    return entries, list(MUSDB_SOURCES)


def vggsound_split(csv_split: str, clip_id: str) -> str:
    """test -> test; train -> val for the 5 % of clips whose id hashes lowest, train for the rest."""
    if csv_split == "test":
        return "test"
    return "val" if hash_fraction(clip_id) < VGGSOUND_VAL_FRACTION else "train"


def vggsound_clip_id(youtube_id: str, start_seconds: int | str) -> str:
    """The official clip file stem: ``<youtube_id>_<start seconds, 6 digits>``."""
    return f"{youtube_id}_{int(float(start_seconds)):06d}"


def list_vggsound(root: Path) -> tuple[list[Entry], list[str]]:
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
    audio, video = audio_files(root / "audio"), audio_files(root / "video")
    entries = []
    for clip_id, label, split in rows:
        path, reason, key = pick_audio(audio.get(clip_id, []) + video.get(clip_id, []), root)
        if path is None and not reason:
            reason = f"not on disk (no audio/{clip_id}.wav)"
        key = key or clip_id
        entries.append(Entry(label, key, vggsound_split(split, clip_id), path, reason))
    return entries, sorted({label for _, label, _ in rows})
