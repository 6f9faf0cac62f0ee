"""`sgnsep data music`: a training corpus of performed multi-part music, in the stems layout.

::

    out_dir/<track_id>/<class>.wav     mono 16-bit stems of one track (one piece, one tempo, one room)
    out_dir/<track_id>/mixture.wav     with ``mixtures=True``: the exact sum of the stems (32-bit float)
    out_dir/metadata.json              format "sgnsep-music-corpus": every track and stem, how it was made

One track::

    a piece of music21's corpus (sgnsep.synth.score_library)  ->  a window of 1..4 of its parts, transposed
    ->  one instrument class and preset per part (sgnsep.synth.soundfont_presets), all from one soundfont
    ->  a performance (sgnsep.synth.performance)  ->  sgnsep.synth.render_notes  ->  EQ, room, noise
    (sgnsep.synth.stem_effects)  ->  loudness normalisation plus a random gain (sgnsep.synth)  ->  WAV

Pieces are drawn by style group (:data:`GROUP_WEIGHTS`, so the 12,900 folk tunes do not drown the 1,900
polyphonic pieces), then uniformly in the group. A polyphonic piece gives up to ``max_sources`` of its parts
that play in the window, each on a different class whose range holds it after one transposition of the whole
piece (-5..+6 semitones) and whole-octave shifts per part (sgnsep.synth's assignment, which favours small
shifts and classes used less so far). A folk tune (one line) is played by 1..3 instruments in unison or
octaves, as in a session: the same music in the same register, the hardest case for separation.

Tempo: a quarter-note tempo of 60..140, moved so that the median note lasts 0.15..1.0 s (the corpus
notates in half notes, quarters and eighths alike). The track lasts ``track_seconds`` (drawn per track).

Soundfonts: a family, then a soundfont of it, then for each stem one of the class's presets in it whose range
holds the part. Every stem records its soundfont, family and preset, so a later step can hold a family out.

Splits: by work (sgnsep.datasets.splits.piece_split): no piece, mass or folk tune is in two splits, and the Bach
chorales keep the split sgnsep.synth gives them. Every track's stems share its split. The stems loader of
sgnsep.datasets reads the split of each track from metadata.json. ``only_splits`` renders only the pieces of
some splits: a validation and test corpus in a soundfont family held out of training (the held-out-family
protocol of weights.md) is rendered with ``only_splits=("val", "test")``.

Determinism: metadata.json's ``command`` is the command line that renders the corpus again. Track k draws
from ``numpy.random.default_rng([seed, crc32("music-corpus"), k])`` and its stem j from
``[seed, crc32("music-corpus"), k, 1 + j]``; the same arguments give byte-identical WAVs and metadata.json
(which holds no run times and not the output folder). The note lists of the pieces are cached as JSON
(``score_cache``, default ~/.cache/sgnsep/scores) so a rerun does not parse again; the cache does not change
the output.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from sgnsep.core import folder_lock
from sgnsep.core.atomic_write import NewOutputs
from sgnsep.core.errors import OutputError, UsageError
from sgnsep.datasets.folders import MUSIC_CORPUS_FORMAT
from sgnsep.datasets.splits import SPLITS, piece_split, resolve_splits
from sgnsep.synth import (
    corpus_files, instruments, loudness, performance, render, score_library, scores, soundfont_presets, stem_effects,
)

__all__ = ["FORMAT", "VERSION", "GROUP_WEIGHTS", "build_music_corpus", "read_manifest"]

FORMAT = MUSIC_CORPUS_FORMAT  # what the stems loader recognises a corpus of this module by
VERSION = 1
#: Style groups and how often a track draws from each (design choice: polyphony first, folk for unisons).
GROUP_WEIGHTS = {"renaissance": 0.25, "medieval": 0.1, "baroque": 0.2, "other": 0.1, "folk": 0.35}
TARGET_DB = -23.0  # stems are normalised here, then given a gain of +-GAIN_DB
GAIN_DB = 6.0
_STREAM = zlib.crc32(b"music-corpus")


@functools.lru_cache(maxsize=1)
def _chorale_ids() -> frozenset[str]:
    return frozenset(scores.chorale_ids())


def _check(hours, seed, sample_rate, track_seconds, max_sources) -> tuple[float, float]:
    if not isinstance(hours, (int, float)) or not math.isfinite(hours) or not 0 < hours <= 1000:
        raise UsageError(f"hours must be above 0 and at most 1000, got {hours}.")
    if int(seed) != seed or seed < 0:
        raise UsageError(f"seed must be a non-negative integer, got {seed}.")
    if not 4000 <= int(sample_rate) <= 96000:
        raise UsageError(f"sample_rate must be between 4000 and 96000 Hz, got {sample_rate}.")
    lo, hi = (float(track_seconds), float(track_seconds)) if np.isscalar(track_seconds) else map(float, track_seconds)
    if not (1.0 <= lo <= hi <= 600.0):
        raise UsageError(f"track seconds must be 1 <= min <= max <= 600, got {lo:g}..{hi:g}.")
    if not 1 <= int(max_sources) <= 4:
        raise UsageError(f"max_sources must be between 1 and 4, got {max_sources}.")
    return lo, hi


def _check_only_splits(only_splits, fractions: dict[str, float]) -> list[str]:
    """The splits to render, in SPLITS order."""
    if only_splits is None:
        return list(SPLITS)
    wanted = [str(s).strip() for s in only_splits if str(s).strip()]
    unknown = sorted(set(wanted) - set(SPLITS))
    if unknown or not wanted:
        raise UsageError(f"only_splits must name splits of {', '.join(SPLITS)}, got {', '.join(wanted) or 'none'}.")
    empty = [s for s in wanted if fractions[s] <= 0]
    if empty:
        raise UsageError(f"only_splits names splits that hold no pieces: {', '.join(empty)}.")
    return [s for s in SPLITS if s in wanted]


def _prepare_folder(out: Path, overwrite: bool) -> dict | None:
    """The old manifest when ``out`` holds a music corpus to overwrite; refuses any other non-empty folder."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out} exists and is not a folder.")
    if not out.exists() or not [p for p in out.iterdir() if p.name != folder_lock.LOCK_NAME]:
        return None
    old = None
    try:
        old = json.loads((out / "metadata.json").read_text())
    except (OSError, ValueError):
        pass
    if not isinstance(old, dict) or old.get("format") != FORMAT:
        raise OutputError(f"{out} is not empty and holds no music corpus.",
                          hint="Write the corpus into a new or empty folder (a stems folder reads every subfolder).")
    if not overwrite:
        raise OutputError(f"{out} already holds a music corpus.", hint="Pass --overwrite to replace it, or choose another folder.")
    return old


