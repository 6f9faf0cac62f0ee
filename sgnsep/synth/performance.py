"""A performance of score notes: what a player adds to a score and plain soundfont rendering lacks.

From the notes of the parts of one piece (quarters, from sgnsep.synth.score_library) this draws, from one random
generator, everything :func:`sgnsep.synth.render_notes` needs to play them like musicians rather than a
sequencer:

Timing (shared by the parts, so they stay together)
    A tempo in quarters per minute, fermatas held longer (sgnsep.synth's shared time map), and rubato: the
    local tempo drifts as a sum of slow sinusoids (periods 3..14 s) by up to ``rubato`` (a fraction of the
    tempo), integrated into a monotonic map from score time to performed time.
Timing (per part)
    Each part lags or leads the ensemble by a constant few milliseconds and every onset is jittered, so the
    parts never start notes on the same sample as a sequencer would.
Articulation
    Phrases (runs of notes between rests or fermatas, at most 12 notes) are played legato (notes held to the
    next onset and a little over it when the pitch changes), detached or staccato; every note length is
    jittered. Plucked and struck instruments hold their notes 80..100 % of their written length.
Dynamics
    Velocity = the part's level + an ensemble dynamic curve shared by the parts + a hairpin per phrase +
    jitter. Controllers shape the sound inside notes: CC7 (channel volume) follows a slow per-part drift, and on
    sustained instruments CC11 (expression) swells through long notes (messa di voce). Both are sent as 14-bit
    values (MSB then LSB). tinysoundfont's level law for CC7 and CC11 measured on FluidR3's violin: about
    ``60 * log10(value / 127)`` dB (-6.2 dB at 100, -17.7 dB at 64), which :func:`cc_for_db` inverts.
Pitch
    tinysoundfont ignores CC1 (modulation; a render with CC1 at 127 is sample-identical to one without), so
    vibrato is played on the pitch wheel (range +-2 semitones), updated every :data:`CONTROL_STEP` seconds:
    a sine of the part's rate and depth that fades in after each note starts. Some notes start with a
    scoop (a bend from below that settles within tens of milliseconds), every note of a non-fixed-pitch
    instrument has a small random intonation error, and the whole stem is detuned by a few cents
    (``("tuning", ...)``).

Depths and probabilities per class are in :data:`PROFILES`: design choices after orchestration practice,
not measurements. Everything drawn is returned as plain numbers for the corpus manifest.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sgnsep.synth.scores import Note, chorale_time_map

__all__ = ["Profile", "PROFILES", "CONTROL_STEP", "cc_for_db", "draw_timing", "perform_part"]

CONTROL_STEP = 0.005  # s between pitch-wheel updates (a 5..7 Hz vibrato gets 29..40 steps a cycle)
CC_STEP = 0.02  # s between expression/volume updates
PHRASE_MAX_NOTES = 12


@dataclass(frozen=True)
class Profile:
    """How a class is played: vibrato depth (cents) and rate (Hz) ranges, the share of notes scooped, the
    intonation error (cents, standard deviation), whether notes can swell (sustained) and whether the length
    is the player's (False: plucked or struck, the note decays)."""

    vibrato_cents: tuple[float, float] = (0.0, 0.0)
    vibrato_hz: tuple[float, float] = (4.5, 6.5)
    scoop: float = 0.0
    intonation_cents: float = 0.0
    swells: bool = True
    sustained: bool = True


_STRING = dict(vibrato_hz=(4.8, 6.8), intonation_cents=5.0)
PROFILES: dict[str, Profile] = {
    "violin": Profile(vibrato_cents=(10, 35), scoop=0.12, **_STRING),
    "viola": Profile(vibrato_cents=(10, 30), scoop=0.12, **_STRING),
    "cello": Profile(vibrato_cents=(10, 30), scoop=0.12, **_STRING),
    "double_bass": Profile(vibrato_cents=(5, 20), scoop=0.08, **_STRING),
    "flute": Profile(vibrato_cents=(5, 25), scoop=0.04, intonation_cents=4.0),
    "oboe": Profile(vibrato_cents=(5, 20), scoop=0.04, intonation_cents=4.0),
    "clarinet": Profile(vibrato_cents=(0, 5), scoop=0.03, intonation_cents=3.0),
    "bassoon": Profile(vibrato_cents=(3, 15), scoop=0.04, intonation_cents=4.0),
    "saxophone": Profile(vibrato_cents=(5, 30), scoop=0.2, intonation_cents=5.0),
    "trumpet": Profile(vibrato_cents=(0, 15), scoop=0.1, intonation_cents=4.0),
    "horn": Profile(vibrato_cents=(0, 8), scoop=0.05, intonation_cents=4.0),
    "trombone": Profile(vibrato_cents=(0, 15), scoop=0.1, intonation_cents=4.0),
    "tuba": Profile(vibrato_cents=(0, 8), scoop=0.05, intonation_cents=4.0),
    "accordion": Profile(),
    "acoustic_guitar": Profile(swells=False, sustained=False),
    "piano": Profile(swells=False, sustained=False),
    "xylophone": Profile(swells=False, sustained=False),
}


