"""`sgnsep data chorales`: real four-part music in the "stems" layout that ``sgnsep eval`` reads
(``out_dir/<track_id>/<class>.flac``): each track is one chorale of one split (test by default), 2..4 of its
voices in one tempo and one time window, each voice transposed by whole octaves into the range of a different
instrument, all from one soundfont.
"""

from __future__ import annotations

import os
import time
import zlib
from pathlib import Path

import numpy as np

from sgnsep.core import folder_lock
from sgnsep.core.atomic_write import NewOutputs
from sgnsep.core.errors import OutputError, UsageError
from sgnsep.datasets.splits import DEFAULT_SPLIT_FRACTIONS, SPLITS, chorale_split
from sgnsep.synth import render, scores
from sgnsep.synth.corpus_files import (
    STEMS_FORMAT, first_other_file, own_metadata, provenance, write_manifest, write_stem,
)
from sgnsep.synth.instruments import INSTRUMENTS, assign_instruments, resolve_classes
from sgnsep.synth.loudness import normalise_loudness
from sgnsep.synth.render import SILENCE_PEAK
from sgnsep.synth.scores import CHORALE_TEMPO_BPM, FERMATA_FACTOR, Note, VOICES, chorale_ids, chorale_time_map
from sgnsep.synth.soundfonts import soundfont_family, stems_soundfonts


STEMS_VERSION = 1


STEMS_TARGET_DB = -23.0  # the corpus's loudness target


STEMS_FORMATS = {"flac": ("PCM_16", "PCM_24"), "wav": ("PCM_16", "FLOAT")}


def _clear_chorale_folder(out: Path, overwrite: bool) -> None:
    """A chorale set needs a folder of its own (the evaluator reads every folder in it as a track): new, empty,
    or (``overwrite``) one that holds a set rendered before, whose files are removed first (the manifest
    first, so that a stop half-way never leaves it describing missing tracks). Other files are never removed:
    a folder that holds any is refused."""
    if not out.is_dir():
        return
    meta_path = out / "metadata.json"
    old = own_metadata(meta_path, STEMS_FORMAT)
    if old is None or not overwrite:
        first = first_other_file(out)
        if first is None:
            return
        what = "a chorale set rendered before (metadata.json)" if old is not None else f"files ({first})"
        raise OutputError(
            f"{out} is not an empty directory: it holds {what}.",
            hint="Pass --overwrite to replace that set, or render into a new or empty directory."
            if old is not None
            else "The evaluator reads every folder in it as a track: render into a new or empty directory "
            "(--overwrite replaces only a chorale set sgnsep rendered there).",
        )
    inside = out.resolve()
    listed = set()
    for track in old.get("tracks", []) if isinstance(old.get("tracks"), list) else []:
        stems = track.get("stems") if isinstance(track, dict) else None
        for stem in (stems.values() if isinstance(stems, dict) else []):
            rel = stem.get("path") if isinstance(stem, dict) else None
            if isinstance(rel, str):
                path = (out / rel).resolve()
                if path.parent.parent == inside:  # <track>/<class>.<fmt>, nothing outside the set
                    listed.add(path)
    stray = first_other_file(out, skip=lambda p: p.resolve() in listed or p == meta_path)
    if stray is not None:
        raise OutputError(
            f"{out} holds files that are not part of its chorale set ({stray}); the evaluator would read them "
            "as tracks.", hint="Move them away, or render into a new or empty directory.",
        )
    try:
        meta_path.unlink()
        for path in sorted(listed):
            path.unlink(missing_ok=True)
        for folder in sorted({p.parent for p in listed}):
            try:
                folder.rmdir()
            except OSError:
                pass
    except OSError as exc:
        raise OutputError(f"Cannot remove the previous set in {out} ({exc.strerror or exc}).") from None


