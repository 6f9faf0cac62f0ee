"""`sgnsep data synth`: an offline corpus of solo instrument recordings in the "solos" layout::

    out_dir/<class>/<clip_id>.wav      mono, ``sample_rate`` Hz, 16-bit PCM (or 32-bit float)
    out_dir/metadata.json              one record per clip, the split of every clip, how it was made
    out_dir/chorale_notes.json         cache of the note lists extracted from music21's Bach chorales

One clip: score -> notes in the instrument's range -> tinysoundfont render -> loudness normalisation -> WAV.
Clips alternate between chorale voices and random melodies by default (``score_source="mixed"``). A clip
that renders silent is skipped and counted (``skipped.clips``), never fatal.

Everything random is drawn from ``numpy.random.default_rng([seed, crc32(class), clip_index])``, so the same
arguments give byte-identical WAV files and metadata.json, and a clip does not change when other classes are
added or removed. Splits are disjoint by score (:func:`sgnsep.datasets.splits.chorale_split`); each random
melody is generated from its own 63-bit seed and used by one clip only.
"""

from __future__ import annotations

import os
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from sgnsep.core import folder_lock
from sgnsep.core.atomic_write import NewOutputs
from sgnsep.core.errors import OutputError, UsageError
from sgnsep.datasets.splits import SPLITS, chorale_split, resolve_splits, split_counts
from sgnsep.synth import render, scores
from sgnsep.synth.corpus_files import (
    METADATA_FORMAT, own_metadata, provenance, refuse_foreign_corpus_folder, write_manifest, write_wav,
)
from sgnsep.synth.instruments import INSTRUMENTS, resolve_classes
from sgnsep.synth.loudness import normalise_loudness
from sgnsep.synth.render import SILENCE_PEAK
from sgnsep.synth.scores import chorale_clip, chorale_ids, random_melody
from sgnsep.synth.soundfonts import resolve_soundfonts, soundfont_family


METADATA_VERSION = 1


