"""The notes a clip plays.

* ``"chorales"``: one voice (soprano, alto, tenor or bass) of one of music21's 371 four-part Bach chorales
  (Riemenschneider numbering), durations from the score, fermatas held longer, a random tempo (quarter =
  56..96 bpm), a random window of the voice, transposed by semitones and octaves into the instrument's range.
  music21's string quartets are reserved for evaluation and never read.
* ``"random"``: a random but musical melody: a random walk on a scale (major, minors, modes, pentatonics)
  inside a 14..24 semitone window of the instrument's range, with bar-aligned varied rhythms, phrase-end
  rests, hairpin dynamics and accents (velocity), legato or staccato phrases, a random tempo.

music21 is imported inside the functions that need it, so importing this module is cheap.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from sgnsep.core.atomic_write import write_text_atomic
from sgnsep.core.errors import UsageError
from sgnsep.synth.instruments import Instrument


class Note(NamedTuple):
    """One note: MIDI pitch, onset and duration in seconds, MIDI velocity (1..127)."""

    pitch: int
    start: float
    duration: float
    velocity: int


VOICES = ("soprano", "alto", "tenor", "bass")


# Typical sounding ranges of the chorale voices, used to pick the voice closest to an instrument's tessitura.
_VOICE_CENTRES = {"soprano": 69.0, "alto": 63.0, "tenor": 57.0, "bass": 48.0}


CHORALE_TEMPO_BPM = (56.0, 96.0)


RANDOM_TEMPO_BPM = (66.0, 144.0)


FERMATA_FACTOR = (1.5, 2.0)


_CHORALES_MEMO: dict[str, dict | None] = {}  # per-process cache: chorale id -> voices (None if unusable)


def chorale_ids() -> list[str]:
    """The 371 four-part Bach chorales of music21's corpus (Riemenschneider order), e.g. ``"bach/bwv269"``."""
    from music21 import corpus

    ids = list(corpus.chorales.Iterator(numberingSystem="riemenschneider", returnType="filename"))
    return [str(i) for i in ids if str(i).startswith("bach/")]


def _extract_chorale(chorale_id: str) -> dict | None:
    """Parse one chorale into ``{voice: [[pitch, onset_quarters, duration_quarters, fermata], ...]}``."""
    from music21 import corpus, expressions

    if not chorale_id.startswith("bach/bwv"):  # never read anything else (the string quartets are reserved)
        raise UsageError(f"'{chorale_id}' is not a Bach chorale of music21's corpus.")
    try:
        score = corpus.parse(chorale_id)
    except Exception:  # noqa: BLE001  (music21 raises many kinds; an unparsable file is unusable, not fatal)
        return None
    parts = list(score.parts)
    by_name = {}
    for part in parts:
        name = (part.partName or part.id or "").strip().lower()
        for voice in VOICES:
            if name.startswith(voice) and voice not in by_name:
                by_name[voice] = part
    if len(by_name) != 4:
        if len(parts) < 4:
            return None
        by_name = dict(zip(VOICES, parts[:4], strict=False))  # humdrum-derived files: spines listed top to bottom
    voices = {}
    for voice, part in by_name.items():
        events = []
        part.stripTies(inPlace=True)  # in place: a copy costs most of the parse time
        for n in part.flatten().notes:
            ql = float(n.duration.quarterLength)
            if ql <= 0:  # grace notes
                continue
            if n.isChord:
                midis = [p.midi for p in n.pitches]
                pitch = max(midis) if voice in ("soprano", "alto") else min(midis)
            else:
                pitch = n.pitch.midi
            fermata = int(any(isinstance(e, expressions.Fermata) for e in n.expressions))
            events.append([int(pitch), round(float(n.offset), 6), round(ql, 6), fermata])
        events.sort(key=lambda e: (e[1], -e[0]))
        mono = []  # enforce one note at a time
        for e in events:
            if mono and e[1] <= mono[-1][1] + 1e-9:
                continue
            if mono and mono[-1][1] + mono[-1][2] > e[1]:
                mono[-1][2] = round(e[1] - mono[-1][1], 6)
            mono.append(e)
        if len(mono) < 4:
            return None
        voices[voice] = mono
    return voices