def cc_for_db(db: float) -> int:
    """The 14-bit CC7/CC11 value (0..16383) that tinysoundfont plays ``db`` (<= 0) below full level."""
    return int(np.clip(round(16383 * 10 ** (min(0.0, db) / 60.0)), 0, 16383))


def _slow_curve(rng: np.random.Generator, periods: tuple[float, float], n: int = 3):
    """A smooth random curve in [-1, 1]: a sum of ``n`` sinusoids of random periods and phases."""
    p = rng.uniform(*periods, size=n)
    phase = rng.uniform(0, 2 * np.pi, size=n)
    amp = rng.uniform(0.5, 1.0, size=n)
    amp = amp / amp.sum()
    return lambda t: np.sum(amp[:, None] * np.sin(2 * np.pi * np.atleast_1d(t)[None, :] / p[:, None] + phase[:, None]), axis=0)


@dataclass
class Timing:
    """The ensemble's time line: score quarters -> performed seconds of the track (``to_track``), the
    ensemble dynamic curve (velocity offset per track second) and what was drawn (``params``)."""

    to_track: Callable[[float], float]
    dynamics: Callable[[np.ndarray], np.ndarray]
    params: dict


def draw_timing(
    parts: dict[str, list[list]], bpm: float, start_q: float, lead_in: float, seconds: float,
    rng: np.random.Generator, *, rubato: float | None = None,
) -> Timing:
    """The shared timing of ``parts`` (``{name: [[midi, onset_q, dur_q, fermata], ...]}``) for a window of
    ``seconds`` that starts at quarter ``start_q`` after ``lead_in`` seconds."""
    fermata_factor = float(rng.uniform(1.4, 2.0))
    score_seconds = chorale_time_map(parts, 60.0 / bpm, fermata_factor)
    rubato = float(rng.uniform(0.0, 0.1)) if rubato is None else float(rubato)
    curve = _slow_curve(rng, (3.0, 14.0))
    # Performed time = integral of 1 / local tempo over score time, on a grid long enough for the window
    # (rubato slows by at most e^0.1 ~ 10 %; fermatas are already in score time).
    step = 0.01
    grid = np.arange(0.0, seconds * 1.5 + 20.0, step)
    rate = np.exp(rubato * curve(grid))
    performed = np.concatenate([[0.0], np.cumsum(step / rate[:-1])])
    origin = score_seconds(start_q)

    def to_track(q: float) -> float:
        s = score_seconds(q) - origin
        if s <= 0:
            return lead_in + s
        return lead_in + float(np.interp(s, grid, performed, right=performed[-1] + (s - grid[-1])))

    dyn_depth = float(rng.uniform(0.0, 14.0))
    dyn_curve = _slow_curve(rng, (4.0, 16.0))
    params = {
        "tempo_bpm": round(bpm, 3),
        "fermata_factor": round(fermata_factor, 3),
        "rubato": round(rubato, 4),
        "ensemble_dynamics_velocity": round(dyn_depth, 3),
        "lead_in_seconds": round(lead_in, 4),
    }
    return Timing(to_track, lambda t: dyn_depth * dyn_curve(t), params)


def _phrases(events: list[list]) -> list[list[int]]:
    """Indices of the notes of each phrase: a rest, a fermata or PHRASE_MAX_NOTES notes end a phrase."""
    phrases: list[list[int]] = [[]]
    for i, e in enumerate(events):
        phrases[-1].append(i)
        rest_after = i + 1 < len(events) and events[i + 1][1] > e[1] + e[2] + 1e-6
        if e[3] or rest_after or len(phrases[-1]) >= PHRASE_MAX_NOTES:
            phrases.append([])
    return [p for p in phrases if p]