def synthesize_corpus(
    out_dir: str | os.PathLike,
    *,
    classes: Iterable[str] | None = None,
    soundfonts: Iterable[str | os.PathLike] | None = None,
    clips_per_class: int = 50,
    clip_seconds: float = 10.0,
    sample_rate: int = 11025,
    seed: int = 0,
    score_source: str = "mixed",
    splits: dict[str, float] | Sequence[float] = (0.8, 0.1, 0.1),
    target_db: float = -23.0,
    subtype: str = "PCM_16",
    store_notes: bool = True,
    chorale_cache: str | os.PathLike | None | bool = True,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Render a corpus of solo clips into ``out_dir`` and return its manifest.

    ``classes``: names from :data:`INSTRUMENTS` (all when None). ``soundfonts``: keys of
    :data:`SOUNDFONT_FILES` or paths (all allowed ones found when None, pretty_midi's TimGM6mb only when
    Debian's is missing); each clip draws a soundfont family at random, then a soundfont of that family.
    ``score_source``: ``"mixed"`` (even clip indices chorales, odd random melodies), ``"chorales"`` or
    ``"random"``. ``splits``: train/val/test fractions (dict or 3-tuple). ``subtype``: ``"PCM_16"`` or
    ``"FLOAT"``. ``chorale_cache``: True for ``out_dir/chorale_notes.json``, a path, or False/None for none.
    ``progress(done, total)`` is called after each clip.

    Returns the content of ``out_dir/metadata.json`` plus a ``"timing"`` entry (left out of the file so that
    reruns are byte-identical). Silent or missing presets are skipped and counted in ``"skipped"``.
    """
    class_names = resolve_classes(classes)
    if score_source not in ("mixed", "chorales", "random"):
        raise UsageError(f"score_source must be 'mixed', 'chorales' or 'random', got '{score_source}'.")
    if int(clips_per_class) < 1:
        raise UsageError(f"clips_per_class must be at least 1, got {clips_per_class}.")
    if not (0.5 <= float(clip_seconds) <= 600):
        raise UsageError(f"clip_seconds must be between 0.5 and 600, got {clip_seconds}.")
    if not (4000 <= int(sample_rate) <= 96000):
        raise UsageError(f"sample_rate must be between 4000 and 96000 Hz, got {sample_rate}.")
    if int(seed) < 0:
        raise UsageError(f"seed must be a non-negative integer, got {seed}.")
    if subtype not in ("PCM_16", "FLOAT"):
        raise UsageError(f"subtype must be 'PCM_16' or 'FLOAT', got '{subtype}'.")
    fractions = resolve_splits(splits)
    fonts = resolve_soundfonts(soundfonts)
    clips_per_class, clip_seconds, sample_rate = int(clips_per_class), float(clip_seconds), int(sample_rate)

    out = Path(out_dir)
    meta_path = out / "metadata.json"
    # One render at a time in a corpus folder (sgnsep/folder_lock.py): two would write the same clip names.
    with folder_lock.hold(out, option="--out", what="corpus folder"):
        refuse_foreign_corpus_folder(out, METADATA_FORMAT, overwrite)
        with NewOutputs() as outputs:  # a stopped run takes away what it wrote: rerun it into the same folder
            try:
                outputs.folder(out)
                if meta_path.exists():
                    # overwrite: the old manifest goes first, so that a stopped run can never leave it describing
                    # new clips under the old names; then the clips of the previous corpus, if sgnsep rendered it
                    # (the clips a metadata.json of the user's lists are the user's)
                    old = own_metadata(meta_path, METADATA_FORMAT)
                    meta_path.unlink()
                    try:
                        inside = out.resolve()
                        for clip in (old or {}).get("clips", []):
                            old = (out / clip["path"]).resolve()
                            if old.parent.parent == inside and old.suffix == ".wav":  # <class>/<clip>.wav, nothing else
                                old.unlink(missing_ok=True)
                    except (ValueError, KeyError, TypeError, AttributeError):
                        pass
                for c in class_names:
                    outputs.folder(out / c)
            except OSError as exc:
                raise OutputError(f"Cannot write to {out}: {exc.strerror or exc}.") from exc
            cache_path = outputs.add(out / "chorale_notes.json") if chorale_cache is True else (chorale_cache or None)

            t0 = time.perf_counter()
            # Which (class, soundfont) pairs render at all.
            usable: dict[str, list[str]] = {}
            skipped_presets = []
            for c in class_names:
                usable[c] = []
                for key, path in fonts.items():
                    why = render.probe_preset(path, INSTRUMENTS[c], sample_rate)
                    if why is None:
                        usable[c].append(key)
                    else:
                        skipped_presets.append({"class": c, "soundfont": key, "reason": why})

            # Plan every clip first (cheap), so the chorales needed can be parsed in one go.
            plans = []
            for c in class_names:
                counts = split_counts(clips_per_class, fractions)
                order = [s for s in SPLITS for _ in range(counts[s])]
                for i, split in enumerate(order):
                    rng = np.random.default_rng([int(seed), zlib.crc32(c.encode()), i])
                    if score_source == "mixed":
                        source = "chorale" if i % 2 == 0 else "random"
                    else:
                        source = "chorale" if score_source == "chorales" else "random"
                    plans.append({"class": c, "index": i, "split": split, "source": source, "rng": rng})

            pools: dict[str, list[str]] = {s: [] for s in SPLITS}
            if any(p["source"] == "chorale" for p in plans):
                for cid in chorale_ids():
                    pools[chorale_split(cid, fractions)].append(cid)
            for p in plans:
                if p["source"] == "chorale" and not pools[p["split"]]:
                    p["source"] = "random"  # documented fallback: no chorale falls in a tiny split
                if p["source"] == "chorale":
                    pool = pools[p["split"]]
                    p["chorale_candidates"] = [pool[int(j)] for j in p["rng"].permutation(len(pool))[:8]]
                else:
                    p["melody_seed"] = int(p["rng"].integers(0, 2**63 - 1))
            needed = [p["chorale_candidates"][0] for p in plans if p["source"] == "chorale"]
            chorales = scores.load_chorales(needed, cache_path) if needed else {}

            records = []
            skipped_clips = []
            audio_seconds = 0.0
            for done, p in enumerate(plans, start=1):
                c, i, rng = p["class"], p["index"], p["rng"]
                inst = INSTRUMENTS[c]
                clip_id = f"{c}_{i:05d}"
                fonts_ok = usable[c]
                if not fonts_ok:
                    skipped_clips.append({"clip_id": clip_id, "reason": "no soundfont renders this class"})
                    if progress:
                        progress(done, len(plans))
                    continue
                # A family first, then one of its soundfonts, so that the three FluidR3-derived soundfonts do not
                # outweigh TimGM6mb.
                families = sorted({soundfont_family(k, fonts[k]) for k in fonts_ok})
                family = families[int(rng.integers(len(families)))]
                in_family = [k for k in fonts_ok if soundfont_family(k, fonts[k]) == family]
                font_key = in_family[int(rng.integers(len(in_family)))]
                if p["source"] == "chorale":
                    voices = None
                    for cid in p["chorale_candidates"]:
                        voices = chorales.get(cid) if cid in chorales else scores.load_chorales([cid], cache_path)[cid]
                        if voices:
                            break
                    if not voices:  # (never seen) none of 8 chorales usable: a random melody instead
                        p["source"], p["melody_seed"] = "random", int(rng.integers(0, 2**63 - 1))
                if p["source"] == "chorale":
                    notes, info = chorale_clip(voices, inst, rng, clip_seconds)
                    score = {"source": "chorale", "id": f"chorale:{cid}", "chorale": cid, **info}
                else:
                    notes, info = random_melody(inst, p["melody_seed"], clip_seconds)
                    score = {"source": "random", "id": f"random:{p['melody_seed']}", **info}
                audio = render.render_notes(fonts[font_key], inst.program, notes, sample_rate, seconds=clip_seconds)
                if float(np.max(np.abs(audio))) < SILENCE_PEAK:
                    skipped_clips.append({"clip_id": clip_id, "soundfont": font_key, "reason": "silent render"})
                    if progress:
                        progress(done, len(plans))
                    continue
                audio, loud = normalise_loudness(audio, sample_rate, target_db)
                rel = f"{c}/{clip_id}.wav"
                write_wav(outputs.add(out / rel), audio, sample_rate, subtype)
                audio_seconds += len(audio) / sample_rate
                pitches = [n.pitch for n in notes]
                rec = {
                    "clip_id": clip_id,
                    "path": rel,
                    "class": c,
                    "split": p["split"],
                    "soundfont": font_key,
                    "soundfont_file": fonts[font_key].name,
                    "soundfont_family": soundfont_family(font_key, fonts[font_key]),
                    "program": inst.program,
                    "gm_name": inst.gm_name,
                    "score": score,
                    "tempo_bpm": score["tempo_bpm"],
                    "transposition": score["transposition"],
                    "pitch_range": [min(pitches), max(pitches)],
                    "n_notes": len(notes),
                    "seconds": round(len(audio) / sample_rate, 6),
                    **loud,
                }
                if store_notes:
                    rec["notes"] = [[n.pitch, n.start, n.duration, n.velocity] for n in notes]
                records.append(rec)
                if progress:
                    progress(done, len(plans))

            split_ids = {s: [r["clip_id"] for r in records if r["split"] == s] for s in SPLITS}
            split_scores = {s: sorted({r["score"]["id"] for r in records if r["split"] == s}) for s in SPLITS}
            manifest = {
                "format": METADATA_FORMAT,
                "version": METADATA_VERSION,
                "layout": "solos: <class>/<clip_id>.wav",
                "sample_rate": sample_rate,
                "subtype": subtype,
                "clip_seconds": clip_seconds,
                "seed": int(seed),
                "score_source": score_source,
                "classes": class_names,
                **provenance(class_names, fonts, float(target_db)),
                "split_fractions": fractions,
                "split_rule": (
                    "disjoint by score: a chorale's split is fixed by sha256('chorale:' + id) against the fractions; "
                    "each random melody has its own seed and one clip; per class round(n * fraction) clips per split"
                ),
                "splits": split_ids,
                "split_scores": split_scores,
                "skipped": {
                    "presets": skipped_presets,
                    "clips": skipped_clips,
                    "n_clips": len(skipped_clips),
                },
                "clips": records,
            }
            return write_manifest(manifest, outputs.add(meta_path), t0, audio_seconds)


#: The offline corpus that `sgnsep train --dataset synth` renders on first use.
OFFLINE_CORPUS = {"clips_per_class": 40, "clip_seconds": 10.0, "seed": 0}


def ensure_offline_corpus(
    data_dir: str | Path, *, wait: bool = False, on_render=None, option: str = "data_dir"
) -> bool:
    """Render :data:`OFFLINE_CORPUS` into ``data_dir`` unless a corpus is there already; True if it rendered.

    The folder is locked while rendering, so another process that renders there is refused, or with ``wait``
    (the processes of one torchrun) waits and then finds the corpus rendered. ``on_render(data_dir)`` is called
    just before rendering starts (e.g. to say that it takes a minute); ``option`` names the folder in errors."""
    data_dir = Path(data_dir)
    if (data_dir / "metadata.json").is_file():
        return False
    with folder_lock.hold(data_dir, option=option, what="corpus folder", wait=wait):
        if (data_dir / "metadata.json").is_file():
            return False
        if on_render is not None:
            on_render(data_dir)
        synthesize_corpus(data_dir, **OFFLINE_CORPUS)
    return True