def _remove_old(out: Path, old: dict) -> None:
    """The old manifest first (it must never describe new files), then its stems and emptied track folders."""
    (out / "metadata.json").unlink()
    inside = out.resolve()
    for track in old.get("tracks", []) if isinstance(old.get("tracks"), list) else []:
        try:
            folder = (out / str(track["track_id"])).resolve()
            if folder.parent != inside:
                continue
            for name in [Path(s["path"]).name for s in track.get("stems", {}).values()] + ["mixture.wav"]:
                f = folder / name
                if f.parent == folder and f.suffix == ".wav":
                    f.unlink(missing_ok=True)
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        except (KeyError, TypeError, AttributeError, OSError):
            continue


def _tempo(events_by_part: dict, rng: np.random.Generator) -> float:
    durations = np.concatenate([[e[2] for e in ev] for ev in events_by_part.values()])
    median_q = float(np.median(durations))
    bpm = float(rng.uniform(60.0, 140.0))
    note_s = median_q * 60.0 / bpm
    if note_s < 0.15:
        bpm = median_q * 60.0 / 0.15
    elif note_s > 1.0:
        bpm = median_q * 60.0 / 1.0
    return float(np.clip(bpm, 30.0, 300.0))


def _slug(piece_id: str) -> str:
    """``"essenFolksong/lot.abc#5"`` -> ``"essenFolksong-lot-5"`` (a folder name)."""
    base, _, number = piece_id.partition("#")
    text = base.rsplit(".", 1)[0] + (f"-{number}" if number else "")
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:60]