def render_chorale_stems(
    out_dir: str | os.PathLike,
    *,
    tracks: int,
    num_sources: int,
    seconds: float = 6.0,
    sample_rate: int = 11025,
    seed: int = 0,
    classes: list[str] | None = None,
    soundfonts: list[str] | None = None,
    split: str = "test",
    subtype: str = "PCM_16",
    fmt: str = "flac",
    overwrite: bool = False,
) -> dict:
    """Render an evaluation set of real polyphonic music in the stems layout and return its manifest::

        out_dir/<track_id>/<class>.<fmt>    mono, ``sample_rate`` Hz, one file per voice (the evaluator sums them)
        out_dir/metadata.json               format "sgnsep-chorale-stems", version 1

    Each track is ONE Bach chorale of ``split`` (decided by :func:`chorale_split` with the corpus's default
    fractions :data:`DEFAULT_SPLIT_FRACTIONS`, so a "test" set never holds a chorale a default corpus trains
    on); within a set every chorale is used once while unused ones remain. ``num_sources`` (1..4) of its four
    voices, drawn at random, sound together: one tempo (quarter = 56..96 bpm), fermatas held in every voice
    alike, one ``seconds``-long window starting on a beat where every chosen voice starts a note (after a
    0..0.25 s lead-in). Each voice is played by a different class of ``classes`` (all of :data:`INSTRUMENTS`
    when None) whose range holds the voice's notes in the window after a transposition by whole octaves (the
    smallest that fits), so the harmony stays Bach's. The draw favours small transpositions and the classes
    used least so far in the set. One soundfont per track: a family at random, then one of its soundfonts
    (default: those of :data:`STEMS_SOUNDFONTS` that are installed, pretty_midi's TimGM6mb when Debian's is
    missing); (class, soundfont) pairs that fail :func:`probe_preset` are never drawn. Every stem is
    loudness-normalised like the corpus (-23 dBFS active RMS, peak at most 0.99).

    A track whose assignment cannot be made, whose chorale cannot be parsed, or one of whose stems renders
    silent is skipped and counted (``skipped``); the next chorale is tried, so ``tracks`` tracks are written
    unless the split runs out. Everything random comes from ``numpy.random.default_rng`` seeded by ``seed``,
    ``split``, ``num_sources`` and the attempt number: the same arguments give byte-identical files.
    ``out_dir`` must be empty or absent (stale track folders would join the set); with ``overwrite`` it may
    hold a set rendered before, whose files (and only those) are removed first. Returns the content of
    metadata.json plus ``"timing"``.
    """
    class_names = resolve_classes(classes)
    if split not in SPLITS:
        raise UsageError(f"split must be one of {', '.join(SPLITS)}, got '{split}'.")
    if int(tracks) < 1:
        raise UsageError(f"tracks must be at least 1, got {tracks}.")
    if not 1 <= int(num_sources) <= len(VOICES):
        raise UsageError(f"num_sources must be between 1 and {len(VOICES)} (a chorale has four voices).")
    if int(num_sources) > len(class_names):
        raise UsageError(f"num_sources={num_sources} needs as many classes; {len(class_names)} given.")
    if not (0.5 <= float(seconds) <= 600):
        raise UsageError(f"seconds must be between 0.5 and 600, got {seconds}.")
    if not (4000 <= int(sample_rate) <= 96000):
        raise UsageError(f"sample_rate must be between 4000 and 96000 Hz, got {sample_rate}.")
    if int(seed) < 0:
        raise UsageError(f"seed must be a non-negative integer, got {seed}.")
    if fmt not in STEMS_FORMATS:
        raise UsageError(f"fmt must be one of {', '.join(STEMS_FORMATS)}, got '{fmt}'.")
    if subtype not in STEMS_FORMATS[fmt]:
        raise UsageError(f"subtype for {fmt} must be one of {', '.join(STEMS_FORMATS[fmt])}, got '{subtype}'.")
    fonts = stems_soundfonts(soundfonts)
    tracks, num_sources, seconds, sample_rate = int(tracks), int(num_sources), float(seconds), int(sample_rate)
    fractions = dict(DEFAULT_SPLIT_FRACTIONS)

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out} is not an empty directory (it is a file).", hint="Render into a new or empty directory.")
    # One render at a time in the folder (sgnsep/folder_lock.py), checked and cleared under the lock.
    with folder_lock.hold(out, option="--out", what="corpus folder"):
        with NewOutputs() as outputs:  # a stopped run takes away what it wrote: rerun it into the same folder
            _clear_chorale_folder(out, overwrite)
            try:
                outputs.folder(out)
            except OSError as exc:
                raise OutputError(f"Cannot write to {out}: {exc.strerror or exc}.") from exc

            t0 = time.perf_counter()
            usable: dict[str, list[str]] = {}  # soundfont -> classes it renders
            skipped_presets = []
            for key, path in fonts.items():
                usable[key] = []
                for c in class_names:
                    why = render.probe_preset(path, INSTRUMENTS[c], sample_rate)
                    if why is None:
                        usable[key].append(c)
                    else:
                        skipped_presets.append({"class": c, "soundfont": key, "reason": why})
            fonts_ok = [k for k in fonts if len(usable[k]) >= num_sources]
            if not fonts_ok:
                raise UsageError(f"No soundfont renders {num_sources} of the classes {', '.join(class_names)}.")

            pool = [cid for cid in dict.fromkeys(chorale_ids()) if chorale_split(cid, fractions) == split]
            if not pool:
                raise UsageError(f"No chorale falls in the '{split}' split.")
            base = [int(seed), zlib.crc32(b"chorale-stems"), zlib.crc32(split.encode()), num_sources]
            order = [pool[int(j)] for j in np.random.default_rng(base).permutation(len(pool))]
            max_attempts = max(tracks, len(pool)) * 3

            uses: dict[str, int] = {c: 0 for c in class_names}
            records, skipped_tracks = [], []
            audio_seconds = 0.0
            attempt = 0
            while len(records) < tracks and attempt < max_attempts:
                cid = order[attempt % len(order)]
                rng = np.random.default_rng([*base, attempt])
                attempt += 1
                voices = scores.load_chorales([cid])[cid]
                if not voices:
                    skipped_tracks.append({"chorale": cid, "reason": "chorale cannot be parsed"})
                    continue
                families = sorted({soundfont_family(k, fonts[k]) for k in fonts_ok})
                family = families[int(rng.integers(len(families)))]
                in_family = [k for k in fonts_ok if soundfont_family(k, fonts[k]) == family]
                font_key = in_family[int(rng.integers(len(in_family)))]
                chosen = [VOICES[int(i)] for i in sorted(rng.choice(len(VOICES), num_sources, replace=False))]
                bpm = float(rng.uniform(*CHORALE_TEMPO_BPM))
                fermata_factor = float(rng.uniform(*FERMATA_FACTOR))
                to_seconds = chorale_time_map(voices, 60.0 / bpm, fermata_factor)
                total = to_seconds(max(on + dur for events in voices.values() for _, on, dur, _ in events))
                common = sorted(set.intersection(*({e[1] for e in voices[v]} for v in chosen)))
                starts = [q for q in common if total - to_seconds(q) >= seconds] or common[:1] or [0.0]
                start_q = float(starts[int(rng.integers(len(starts)))])
                lead_in = float(rng.uniform(0.0, 0.25))
                offset = to_seconds(start_q) - lead_in
                lines: dict[str, list[tuple[int, float, float]]] = {}
                for v in chosen:
                    lines[v] = []
                    for pitch, on, dur, _ in voices[v]:
                        t = to_seconds(on) - offset
                        if on < start_q - 1e-9:
                            continue
                        if t >= seconds:
                            break
                        lines[v].append((int(pitch), t, to_seconds(on + dur) - to_seconds(on)))
                if any(len(lines[v]) < 2 for v in chosen):
                    skipped_tracks.append({"chorale": cid, "reason": "a voice has fewer than two notes in the window"})
                    continue
                pitches_by_voice = {v: [p for p, _, _ in lines[v]] for v in chosen}
                assignment = assign_instruments(pitches_by_voice, usable[font_key], uses, rng)
                if assignment is None:
                    skipped_tracks.append(
                        {"chorale": cid, "soundfont": font_key, "reason": "no distinct classes fit the voices' ranges"}
                    )
                    continue
                stems = {}
                silent = None
                for v in chosen:
                    c, shift = assignment[v]
                    inst = INSTRUMENTS[c]
                    base_velocity = int(rng.integers(60, 101))
                    articulation = 0.94 if inst.sustained else 1.0
                    notes = [
                        Note(
                            p + shift,
                            round(t, 6),
                            round(max(length * articulation, 0.03), 6),
                            int(np.clip(round(base_velocity + rng.normal(0.0, 5.0)), 20, 127)),
                        )
                        for p, t, length in lines[v]
                    ]
                    audio = render.render_notes(fonts[font_key], inst.program, notes, sample_rate, seconds=seconds)
                    if float(np.max(np.abs(audio))) < SILENCE_PEAK:
                        silent = c
                    stems[v] = (c, shift, notes, audio)
                if silent is not None:
                    skipped_tracks.append(
                        {"chorale": cid, "soundfont": font_key, "class": silent, "reason": "silent render"}
                    )
                    continue
                track_id = f"{len(records):03d}_{cid.rsplit('/', 1)[-1]}"
                try:
                    outputs.add(out / track_id).mkdir()
                except OSError as exc:
                    raise OutputError(f"Cannot write to {out / track_id}: {exc.strerror or exc}.") from exc
                stem_records = {}
                for v in chosen:
                    c, shift, notes, audio = stems[v]
                    inst = INSTRUMENTS[c]
                    audio, loud = normalise_loudness(audio, sample_rate, STEMS_TARGET_DB)
                    rel = f"{track_id}/{c}.{fmt}"
                    write_stem(outputs.add(out / rel), audio, sample_rate, fmt, subtype)
                    audio_seconds += len(audio) / sample_rate
                    pitches = [n.pitch for n in notes]
                    stem_records[c] = {
                        "path": rel,
                        "voice": v,
                        "program": inst.program,
                        "gm_name": inst.gm_name,
                        "transposition": int(shift),
                        "pitch_range": [min(pitches), max(pitches)],
                        "n_notes": len(notes),
                        **loud,
                        "notes": [[n.pitch, n.start, n.duration, n.velocity] for n in notes],
                    }
                    uses[c] += 1
                records.append(
                    {
                        "track_id": track_id,
                        "chorale": cid,
                        "score_id": "chorale:" + cid,
                        "split": chorale_split(cid, fractions),
                        "voices": {v: assignment[v][0] for v in chosen},
                        "transpositions": {v: int(assignment[v][1]) for v in chosen},
                        "tempo_bpm": round(bpm, 3),
                        "fermata_factor": round(fermata_factor, 3),
                        "window_start_quarters": start_q,
                        "window_start_seconds": round(to_seconds(start_q), 6),
                        "lead_in_seconds": round(lead_in, 6),
                        "seconds": round(seconds, 6),
                        "soundfont": font_key,
                        "soundfont_file": fonts[font_key].name,
                        "soundfont_family": soundfont_family(font_key, fonts[font_key]),
                        "stems": stem_records,
                    }
                )

            manifest = {
                "format": STEMS_FORMAT,
                "version": STEMS_VERSION,
                "layout": f"stems: <track_id>/<class>.{fmt} (the mixture is their sum)",
                "sample_rate": sample_rate,
                "format_audio": fmt,
                "subtype": subtype,
                "seconds": seconds,
                "seed": int(seed),
                "split": split,
                "num_sources": num_sources,
                "tracks_requested": tracks,
                "n_tracks": len(records),
                "classes": class_names,
                **provenance(class_names, fonts, STEMS_TARGET_DB),
                "split_fractions": fractions,
                "split_rule": (
                    "a chorale's split is fixed by sha256('chorale:' + id) against the fractions (as in the solo corpus); "
                    "every track is one chorale of the requested split"
                ),
                "chorales": sorted({r["chorale"] for r in records}),
                "class_counts": {c: n for c, n in uses.items()},
                "skipped": {
                    "presets": skipped_presets,
                    "tracks": skipped_tracks,
                    "n_tracks": len(skipped_tracks),
                    "n_silent": sum(1 for s in skipped_tracks if s["reason"] == "silent render"),
                },
                "tracks": records,
            }
            return write_manifest(manifest, outputs.add(out / "metadata.json"), t0, audio_seconds)