def perform_part(
    events: list[list], transposition: int, cls: str, timing: Timing, seconds: float, rng: np.random.Generator,
    *, sustained: bool | None = None,
) -> tuple[list[Note], list[tuple], dict]:
    """Notes and controls of one part (``events`` of the window, transposed by ``transposition``) played on
    class ``cls`` -> (notes, controls for :func:`sgnsep.synth.render_notes`, the drawn parameters).
    ``sustained`` overrides the class's profile (a pizzicato preset of a bowed class)."""
    prof = PROFILES.get(cls, Profile())
    sustained = prof.sustained if sustained is None else bool(sustained)
    lag = float(rng.normal(0.0, 0.008))
    jitter = float(rng.uniform(0.002, 0.015))
    level = float(rng.uniform(55.0, 100.0))
    vib_depth = float(rng.uniform(*prof.vibrato_cents)) if rng.random() > 0.15 else 0.0  # some play senza vibrato
    vib_rate = float(rng.uniform(*prof.vibrato_hz))
    vib_delay = float(rng.uniform(0.08, 0.3))
    swell_share = float(rng.uniform(0.2, 0.8)) if prof.swells and sustained else 0.0
    swell_db = float(rng.uniform(3.0, 10.0))
    drift_db = float(rng.uniform(0.0, 3.0))
    detune = float(rng.uniform(-12.0, 12.0))
    drift = _slow_curve(rng, (5.0, 20.0))

    # Onsets and written ends in track seconds.
    on = np.array([timing.to_track(e[1]) for e in events]) + lag + rng.normal(0.0, jitter, len(events))
    end = np.array([timing.to_track(e[1] + e[2]) for e in events]) + lag
    # A note can land before the track's start: an early lag or jitter within a short lead-in, or a note
    # held over from before the window. It sounds from the first sample instead.
    on = np.maximum(on, 0.0)
    for i in range(1, len(on)):  # jitter never reorders notes
        on[i] = max(on[i], on[i - 1] + 0.02)
    styles = []
    notes: list[Note] = []
    bends: list[tuple[float, float, float, float]] = []  # (start, end, scoop cents, scoop time constant)
    swells: list[tuple[float, float, float]] = []  # (start, end, peak position)
    pitches = [int(e[0]) + transposition for e in events]
    for phrase in _phrases(events):
        style = str(rng.choice(["legato", "detached", "staccato"], p=[0.45, 0.4, 0.15])) if sustained else "free"
        styles.append(style)
        hairpin = float(rng.uniform(-12.0, 12.0))
        for k, i in enumerate(phrase):
            written = max(0.03, end[i] - on[i])
            nxt = on[i + 1] if i + 1 < len(on) else None
            if style == "legato":
                length = written * float(rng.uniform(0.97, 1.03))
                if nxt is not None and k + 1 < len(phrase):  # held into the next note of the phrase
                    over = float(rng.uniform(0.005, 0.03)) if pitches[i + 1] != pitches[i] else -0.02
                    length = max(length, nxt - on[i] + over)
            elif style == "detached":
                length = written * float(rng.uniform(0.8, 0.95))
            elif style == "staccato":
                length = written * float(rng.uniform(0.35, 0.6))
            else:
                length = written * float(rng.uniform(0.8, 1.0))
            if nxt is not None and pitches[i + 1] == pitches[i]:
                length = min(length, nxt - on[i] - 0.01)  # a repeated pitch is released before it sounds again
            length = max(0.03, length)
            progress = k / max(1, len(phrase) - 1)
            velocity = level + timing.dynamics(on[i])[0] + hairpin * (progress - 0.5) + rng.normal(0.0, 4.0)
            if on[i] >= seconds:
                continue
            notes.append(Note(pitches[i], round(float(on[i]), 6), round(float(length), 6),
                              int(np.clip(round(velocity), 20, 127))))
            # The channel's pitch wheel and expression belong to the note that sounds last: a legato note's
            # controls stop where the next note starts.
            stop = on[i] + length if nxt is None else min(on[i] + length, nxt)
            scoop = float(rng.uniform(20.0, 70.0)) if sustained and rng.random() < prof.scoop else 0.0
            bends.append((on[i], stop, scoop, float(rng.uniform(0.02, 0.06))))
            if sustained and length >= 0.5 and rng.random() < swell_share:
                swells.append((on[i], stop, float(rng.uniform(0.3, 0.7))))
    intonation = rng.normal(0.0, prof.intonation_cents, len(bends)) if sustained else np.zeros(len(bends))
    phase = rng.uniform(0, 2 * np.pi, len(bends))
    controls = _controls(bends, intonation, phase, seconds, vib_depth, vib_rate, vib_delay,
                         lambda t: -drift_db * (0.5 + 0.5 * drift(t)), detune)
    params = {
        "lag_seconds": round(lag, 5),
        "onset_jitter_seconds": round(jitter, 5),
        "velocity_level": round(level, 2),
        "articulation": {s: styles.count(s) for s in sorted(set(styles))},
        "vibrato_cents": round(vib_depth, 2),
        "vibrato_hz": round(vib_rate, 3),
        "vibrato_delay_seconds": round(vib_delay, 3),
        "vibrato_via": "pitch wheel (tinysoundfont ignores CC1)",
        "scooped_notes": sum(1 for b in bends if b[2] > 0),
        "swelled_notes": len(swells),
        "swell_db": round(swell_db, 2) if swells else 0.0,
        "volume_drift_db": round(drift_db, 2),
        "intonation_cents_sd": prof.intonation_cents if sustained else 0.0,
        "detune_cents": round(detune, 3),
        "n_controls": len(controls),
    }
    if swells:
        controls = _merge(controls, _swell_controls(swells, swell_db))
    return notes, controls, params