def load_chorales(ids: Iterable[str], cache_path: str | os.PathLike | None = None) -> dict[str, dict | None]:
    """Note lists of the given chorales, parsed with music21 once and cached.

    Parsing takes about 0.1 s a chorale. Results are kept per process and, when ``cache_path`` is given, in a
    JSON file (read if present, rewritten with the chorales asked for added). Unusable chorales map to None.
    """
    import music21

    ids = list(dict.fromkeys(ids))
    file_cache: dict = {}
    version = str(music21.__version__)
    if cache_path is not None and Path(cache_path).is_file():
        try:
            data = json.loads(Path(cache_path).read_text())
            if data.get("music21_version") == version:
                file_cache = data.get("chorales", {})
        except (OSError, ValueError):
            file_cache = {}
    out = {}
    for cid in ids:
        if cid in _CHORALES_MEMO:
            out[cid] = _CHORALES_MEMO[cid]
        elif cid in file_cache:
            out[cid] = _CHORALES_MEMO[cid] = file_cache[cid]
        else:
            out[cid] = _CHORALES_MEMO[cid] = _extract_chorale(cid)
    if cache_path is not None and any(cid not in file_cache for cid in ids):
        merged = dict(file_cache)
        merged.update(out)
        payload = {"music21_version": version, "chorales": dict(sorted(merged.items()))}
        write_text_atomic(Path(cache_path), json.dumps(payload, sort_keys=True, separators=(",", ":")))
    return out


def fit_to_range(pitches: Sequence[int], low: int, high: int, rng: np.random.Generator) -> int:
    """A transposition (semitones) that puts all ``pitches`` inside ``[low, high]``.

    Draws a semitone shift in -6..+6 (so the key changes), then the octave that puts the line's centre
    closest to a random target inside the range (Beta(2, 2)-distributed, so lines land anywhere in the
    instrument's range but in the middle register more often). Shifts
    nearer zero are tried first when the drawn one does not fit. If the line is wider than the range, the
    shift that leaves the fewest notes outside is returned; :func:`_fold_into_range` then moves those
    notes by octaves.
    """
    lo, hi = min(pitches), max(pitches)
    span = hi - lo
    first = int(rng.integers(-6, 7))
    # Beta(2, 2): anywhere in the range, the middle register more often than the extremes.
    target = low + span / 2.0 + float(rng.beta(2.0, 2.0)) * max(0, high - low - span)
    shifts = [first] + sorted((s for s in range(-6, 7) if s != first), key=lambda s: (abs(s), s))
    centre = (lo + hi) / 2.0
    for s in shifts:
        fits = [s + 12 * o for o in range(-8, 9) if low <= lo + s + 12 * o and hi + s + 12 * o <= high]
        if fits:
            return min(fits, key=lambda t: (abs(centre + t - target), t))
    best = min(
        range(-96, 97),
        key=lambda t: (sum(1 for p in pitches if not low <= p + t <= high), abs(centre + t - (low + high) / 2), t),
    )
    return best


def _fold_into_range(pitch: int, low: int, high: int) -> int:
    while pitch < low:
        pitch += 12
    while pitch > high:
        pitch -= 12
    return max(low, pitch)  # only when the range is narrower than an octave


