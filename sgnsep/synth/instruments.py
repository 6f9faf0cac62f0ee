"""The classes the corpus can render: :data:`INSTRUMENTS` maps each class name to a General MIDI program
(0-based), the sounding MIDI pitch range of the real instrument, and whether it sustains; and how the parts
of a piece are given to instruments whose ranges fit them.

MUSIC-11's erhu has no General MIDI program and cannot be rendered (:data:`UNRENDERABLE`); the other ten
MUSIC-11 classes are :data:`MUSIC11_CLASSES`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sgnsep.core.errors import UsageError


@dataclass(frozen=True)
class Instrument:
    """One renderable class.

    ``program`` is the 0-based General MIDI program; ``low``/``high`` the sounding MIDI pitch range of the real
    instrument (inclusive); ``sustained`` is False for plucked/struck instruments whose notes decay.
    """

    name: str
    program: int
    low: int
    high: int
    sustained: bool
    gm_name: str


def _inst(name, program, low, high, sustained, gm_name):
    return name, Instrument(name, program, low, high, sustained, gm_name)


# Ranges are sounding pitches of the instruments' common professional ranges (orchestration texts), kept a
# little inside the extremes where the GM samples get thin.
INSTRUMENTS: dict[str, Instrument] = dict(
    [
        _inst("violin", 40, 55, 100, True, "Violin"),  # G3..E7
        _inst("viola", 41, 48, 88, True, "Viola"),  # C3..E6
        _inst("cello", 42, 36, 79, True, "Cello"),  # C2..G5
        # E1..A3 sounding: FluidR3 GM's Contrabass is silent from A#3 up; orchestral bass lines rarely go there.
        _inst("double_bass", 43, 28, 57, True, "Contrabass"),
        _inst("flute", 73, 60, 96, True, "Flute"),  # C4..C7
        _inst("oboe", 68, 58, 91, True, "Oboe"),  # Bb3..G6
        _inst("clarinet", 71, 50, 91, True, "Clarinet"),  # D3..G6 (Bb clarinet, sounding)
        _inst("bassoon", 70, 34, 75, True, "Bassoon"),  # Bb1..Eb5
        _inst("saxophone", 65, 49, 80, True, "Alto Sax"),  # Db3..Ab5 (alto, sounding)
        _inst("trumpet", 56, 52, 82, True, "Trumpet"),  # E3..Bb5 (Bb trumpet, sounding)
        _inst("horn", 60, 41, 77, True, "French Horn"),  # F2..F5 (sounding)
        _inst("trombone", 57, 40, 72, True, "Trombone"),  # E2..C5
        _inst("tuba", 58, 28, 58, True, "Tuba"),  # E1..Bb3
        _inst("acoustic_guitar", 24, 40, 81, False, "Acoustic Guitar (nylon)"),  # E2..A5 (sounding)
        _inst("accordion", 21, 41, 89, True, "Accordion"),  # F2..F6
        _inst("xylophone", 13, 65, 108, False, "Xylophone"),  # F4..C8 (sounding)
        _inst("piano", 0, 21, 108, False, "Acoustic Grand Piano"),  # A0..C8
    ]
)


#: MUSIC-11 classes General MIDI can render (erhu cannot: see UNRENDERABLE).
MUSIC11_CLASSES: tuple[str, ...] = (
    "accordion",
    "acoustic_guitar",
    "cello",
    "clarinet",
    "flute",
    "saxophone",
    "trumpet",
    "tuba",
    "violin",
    "xylophone",
)


#: Orchestral classes (all of INSTRUMENTS).
ORCHESTRAL_CLASSES: tuple[str, ...] = (
    "violin",
    "viola",
    "cello",
    "double_bass",
    "flute",
    "oboe",
    "clarinet",
    "bassoon",
    "saxophone",
    "trumpet",
    "horn",
    "trombone",
    "tuba",
    "acoustic_guitar",
    "accordion",
    "xylophone",
    "piano",
)


#: Classes of the paper's datasets that no General MIDI program renders.
UNRENDERABLE: dict[str, str] = {
    "erhu": "General MIDI has no erhu (its closest programs, Violin and Fiddle, are a different instrument)",
}


def resolve_classes(classes) -> list[str]:
    if classes is None:
        return list(ORCHESTRAL_CLASSES)
    if isinstance(classes, str):
        classes = [classes]
    out = []
    for c in classes:
        name = str(c).strip().lower().replace("-", "_").replace(" ", "_")
        if name in UNRENDERABLE:
            raise UsageError(
                f"Class '{c}' cannot be rendered: {UNRENDERABLE[name]}.",
                hint=f"Renderable classes: {', '.join(INSTRUMENTS)}.",
            )
        if name not in INSTRUMENTS:
            raise UsageError(f"Unknown class '{c}'. Known classes: {', '.join(INSTRUMENTS)}.")
        if name not in out:
            out.append(name)
    if not out:
        raise UsageError(f"No class was given. Known classes: {', '.join(INSTRUMENTS)}.")
    return out


_STEMS_OCTAVE_WEIGHT = 0.25  # a class that needs k octaves of transposition is drawn 0.25**k as often


def _weighted_order(items: list, weights: list[float], rng: np.random.Generator) -> list:
    """``items`` in a random order drawn without replacement with probabilities proportional to ``weights``
    (Efraimidis-Spirakis keys: the first item is a weighted draw)."""
    u = rng.random(len(items))
    keys = np.log(np.maximum(u, 1e-300)) / np.asarray(weights, dtype=np.float64)
    return [items[i] for i in np.argsort(-keys, kind="stable")]


def _octave_fit(pitches: list[int], inst: Instrument) -> int | None:
    """The whole-octave transposition (semitones) that fits ``pitches`` into ``inst``'s range, nearest to none
    (ties: the one nearer the middle of the range); None if no octave fits."""
    lo, hi = min(pitches), max(pitches)
    fits = [o for o in range(-8, 9) if inst.low <= lo + 12 * o and hi + 12 * o <= inst.high]
    if not fits:
        return None
    mid = (inst.low + inst.high) / 2.0
    return 12 * min(fits, key=lambda o: (abs(o), abs((lo + hi) / 2.0 + 12 * o - mid), o))


def assign_instruments(
    voice_pitches: dict[str, list[int]], classes: list[str], uses: dict[str, int], rng: np.random.Generator
) -> dict[str, tuple[str, int]] | None:
    """``{voice: (class, transposition)}`` with distinct classes whose ranges fit the voices after whole-octave
    transposition, or None when no such assignment exists. Random (favouring small transpositions and classes
    used less so far in the set); a backtracking search, so it fails only when nothing fits. The voices may
    have any names; ties between equally constrained voices go to the one listed first."""
    options: dict[str, list[tuple[str, int]]] = {}
    for voice, pitches in voice_pitches.items():
        fits = [(c, _octave_fit(pitches, INSTRUMENTS[c])) for c in classes]
        fits = [(c, t) for c, t in fits if t is not None]
        weights = [_STEMS_OCTAVE_WEIGHT ** (abs(t) // 12) / (1.0 + uses.get(c, 0)) for c, t in fits]
        options[voice] = _weighted_order(fits, weights, rng) if fits else []
    position = {v: i for i, v in enumerate(voice_pitches)}
    order = sorted(options, key=lambda v: (len(options[v]), position[v]))  # most constrained first
    chosen: dict[str, tuple[str, int]] = {}

    def search(k: int) -> bool:
        if k == len(order):
            return True
        taken = {c for c, _ in chosen.values()}
        for c, t in options[order[k]]:
            if c not in taken:
                chosen[order[k]] = (c, t)
                if search(k + 1):
                    return True
                del chosen[order[k]]
        return False

    return {v: chosen[v] for v in voice_pitches if v in chosen} if search(0) else None