def _controls(bends, intonation, phase, seconds, vib_depth, vib_rate, vib_delay, volume_db, detune):
    """Pitch wheel (vibrato, scoops, intonation), CC7 drift and the stem's tuning, sorted by time."""
    out: list[tuple] = [(0.0, "tuning", round(detune / 100.0, 6))]
    last_wheel = None
    for (start, stop, scoop, tau), cents0, ph in zip(bends, intonation, phase):
        t = np.arange(start, min(stop, seconds), CONTROL_STEP)
        if not len(t):
            continue
        rel = t - start
        fade = np.clip((rel - vib_delay) / 0.25, 0.0, 1.0)
        cents = cents0 + vib_depth * fade * np.sin(2 * np.pi * vib_rate * rel + ph)
        if scoop:
            cents = cents - scoop * np.exp(-rel / tau)
        wheel = np.clip(np.round(8192 + 8191 * cents / 200.0), 0, 16383).astype(int)
        for tt, w in zip(t, wheel):
            if w != last_wheel:
                out.append((round(float(tt), 6), "pitch_wheel", int(w)))
                last_wheel = int(w)
    last = None
    for tt in np.arange(0.0, seconds, 0.1):
        v = cc_for_db(float(volume_db(np.array([tt]))[0]))
        if v != last:
            out.extend([(round(float(tt), 6), "cc", 7, v >> 7), (round(float(tt), 6), "cc", 39, v & 127)])
            last = v
    return sorted(out, key=lambda c: c[0])  # stable: MSB stays before LSB


def _swell_controls(swells, depth_db):
    """CC11 through each swelled note: -depth at its start, 0 dB at its peak, -0.7 depth at its end; back to
    full expression when it ends."""
    out = []
    for start, stop, peak in swells:
        t = np.arange(start, stop, CC_STEP)
        x = (t - start) / max(1e-6, stop - start)
        a = math.log(0.5) / math.log(peak)
        bump = np.sin(np.pi * np.clip(x, 0, 1) ** a) ** 2
        tail = np.where(x > peak, 0.7, 1.0)
        db = -depth_db * (1.0 - bump) * tail
        last = None
        for tt, d in zip(t, db):
            v = cc_for_db(float(d))
            if v != last:
                out.extend([(round(float(tt), 6), "cc", 11, v >> 7), (round(float(tt), 6), "cc", 43, v & 127)])
                last = v
        out.extend([(round(float(stop), 6), "cc", 11, 127), (round(float(stop), 6), "cc", 43, 127)])
    return out


def _merge(a: list[tuple], b: list[tuple]) -> list[tuple]:
    return sorted(a + b, key=lambda c: c[0])