def chorale_clip(
    voices: dict,
    instrument: Instrument,
    rng: np.random.Generator,
    seconds: float,
    *,
    voice: str | None = None,
) -> tuple[list[Note], dict]:
    """A ``seconds``-long window of one chorale voice, in tempo, transposed into ``instrument``'s range.

    ``voices`` is one entry of :func:`load_chorales`. Returns the notes (onsets relative to the clip start,
    notes that start before its end kept whole) and a dict describing the choices made.
    """
    centre = (instrument.low + instrument.high) / 2.0
    if voice is None:
        names = [v for v in VOICES if v in voices]
        w = np.array([math.exp(-abs(_VOICE_CENTRES[v] - centre) / 12.0) for v in names])
        voice = names[int(rng.choice(len(names), p=w / w.sum()))]
    events = voices[voice]
    bpm = float(rng.uniform(*CHORALE_TEMPO_BPM))
    spb = 60.0 / bpm
    fermata_factor = float(rng.uniform(*FERMATA_FACTOR))
    base_velocity = int(rng.integers(60, 101))
    # Quarter-length offsets to seconds, holding fermatas longer (everything after them moves later).
    timed = []  # (pitch, start_s, dur_s, onset_quarters)
    extra = 0.0
    for pitch, onset, dur, fermata in events:
        start = onset * spb + extra
        length = dur * spb
        if fermata:
            extra += length * (fermata_factor - 1.0)
            length *= fermata_factor
        timed.append((pitch, start, length, onset))
    total = timed[-1][1] + timed[-1][2]
    starts = [i for i, t in enumerate(timed) if total - t[1] >= seconds]
    first = int(rng.choice(starts)) if starts else 0
    lead_in = float(rng.uniform(0.0, 0.25))
    notes: list[tuple[int, float, float]] = []
    offset = timed[first][1] - lead_in
    loop = 0
    while True:  # loop the voice (after a one-beat rest) when it is shorter than the clip
        for pitch, start, length, _ in timed[first:] if loop == 0 else timed:
            t = start - offset
            if t >= seconds:
                break
            notes.append((pitch, t, length))
        else:
            if loop < 20:
                loop += 1
                offset -= total - timed[0][1] + spb  # the next pass starts a beat after this one ends
                continue
        break
    pitches = [p for p, _, _ in notes]
    shift = fit_to_range(pitches, instrument.low, instrument.high, rng)
    out = []
    for pitch, t, length in notes:
        # Legato but re-articulated: sustained instruments release just before the next note.
        articulation = 0.94 if instrument.sustained else 1.0
        velocity = int(np.clip(round(base_velocity + rng.normal(0.0, 5.0)), 20, 127))
        p = _fold_into_range(pitch + shift, instrument.low, instrument.high)
        out.append(Note(p, round(t, 6), round(max(length * articulation, 0.03), 6), velocity))
    info = {
        "voice": voice,
        "start_quarters": float(timed[first][3]),
        "tempo_bpm": round(bpm, 3),
        "fermata_factor": round(fermata_factor, 3),
        "transposition": int(shift),
        "looped": loop > 0,
    }
    return out, info


SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "natural_minor": (0, 2, 3, 5, 7, 8, 10),
    "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "major_pentatonic": (0, 2, 4, 7, 9),
    "minor_pentatonic": (0, 3, 5, 7, 10),
}


_SCALE_WEIGHTS = np.array([0.3, 0.15, 0.1, 0.1, 0.1, 0.15, 0.1])


# Note values in quarters and their weights, for sustained and for decaying instruments.
_RHYTHMS = {
    True: ((0.5, 1.0, 1.5, 2.0, 3.0, 4.0), (0.34, 0.36, 0.09, 0.13, 0.05, 0.03)),
    False: ((0.25, 0.5, 1.0, 1.5, 2.0), (0.12, 0.38, 0.32, 0.1, 0.08)),
}


# Scale-degree steps of the random walk and their weights (mostly steps, some repeats and leaps).
_STEPS = np.array([-5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5])


_STEP_WEIGHTS = np.array([0.02, 0.04, 0.06, 0.12, 0.24, 0.04, 0.24, 0.12, 0.06, 0.04, 0.02])