def _plan_track(data, seconds, max_sources, classes_in_font, uses, rng):
    """Parts, their classes and transpositions, window and tempo of one track, or (None, reason)."""
    parts = data["parts"]
    bpm = _tempo({i: p["events"] for i, p in enumerate(parts)}, rng)
    spb = 60.0 / bpm
    ends = [p["events"][-1][1] + p["events"][-1][2] for p in parts]
    total_q = max(ends)
    onsets = sorted({e[1] for p in parts for e in p["events"] if total_q - e[1] >= seconds / spb})
    start_q = float(onsets[int(rng.integers(len(onsets)))]) if onsets else 0.0
    window_q = seconds / spb * 1.2 + 4
    active = []
    for i, p in enumerate(parts):
        n = sum(1 for e in p["events"] if start_q - 1e-9 <= e[1] < start_q + window_q)
        if n >= 3:
            active.append(i)
    if not active:
        return None, "no part plays in the window"
    cap = min(max_sources, len(classes_in_font))
    if len(active) == 1:  # a tune: unison or octave doubling
        n = int(rng.choice([1, 2, 3], p=[0.4, 0.4, 0.2]))
        chosen = [active[0]] * min(n, cap)
    else:
        top = min(cap, len(active))
        n = top if rng.random() < 0.7 else int(rng.integers(1, top + 1))
        chosen = sorted(int(i) for i in rng.choice(active, size=n, replace=False))
    shift = int(rng.integers(-5, 7))
    lines = {}
    for j, i in enumerate(chosen):
        ev = [e for e in parts[i]["events"] if start_q - 1e-9 <= e[1] < start_q + window_q]
        lines[f"{j}:{parts[i]['name']}"] = (i, ev)
    pitches = {name: [e[0] + shift for e in ev] for name, (_, ev) in lines.items()}
    assignment = instruments.assign_instruments(pitches, classes_in_font, uses, rng)
    if assignment is None:
        return None, "no distinct classes fit the parts' ranges"
    return {"bpm": bpm, "start_q": start_q, "shift": shift, "lines": lines, "assignment": assignment}, ""


def build_music_corpus(
    out_dir: str | os.PathLike,
    *,
    hours: float,
    seed: int = 0,
    soundfonts: Sequence[str] | None = None,
    classes: Sequence[str] | None = None,
    track_seconds: float | tuple[float, float] = (10.0, 30.0),
    max_sources: int = 4,
    sample_rate: int = 11025,
    splits: dict[str, float] | Sequence[float] = (0.8, 0.1, 0.1),
    score_cache: str | os.PathLike | None | bool = True,
    mixtures: bool = False,
    only_splits: Sequence[str] | None = None,
    overwrite: bool = False,
    progress: Callable[[float, float], None] | None = None,
) -> dict:
    """Render about ``hours`` of stems (summed over stems) into ``out_dir`` and return the manifest (plus a
    ``"timing"`` entry that is not written). ``soundfonts``: keys, ``family:<name>`` or paths (all installed
    when None). ``classes``: of sgnsep.synth.INSTRUMENTS (all when None). ``score_cache``: True for the
    default folder, a folder, or False/None for none. ``only_splits``: render only pieces of these splits
    (a piece keeps the split that ``splits`` gives it, so a validation corpus rendered with another soundfont
    holds no piece that a training corpus of the same fractions trains on); None: every split. ``out_dir``
    must be new, empty, or (with ``overwrite``) a music corpus."""
    lo, hi = _check(hours, seed, sample_rate, track_seconds, max_sources)
    fractions = resolve_splits(splits)
    kept_splits = _check_only_splits(only_splits, fractions)
    class_names = instruments.resolve_classes(classes)
    fonts = soundfont_presets.resolve_soundfonts(None if soundfonts is None else list(soundfonts))
    seed, sample_rate, max_sources = int(seed), int(sample_rate), int(max_sources)
    cache = score_library.default_cache_dir() if score_cache is True else (Path(score_cache) if score_cache else None)
    out = Path(out_dir)
    # One render at a time in a corpus folder (sgnsep/folder_lock.py): two would write the same track names.
    with folder_lock.hold(out, option="--out", what="corpus folder"):
        old = _prepare_folder(out, overwrite)

        t0 = time.perf_counter()
        pieces = score_library.list_pieces()
        by_group: dict[str, list] = {}
        for p in pieces:
            by_group.setdefault(p.group, []).append(p)
        groups = [g for g in GROUP_WEIGHTS if by_group.get(g)]
        weights = np.array([GROUP_WEIGHTS[g] for g in groups])
        chorales = _chorale_ids()
        usable, skipped_presets = soundfont_presets.usable_presets(fonts, class_names, sample_rate)
        fonts_ok = [k for k in fonts if usable[k]]
        if not fonts_ok:
            raise UsageError(f"No soundfont renders any of the classes {', '.join(class_names)}.")
        families = sorted({soundfont_presets.soundfont_family(k, fonts[k]) for k in fonts_ok})

        with NewOutputs() as outputs:
            try:
                outputs.folder(out)
                if old is not None:
                    _remove_old(out, old)
            except OSError as exc:
                raise OutputError(f"Cannot write to {out}: {exc.strerror or exc}.") from exc
            target = float(hours) * 3600.0
            done = 0.0
            uses = {c: 0 for c in class_names}
            tracks, skipped, skipped_stems = [], [], []
            k = other_split = 0
            # Pieces of other splits cost an attempt each: allow for the share of the pieces left out.
            share = sum(fractions[s] for s in kept_splits)
            max_attempts = int((200 + 20 * target / max(1.0, lo)) / max(share, 0.01))
            while done < target and k < max_attempts:
                rng = np.random.default_rng([seed, _STREAM, k])
                k += 1
                group = groups[int(rng.choice(len(groups), p=weights / weights.sum()))]
                piece = by_group[group][int(rng.integers(len(by_group[group])))]
                split = piece_split(score_library.work_key(piece, chorales), fractions)
                if split not in kept_splits:
                    other_split += 1
                    continue
                family = families[int(rng.integers(len(families)))]
                in_family = [f for f in fonts_ok if soundfont_presets.soundfont_family(f, fonts[f]) == family]
                font = in_family[int(rng.integers(len(in_family)))]
                seconds = round(float(rng.uniform(lo, hi)), 2)
                room = stem_effects.draw_room(rng)
                lead_in = float(rng.uniform(0.0, 0.3))
                data = score_library.load_piece(piece, cache)
                if data is None:
                    skipped.append({"attempt": k - 1, "piece": piece.id, "reason": "cannot be parsed or has no part"})
                    continue
                plan, why = _plan_track(data, seconds, max_sources, sorted(usable[font]), uses, rng)
                if plan is None:
                    skipped.append({"attempt": k - 1, "piece": piece.id, "soundfont": font, "reason": why})
                    continue
                record = _render_track(out, outputs, k - 1, piece, plan, font, fonts[font], usable[font], seconds,
                                       lead_in, room, seed, sample_rate, mixtures, skipped_stems)
                if record is None:
                    skipped.append({"attempt": k - 1, "piece": piece.id, "soundfont": font, "reason": "no stem rendered"})
                    continue
                record.update({
                    "piece": piece.id, "collection": piece.collection, "group": piece.group, "title": piece.title,
                    "work": score_library.work_key(piece, chorales), "split": split,
                    "soundfont": font, "soundfont_file": fonts[font].name, "soundfont_family": family,
                    "room": room, "transposition": plan["shift"], "window_start_quarters": plan["start_q"],
                })
                for c in record["stems"]:
                    uses[c] += 1
                tracks.append(record)
                done += sum(s["seconds"] for s in record["stems"].values())
                if progress:
                    progress(min(done, target), target)
            args = dict(hours=float(hours), seed=seed, sample_rate=sample_rate, track_seconds=[lo, hi],
                        max_sources=max_sources, mixtures=bool(mixtures), soundfonts=list(fonts), classes=class_names,
                        only_splits=kept_splits)
            manifest = _manifest(tracks, skipped, skipped_stems, skipped_presets, usable, fonts, class_names, fractions,
                                 args)
            manifest["skipped"]["other_split_attempts"] = other_split
            return corpus_files.write_manifest(manifest, outputs.add(out / "metadata.json"), t0, done)