def random_melody(instrument: Instrument, seed: int, seconds: float) -> tuple[list[Note], dict]:
    """A random but musical melody for ``instrument``, lasting about ``seconds`` (deterministic in ``seed``).

    A random walk on a scale inside a 14..24 semitone window of the range, in bars of 3 or 4 beats, phrases of
    2 or 4 bars ending on a long note and often a rest, occasional rests inside phrases, a hairpin of
    velocity per phrase plus downbeat accents and jitter, legato or (sometimes) staccato phrases.
    """
    rng = np.random.default_rng(seed)
    scale_name = list(SCALES)[int(rng.choice(len(SCALES), p=_SCALE_WEIGHTS / _SCALE_WEIGHTS.sum()))]
    tonic = int(rng.integers(0, 12))
    bpm = float(rng.uniform(*RANDOM_TEMPO_BPM))
    spb = 60.0 / bpm
    beats_per_bar = int(rng.choice([3, 4], p=[0.3, 0.7]))
    full = instrument.high - instrument.low
    span = min(full, int(rng.integers(14, 25)))
    win_low = instrument.low + int(round(float(rng.beta(2.0, 2.0)) * (full - span)))
    pool = [p for p in range(win_low, win_low + span + 1) if (p - tonic) % 12 in SCALES[scale_name]]
    values, weights = _RHYTHMS[instrument.sustained]
    weights = np.array(weights) / np.sum(weights)
    idx = int(rng.integers(len(pool) // 4, max(len(pool) // 4 + 1, 3 * len(pool) // 4)))
    direction = 1
    notes: list[Note] = []
    t_quarters = 0.0
    lead_in = float(rng.uniform(0.0, 0.25))
    while t_quarters * spb < seconds:
        bars = int(rng.choice([2, 4]))
        level = float(rng.uniform(45, 110))
        hairpin = float(rng.uniform(-25, 25))
        staccato = bool(rng.random() < 0.15)
        phrase_len = bars * beats_per_bar
        phrase_end = t_quarters + phrase_len
        while t_quarters < phrase_end - 1e-9:
            left = min(beats_per_bar - (t_quarters % beats_per_bar), phrase_end - t_quarters)
            final_bar = phrase_end - t_quarters <= beats_per_bar + 1e-9
            fit = [i for i, v in enumerate(values) if v <= left + 1e-9]
            if not fit or (final_bar and rng.random() < 0.35):
                dur = float(left)  # a long note to the end of the bar (phrase endings)
            else:
                w = weights[fit] / weights[fit].sum()
                dur = float(values[fit[int(rng.choice(len(fit), p=w))]])
            rest = bool(rng.random() < 0.08)
            if not rest:
                step = int(rng.choice(_STEPS, p=_STEP_WEIGHTS))
                if step != 0 and rng.random() < 0.6:
                    step = abs(step) * direction  # some momentum
                new = idx + step
                if new < 0 or new >= len(pool):
                    new = idx - step  # reflect at the window's edges
                idx = int(np.clip(new, 0, len(pool) - 1))
                if step:
                    direction = 1 if step > 0 else -1
                progress = (t_quarters - (phrase_end - phrase_len)) / phrase_len
                velocity = level + hairpin * progress + rng.normal(0.0, 5.0)
                if abs(t_quarters % beats_per_bar) < 1e-9:
                    velocity += 8.0
                sound = dur * (float(rng.uniform(0.45, 0.6)) if staccato else float(rng.uniform(0.9, 0.98)))
                if not instrument.sustained:
                    sound = dur * float(rng.uniform(0.8, 1.0))
                notes.append(
                    Note(
                        int(pool[idx]),
                        round(lead_in + t_quarters * spb, 6),
                        round(max(sound * spb, 0.03), 6),
                        int(np.clip(round(velocity), 20, 127)),
                    )
                )
            t_quarters += dur
        if rng.random() < 0.6:  # breath between phrases
            t_quarters += float(rng.choice([0.5, 1.0, 2.0]))
    notes = [n for n in notes if n.start < seconds]
    info = {
        "seed": int(seed),
        "scale": scale_name,
        "tonic": tonic,
        "tempo_bpm": round(bpm, 3),
        "beats_per_bar": beats_per_bar,
        "window": [win_low, win_low + span],
        "transposition": 0,
    }
    return notes, info


def chorale_time_map(voices: dict, seconds_per_beat: float, fermata_factor: float) -> Callable[[float], float]:
    """Quarters -> seconds shared by all voices: a quarter lasts ``seconds_per_beat``, times ``fermata_factor``
    while a note under a fermata sounds in any voice (so every voice holds the fermata together)."""
    spans = sorted((on, on + dur) for events in voices.values() for _, on, dur, fermata in events if fermata)
    merged: list[list[float]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1] + 1e-9:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])

    def to_seconds(q: float) -> float:
        held = sum(min(b, q) - a for a, b in merged if a < q)
        return (q + (fermata_factor - 1.0) * held) * seconds_per_beat

    return to_seconds