def _render_track(out, outputs, index, piece, plan, font, font_path, presets, seconds, lead_in, room, seed,
                  sample_rate, mixtures, skipped_stems) -> dict | None:
    rng = np.random.default_rng([seed, _STREAM, index, 0])
    lines = plan["lines"]
    timing = performance.draw_timing({n: ev for n, (_, ev) in lines.items()}, plan["bpm"], plan["start_q"],
                                     lead_in, seconds, rng)
    stems = {}
    for j, (name, (part_index, events)) in enumerate(lines.items()):
        srng = np.random.default_rng([seed, _STREAM, index, 1 + j])
        cls, octave = plan["assignment"][name]
        shift = plan["shift"] + octave
        pitches = [e[0] + shift for e in events]
        fitting = [p for p in presets[cls] if p.low <= min(pitches) and max(pitches) <= p.high]
        if not fitting:
            skipped_stems.append({"track": index, "class": cls, "reason": "no preset of the class holds the part"})
            continue
        preset = fitting[int(srng.integers(len(fitting)))]
        notes, controls, perf = performance.perform_part(events, shift, cls, timing, seconds, srng,
                                                         sustained=preset.sustained)
        if len(notes) < 2:
            skipped_stems.append({"track": index, "class": cls, "reason": "fewer than two notes in the window"})
            continue
        dry = render.render_notes(font_path, preset.program, notes, sample_rate, seconds=seconds, bank=preset.bank,
                                 controls=controls)
        if float(np.max(np.abs(dry))) < render.SILENCE_PEAK:
            skipped_stems.append({"track": index, "class": cls, "reason": "silent render"})
            continue
        wet, effects = stem_effects.apply_effects(dry, sample_rate, room, srng)
        gain = float(srng.uniform(-GAIN_DB, GAIN_DB))
        audio, loud = loudness.normalise_loudness(wet, sample_rate, TARGET_DB + gain)
        played = [n.pitch for n in notes]
        stems[cls] = (audio, {
            "part": part_index, "part_name": name.split(":", 1)[1], "class": cls,
            "preset": {"bank": preset.bank, "program": preset.program,
                       "name": soundfont_presets.preset_name(font_path, preset), "sustained": preset.sustained},
            "transposition": int(shift), "octave_shift": int(octave),
            "pitch_range": [min(played), max(played)], "register": float(np.median(played)),
            "n_notes": len(notes), "seconds": round(len(audio) / sample_rate, 6),
            "performance": perf, "effects": {**effects, "gain_db": round(gain, 3)}, **loud,
        })
    if not stems:
        return None
    track_id = f"{index:05d}-{_slug(piece.id)}"
    folder = outputs.add(out / track_id)
    try:
        folder.mkdir()
    except OSError as exc:
        raise OutputError(f"Cannot write to {folder}: {exc.strerror or exc}.") from exc
    records = {}
    total = np.zeros(int(round(seconds * sample_rate)), dtype=np.float64)
    for cls, (audio, rec) in stems.items():
        rel = f"{track_id}/{cls}.wav"
        corpus_files.write_wav(outputs.add(out / rel), audio, sample_rate, "PCM_16")
        total += np.clip(np.round(audio.astype(np.float64) * 32768.0), -32768, 32767) / 32768.0  # as written
        records[cls] = {"path": rel, **rec}
    if mixtures:
        corpus_files.write_wav(outputs.add(out / track_id / "mixture.wav"), total.astype(np.float32), sample_rate, "FLOAT")
    return {"track_id": track_id, "seconds": seconds, "timing": timing.params, "stems": records}


def _command(args: dict, fractions: dict) -> str | None:
    """The `sgnsep data music` line that renders this corpus again (None if the split fractions are not the
    command's; soundfonts given as paths are named by key)."""
    if fractions != dict(zip(SPLITS, (0.8, 0.1, 0.1), strict=True)):
        return None
    lo, hi = args["track_seconds"]
    line = (f"sgnsep data music --out DIR --hours {args['hours']!r} --seed {args['seed']} --soundfonts "
            f"{','.join(args['soundfonts'])} --min-seconds {lo!r} --max-seconds {hi!r} --max-sources "
            f"{args['max_sources']} --sample-rate {args['sample_rate']}")
    if args["classes"] != list(instruments.ORCHESTRAL_CLASSES):
        line += f" --classes {','.join(args['classes'])}"
    if args["only_splits"] != list(SPLITS):
        line += f" --only-splits {','.join(args['only_splits'])}"
    return line + (" --mixtures" if args["mixtures"] else "")


def _manifest(tracks, skipped, skipped_stems, skipped_presets, usable, fonts, class_names, fractions, args) -> dict:
    per_class = {c: 0.0 for c in class_names}
    per_family: dict[str, float] = {}
    for t in tracks:
        for c, s in t["stems"].items():
            per_class[c] += s["seconds"]
            per_family[t["soundfont_family"]] = per_family.get(t["soundfont_family"], 0.0) + s["seconds"]
    stem_seconds = sum(per_class.values())
    return {
        "format": FORMAT,
        "version": VERSION,
        "layout": "stems: <track_id>/<class>.wav (the mixture is their sum)",
        "arguments": args,
        "command": _command(args, fractions),
        "classes": class_names,
        "soundfonts": soundfont_presets.describe(fonts),
        "presets": {
            k: {c: [{"bank": p.bank, "program": p.program, "name": soundfont_presets.preset_name(fonts[k], p),
                     "range": [p.low, p.high], "sustained": p.sustained} for p in ps] for c, ps in v.items()}
            for k, v in usable.items()
        },
        "group_weights": GROUP_WEIGHTS,
        "loudness": {"method": "sgnsep.synth active RMS", "target_db": TARGET_DB, "gain_db": [-GAIN_DB, GAIN_DB],
                     "peak_limit": 0.99},
        "split_fractions": fractions,
        "split_rule": "by work (sgnsep.score_library.work_key): sha256('piece:' + work) against the fractions; Bach "
                      "chorales as sgnsep.synth splits them",
        "totals": {
            "tracks": len(tracks),
            "stems": sum(len(t["stems"]) for t in tracks),
            "stem_hours": round(stem_seconds / 3600, 4),
            "track_hours": round(sum(t["seconds"] for t in tracks) / 3600, 4),
            "class_seconds": {c: round(v, 2) for c, v in per_class.items()},
            "family_seconds": {f: round(v, 2) for f, v in sorted(per_family.items())},
            "split_tracks": {s: sum(1 for t in tracks if t["split"] == s) for s in SPLITS},
        },
        "skipped": {"presets": skipped_presets, "attempts": skipped, "stems": skipped_stems},
        "tracks": tracks,
    }


def read_manifest(out_dir: str | os.PathLike) -> dict:
    path = Path(out_dir) / "metadata.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path} is missing or unreadable: is {out_dir} a music corpus?") from exc
    if data.get("format") != FORMAT:
        raise UsageError(f"{path} is not a music corpus manifest (format {data.get('format')!r}).")
    return data
