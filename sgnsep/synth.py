"""An offline corpus of solo instrument recordings rendered from General MIDI soundfonts.

The corpus is for training and testing separation models where no real recordings can be downloaded. Each
clip is one instrument playing one monophonic line, written in the "solos" layout that the data loaders read::

    out_dir/<class>/<clip_id>.wav      mono, ``sample_rate`` Hz, 16-bit PCM (or 32-bit float)
    out_dir/metadata.json              one record per clip, the split of every clip, how it was made
    out_dir/chorale_notes.json         cache of the note lists extracted from music21's Bach chorales

Pipeline (one clip)::

    score  ->  notes in the instrument's range  ->  tinysoundfont render  ->  loudness normalisation  ->  WAV

Scores
    * ``"chorales"``: one voice (soprano, alto, tenor or bass) of one of music21's 371 four-part Bach chorales
      (Riemenschneider numbering), durations from the score, fermatas held longer, a random tempo
      (quarter = 56..96 bpm), a random window of the voice, transposed by semitones and octaves into the
      instrument's range. music21's string quartets are reserved for evaluation and never read.
    * ``"random"``: a random but musical melody: a random walk on a scale (major, minors, modes, pentatonics)
      inside a 14..24 semitone window of the instrument's range, with bar-aligned varied rhythms, phrase-end
      rests, hairpin dynamics and accents (velocity), legato or staccato phrases, a random tempo.
    * ``"mixed"`` (default): clips alternate between the two.

Soundfonts
    Only the soundfonts named in :data:`SOUNDFONT_FILES` are searched for (Debian packages and pretty_midi's
    bundled TimGM6mb.sf2). FluidR3 GM, FluidR3Mono GM and MuseScore General share their samples (family
    ``"fluidr3"``); TimGM6mb is a different family: render a test corpus from one family and a training
    corpus from the other to test timbre generalisation. ``sf_GMbank.sf2`` (csound) is reserved for
    independent evaluation and is refused wherever it is named, even behind a symbolic link.

Rendering
    tinysoundfont has no reverb or chorus unit, so every stem is dry. Note events are placed on exact sample
    positions of the output rate. To avoid the aliasing of tinysoundfont's linear-interpolation resampler,
    audio is rendered at ``sample_rate * k`` (k = ceil(44100 / sample_rate), 4 at 11025 Hz) and decimated with
    a linear-phase Kaiser-windowed sinc low-pass (-6 dB at 0.92 x the output Nyquist, flat to 0.87, -80 dB
    from 0.98). tinysoundfont renders stereo; the mono stem is (L + R) / 2. FluidR3_GM's stereo sample pairs
    (strings, flute, oboe, bassoon, piano) partly cancel in that downmix (1.4..2.9 dB on average), as a spaced
    microphone pair would; the loudness normalisation makes up the level. Every render plays on a fresh clone
    of the loaded soundfont, so it depends only on its own notes. Rendering runs in the calling process (the
    soundfont cache is per process and not thread-safe).

Preset checks
    Before rendering, each (class, soundfont) pair is probed by :func:`probe_preset` (every semitone of the
    range at velocity 100): a missing or silent preset, silent notes inside the range, a preset quieter than
    -60 dBFS or note levels spread over 30 dB exclude that soundfont for that class (listed in the metadata
    under ``skipped.presets``). With the Debian soundfonts this excludes MuseScore_General_Lite's Grand Piano
    (note levels spread over 37 dB, 15-30 dB quieter than the others under tinysoundfont). A clip that still
    renders silent is skipped and counted (``skipped.clips``), never fatal.

Loudness
    General MIDI presets differ by up to 30 dB in level, so every clip is normalised to the same "active RMS"
    (:func:`active_loudness_db`): the mean power of the 50 ms frames that are not silence (above -70 dBFS)
    and not more than 20 dB below the mean power of those frames (this drops rests and release tails, like
    the gating of EBU R128 but without its K-weighting). The target is ``target_db`` (-23 dBFS); when that
    would push a sample peak above 0.99 the gain is lowered to keep the peak at 0.99 and the clip is marked
    ``peak_limited`` (its loudness is then below the target; the metadata records both values).

Splits
    Train / val / test are disjoint by score. A chorale belongs to one split, decided by a hash of its id and
    the split fractions (so it does not depend on the seed: corpora made with different seeds and the same
    fractions never share a chorale across splits). Each random melody is generated from its own 63-bit seed
    and used by one clip only. Each class gets ``round(clips_per_class * fraction)`` clips per split (largest
    remainders; every split with a positive fraction gets at least one clip when there are enough clips).

Determinism
    Everything random is drawn from ``numpy.random.default_rng([seed, crc32(class), clip_index])``, so the
    same arguments give byte-identical WAV files and metadata.json, and a clip does not change when other
    classes are added or removed. (The WAV writer is ours: libsndfile stamps the time into float WAV files.)

Stems of chorales (evaluation sets)
    :func:`render_chorale_stems` writes real four-part music in the "stems" layout that ``sgnsep eval`` reads
    (``out_dir/<track_id>/<class>.flac``): each track is one chorale of one split (test by default, by the
    same hash rule), 2..4 of its voices in one tempo and one time window, each voice transposed by whole
    octaves into the range of a different instrument, all from one soundfont.

Classes
    :data:`INSTRUMENTS` maps class names to a General MIDI program (0-based), the sounding MIDI pitch range of
    the real instrument, and whether it sustains. MUSIC-11's erhu has no General MIDI program and cannot be
    rendered (:data:`UNRENDERABLE`); the other ten MUSIC-11 classes are :data:`MUSIC11_CLASSES`.

Installing (tinysoundfont's metadata pulls in pyaudio, which offline rendering never uses)::

    pip install --no-deps tinysoundfont
    pip install music21 pretty_midi
    apt-get install -y fluid-soundfont-gm fluidr3mono-gm-soundfont musescore-general-soundfont-small \
        timgm6mb-soundfont

Speed (one core of a shared 2-core machine, 11025 Hz): about 300-400 seconds of audio per second once the
soundfonts are loaded and the chorales parsed; about 100-150x for a first run of all 17 classes, which loads
the four soundfonts (about 4 s) and parses the chorales it needs (about 0.05 s each, then cached).

Heavy imports (tinysoundfont, music21) happen inside the functions that need them, so importing
this module is cheap.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import struct
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from sgnsep.core import folder_lock
from sgnsep.core.atomic_write import NewOutputs, write_bytes_atomic, write_text_atomic
from sgnsep.core.errors import OutputError, UsageError

__all__ = [
    "Instrument",
    "INSTRUMENTS",
    "MUSIC11_CLASSES",
    "ORCHESTRAL_CLASSES",
    "UNRENDERABLE",
    "SOUNDFONT_FILES",
    "Note",
    "find_soundfonts",
    "check_soundfont_allowed",
    "chorale_ids",
    "load_chorales",
    "chorale_clip",
    "random_melody",
    "fit_to_range",
    "render_notes",
    "probe_preset",
    "active_loudness_db",
    "normalise_loudness",
    "synthesize_corpus",
    "read_metadata",
    "render_chorale_stems",
]

# ---------------------------------------------------------------------------------------------------------
# Instruments
# ---------------------------------------------------------------------------------------------------------


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

# ---------------------------------------------------------------------------------------------------------
# Soundfonts
# ---------------------------------------------------------------------------------------------------------

#: Allowed soundfonts: key -> (file name, family, where it comes from, candidate paths).
SOUNDFONT_FILES: dict[str, dict] = {
    "fluidr3_gm": {
        "file": "FluidR3_GM.sf2",
        "family": "fluidr3",
        "package": "Debian fluid-soundfont-gm",
        "paths": ["/usr/share/sounds/sf2/FluidR3_GM.sf2"],
    },
    "fluidr3mono_gm": {
        "file": "FluidR3Mono_GM.sf3",
        "family": "fluidr3",
        "package": "Debian fluidr3mono-gm-soundfont",
        "paths": [
            "/usr/share/sounds/sf3/FluidR3Mono_GM.sf3",
            "/usr/share/fluidr3mono-gm-soundfont/FluidR3Mono_GM.sf3",
        ],
    },
    "musescore_general_lite": {
        "file": "MuseScore_General_Lite.sf3",
        "family": "fluidr3",
        "package": "Debian musescore-general-soundfont-small",
        "paths": ["/usr/share/sounds/sf3/MuseScore_General_Lite.sf3"],
    },
    "timgm6mb": {
        "file": "TimGM6mb.sf2",
        "family": "timgm6mb",
        "package": "Debian timgm6mb-soundfont",
        "paths": ["/usr/share/sounds/sf2/TimGM6mb.sf2"],
    },
    "timgm6mb_pretty_midi": {
        "file": "TimGM6mb.sf2",
        "family": "timgm6mb",
        "package": "PyPI pretty_midi (bundled)",
        "paths": [],  # found next to pretty_midi's __init__.py
    },
}

_INSTALL_HINT = (
    "Install one: `apt-get install -y fluid-soundfont-gm fluidr3mono-gm-soundfont "
    "musescore-general-soundfont-small timgm6mb-soundfont`, or `pip install pretty_midi` (bundles TimGM6mb.sf2)."
)


def check_soundfont_allowed(path: str | os.PathLike) -> Path:
    """Return ``path`` as a Path, or raise UsageError if it is (or links to) csound's reserved sf_GMbank."""
    p = Path(path)
    names = [p.name]
    try:
        names.append(p.resolve().name)
    except OSError:
        pass
    if any("sf_gmbank" in n.lower() for n in names):
        raise UsageError(
            f"Soundfont {p} is csound's sf_GMbank, which is reserved for independent evaluation.",
            hint="Use one of the allowed soundfonts (see sgnsep.synth.SOUNDFONT_FILES).",
        )
    return p


def _pretty_midi_soundfont() -> Path | None:
    import importlib.util

    try:
        spec = importlib.util.find_spec("pretty_midi")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    path = Path(spec.origin).parent / "TimGM6mb.sf2"
    return path if path.is_file() else None


def find_soundfonts() -> dict[str, Path]:
    """The allowed soundfonts present on this machine, as ``{key: path}`` in :data:`SOUNDFONT_FILES` order.

    Looks only at the Debian install paths and pretty_midi's bundled TimGM6mb.sf2; never returns sf_GMbank.
    """
    found: dict[str, Path] = {}
    for key, info in SOUNDFONT_FILES.items():
        candidates = [Path(p) for p in info["paths"]]
        if key == "timgm6mb_pretty_midi":
            pm = _pretty_midi_soundfont()
            candidates = [pm] if pm is not None else []
        for path in candidates:
            if path.is_file():
                try:
                    check_soundfont_allowed(path)
                except UsageError:
                    continue
                found[key] = path
                break
    return found


def _resolve_soundfonts(soundfonts) -> dict[str, Path]:
    found = find_soundfonts()
    if soundfonts is None:
        if not found:
            raise UsageError("No allowed soundfont was found on this machine.", hint=_INSTALL_HINT)
        if "timgm6mb" in found:  # pretty_midi's copy renders the same presets: do not count TimGM twice
            found.pop("timgm6mb_pretty_midi", None)
        return found
    if isinstance(soundfonts, (str, os.PathLike)):
        soundfonts = [soundfonts]
    chosen: dict[str, Path] = {}
    for item in soundfonts:
        if isinstance(item, str) and item in SOUNDFONT_FILES:
            if item not in found:
                raise UsageError(
                    f"Soundfont '{item}' ({SOUNDFONT_FILES[item]['package']}) is not installed; "
                    f"found: {sorted(found) or 'none'}.",
                    hint=_INSTALL_HINT,
                )
            chosen[item] = found[item]
            continue
        path = check_soundfont_allowed(item)
        if not path.is_file():
            raise UsageError(
                f"Soundfont '{item}' is neither a known key ({', '.join(SOUNDFONT_FILES)}) nor an existing file.",
                hint=_INSTALL_HINT,
            )
        add_soundfont_file(chosen, path)
    if not chosen:
        raise UsageError("No soundfont was given.", hint=_INSTALL_HINT)
    return chosen


def add_soundfont_file(chosen: dict[str, Path], path: Path) -> None:
    """Add a soundfont given by path under a key made from its file name, distinct from those in ``chosen``."""
    key = path.stem.lower().replace("-", "_").replace(" ", "_")
    while key in chosen:
        key += "_"
    chosen[key] = path


def _soundfont_family(key: str, path: Path) -> str:
    if key in SOUNDFONT_FILES:
        return SOUNDFONT_FILES[key]["family"]
    for info in SOUNDFONT_FILES.values():
        if info["file"].lower() == path.name.lower():
            return info["family"]
    return path.stem.lower()


# ---------------------------------------------------------------------------------------------------------
# Notes
# ---------------------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------------------

# Loaded soundfonts, per process (loading an sf3 decodes all its Vorbis samples: 1-2.5 s).
_SOUNDFONTS: dict[str, object] = {}


def _fresh_player(soundfont_path: Path, render_rate: int, bank: int, program: int):
    """A tinysoundfont player in a fresh state, with ``bank:program`` on channel 0.

    tinysoundfont's public ``Synth`` loads a file per instance, and its ``reset()`` leaves voice state behind
    (a render differs by up to 1e-4 after other renders). So the file is loaded once into the extension's
    ``SoundFont`` and every render plays on a clone of it (``SoundFont(other)``: shares the samples, fresh
    voices and channels; microseconds), which makes renders independent of what was rendered before.
    """
    from tinysoundfont import _tinysoundfont as tsf

    key = str(soundfont_path)
    if key not in _SOUNDFONTS:
        _SOUNDFONTS[key] = tsf.SoundFont(key)
    player = tsf.SoundFont(_SOUNDFONTS[key])
    player.set_output(tsf.OutputMode.StereoInterleaved, int(render_rate), 0.0)
    player.set_max_voices(256)
    if player.get_preset_index(int(bank), int(program)) < 0:
        raise UsageError(f"Soundfont {soundfont_path.name} has no preset {bank}:{program}.")
    player.channel_set_bank(0, int(bank))
    player.channel_set_preset_number(0, int(program), False)
    return player


def _oversampling(sample_rate: int) -> int:
    return max(1, math.ceil(44100 / sample_rate))


def _decimate(x: np.ndarray, factor: int) -> np.ndarray:
    """Low-pass (Kaiser-windowed sinc, -6 dB at 0.92 x output Nyquist) and keep every ``factor``-th sample."""
    if factor == 1:
        return x
    half = 48 * factor
    n = np.arange(-half, half + 1)
    cutoff = 0.92 * 0.5 / factor  # cycles per input sample
    h = 2.0 * cutoff * np.sinc(2.0 * cutoff * n) * np.kaiser(2 * half + 1, 8.0)
    h /= h.sum()
    # Overlap-add FFT convolution in 16384-point blocks (one big FFT is several times slower).
    taps = len(h)
    nfft = 1 << 14
    step = nfft - taps + 1
    blocks = -(-len(x) // step)
    xp = np.zeros(blocks * step)
    xp[: len(x)] = x
    spec = np.fft.rfft(xp.reshape(blocks, step), nfft, axis=1) * np.fft.rfft(h, nfft)
    yb = np.fft.irfft(spec, nfft, axis=1)
    y = np.zeros(blocks * step + taps - 1)
    y[: blocks * step] = yb[:, :step].reshape(-1)
    # The tail of block b lands on the head of block b + 1 (taps - 1 < step, so tails never overlap).
    y[(np.arange(1, blocks + 1)[:, None] * step + np.arange(taps - 1)[None, :])] += yb[:, step:]
    return y[half : half + len(x) : factor]


def _as_notes(notes) -> list[Note]:
    out = []
    for n in notes:
        pitch, start, duration, velocity = n
        if not 0 <= int(pitch) <= 127:
            raise UsageError(f"Note pitch {pitch} is outside MIDI's 0..127.")
        if start < 0 or duration <= 0:
            raise UsageError(f"Note {tuple(n)} has a negative start or a non-positive duration.")
        out.append(Note(int(pitch), float(start), float(duration), int(np.clip(int(velocity), 1, 127))))
    return out


def render_notes(
    soundfont_path: str | os.PathLike,
    program: int,
    notes: Iterable,
    sample_rate: int = 11025,
    *,
    seconds: float | None = None,
    bank: int = 0,
    tail_seconds: float = 1.0,
    controls: Iterable[tuple] | None = None,
) -> np.ndarray:
    """Render a monophonic (or any) note list with one General MIDI program: float32 mono, ``(samples,)``.

    ``notes`` are :class:`Note` or ``(pitch, start_s, duration_s, velocity)`` tuples. Note-on and note-off
    events fall on exact output samples (``round(t * sample_rate)``). The length is ``seconds`` when given,
    else the last note-off plus ``tail_seconds``. Dry (tinysoundfont has no effects). Rendered at
    ``sample_rate * k`` and decimated (module docstring). Raises UsageError if the soundfont has no such
    preset; returns silence only when the preset itself is silent.

    ``controls`` are channel events ``(time_s, name, *values)`` placed on output samples like the notes and
    applied before the notes of the same sample, in their given order: ``("cc", controller, value)`` (MIDI
    control change; tinysoundfont honours volume 7/39, expression 11/43 and pan 10/42, not modulation 1),
    ``("pitch_wheel", 0..16383)`` (8192 is centred; the default range is +-2 semitones) and
    ``("tuning", semitones)``. Without them the render is the plain one.
    """
    path = check_soundfont_allowed(soundfont_path)
    if not path.is_file():
        raise UsageError(f"Soundfont {path} does not exist.", hint=_INSTALL_HINT)
    notes = _as_notes(notes)
    sample_rate = int(sample_rate)
    factor = _oversampling(sample_rate)
    rate = sample_rate * factor
    if seconds is None:
        end = max((n.start + n.duration for n in notes), default=0.0) + tail_seconds
        n_out = int(round(end * sample_rate))
    else:
        n_out = int(round(seconds * sample_rate))
    n_render = n_out * factor
    player = _fresh_player(path, rate, bank, program)
    events = []  # (render sample, order: offs before ons, kind, pitch, velocity)
    for n in notes:
        on = int(round(n.start * sample_rate))
        off = max(on + 1, int(round((n.start + n.duration) * sample_rate)))
        events.append((on * factor, 1, n.pitch, n.velocity))
        events.append((off * factor, 0, n.pitch, 0))
    for k, control in enumerate(controls or ()):  # kind -1: before the note events of its sample
        if control[1] not in ("cc", "pitch_wheel", "tuning"):
            raise UsageError(f"Unknown control {control[1]!r}; use 'cc', 'pitch_wheel' or 'tuning'.")
        events.append((int(round(float(control[0]) * sample_rate)) * factor, -1, k, control))
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    buf = np.zeros(2 * n_render, dtype=np.float32)  # stereo interleaved, as tinysoundfont writes it
    pos = 0
    for when, kind, pitch, velocity in events:
        when = min(when, n_render)
        if when > pos:
            player.render(memoryview(buf[2 * pos : 2 * when]).cast("B"), False)
            pos = when
        if pos >= n_render:
            break
        if kind == -1:
            _apply_control(player, velocity)
        elif kind:
            player.channel_note_on(0, pitch, velocity / 127.0)
        else:
            player.channel_note_off(0, pitch)
    if pos < n_render:
        player.render(memoryview(buf[2 * pos :]).cast("B"), False)
    mono = buf.reshape(-1, 2).mean(axis=1, dtype=np.float64)
    return _decimate(mono, factor).astype(np.float32)


def _apply_control(player, control: tuple) -> None:
    name = control[1]
    if name == "cc":
        player.channel_midi_control(0, int(control[2]), min(127, max(0, int(control[3]))))
    elif name == "pitch_wheel":
        player.channel_set_pitch_wheel(0, min(16383, max(0, int(control[2]))))
    else:
        player.channel_set_tuning(0, float(control[2]))


# ---------------------------------------------------------------------------------------------------------
# Loudness
# ---------------------------------------------------------------------------------------------------------

LOUDNESS_FRAME_SECONDS = 0.05
LOUDNESS_ABSOLUTE_GATE_DB = -70.0
LOUDNESS_RELATIVE_GATE_DB = -20.0
SILENCE_PEAK = 1e-4  # a render whose peak is below this (-80 dBFS) counts as silent


def active_loudness_db(audio: np.ndarray, sample_rate: int) -> float:
    """Active RMS level in dBFS: mean power of the non-silent 50 ms frames (module docstring). -inf if silent."""
    x = np.asarray(audio, dtype=np.float64).reshape(-1)
    frame = max(1, int(round(LOUDNESS_FRAME_SECONDS * sample_rate)))
    n = len(x) // frame
    if n == 0:
        power = np.array([np.mean(x**2)]) if len(x) else np.zeros(1)
    else:
        power = np.mean(x[: n * frame].reshape(n, frame) ** 2, axis=1)
    power = power[power > 10 ** (LOUDNESS_ABSOLUTE_GATE_DB / 10)]
    if power.size == 0:
        return float("-inf")
    power = power[power >= power.mean() * 10 ** (LOUDNESS_RELATIVE_GATE_DB / 10)]
    return float(10 * np.log10(power.mean()))


def normalise_loudness(
    audio: np.ndarray, sample_rate: int, target_db: float = -23.0, peak_limit: float = 0.99
) -> tuple[np.ndarray, dict]:
    """Scale ``audio`` to ``target_db`` active RMS, lowering the gain if the peak would exceed ``peak_limit``."""
    before = active_loudness_db(audio, sample_rate)
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    if not math.isfinite(before) or peak <= 0:
        info = {"loudness_before_db": None, "loudness_after_db": None, "gain_db": 0.0, "peak": peak}
        return audio, {**info, "peak_limited": False}
    gain = 10 ** ((target_db - before) / 20)
    limited = peak * gain > peak_limit
    if limited:
        gain = peak_limit / peak
    out = (audio.astype(np.float64) * gain).astype(np.float32)
    info = {
        "loudness_before_db": round(before, 3),
        "loudness_after_db": round(active_loudness_db(out, sample_rate), 3),
        "gain_db": round(20 * math.log10(gain), 3),
        "peak": round(float(np.max(np.abs(out))), 5),
        "peak_limited": bool(limited),
    }
    return out, info


# ---------------------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------------------


def _write_wav(path: Path, audio: np.ndarray, sample_rate: int, subtype: str) -> None:
    """Mono WAV, byte-deterministic (libsndfile writes a time stamp into float files)."""
    if subtype == "PCM_16":
        data = np.clip(np.round(audio.astype(np.float64) * 32768.0), -32768, 32767).astype("<i2").tobytes()
        fmt = struct.pack("<HHIIHH", 1, 1, sample_rate, sample_rate * 2, 2, 16)
        chunks = [b"fmt " + struct.pack("<I", len(fmt)) + fmt]
    else:  # FLOAT
        data = audio.astype("<f4").tobytes()
        fmt = struct.pack("<HHIIHHH", 3, 1, sample_rate, sample_rate * 4, 4, 32, 0)
        chunks = [
            b"fmt " + struct.pack("<I", len(fmt)) + fmt,
            b"fact" + struct.pack("<II", 4, len(audio)),
        ]
    chunks.append(b"data" + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b""))
    body = b"WAVE" + b"".join(chunks)
    write_bytes_atomic(path, b"RIFF" + struct.pack("<I", len(body)) + body)


def _write_manifest(manifest: dict, path: Path, started: float, audio_seconds: float) -> dict:
    """Write a corpus's metadata.json (last, so that it exists only for a complete corpus) and return the
    manifest with the run's timing added (not written: the file stays byte-identical between runs)."""
    write_text_atomic(path, json.dumps(manifest, indent=1, sort_keys=True, allow_nan=False) + "\n")
    wall = time.perf_counter() - started
    manifest["timing"] = {
        "wall_seconds": round(wall, 3),
        "audio_seconds": round(audio_seconds, 3),
        "realtime_factor": round(audio_seconds / wall, 1) if wall > 0 else None,
    }
    return manifest


def read_metadata(out_dir: str | os.PathLike) -> dict:
    """The metadata.json of a corpus written by :func:`synthesize_corpus`."""
    path = Path(out_dir) / "metadata.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise UsageError(f"{path} does not exist: is {out_dir} a synthesized corpus?") from exc


# ---------------------------------------------------------------------------------------------------------
# Corpus
# ---------------------------------------------------------------------------------------------------------

SPLITS = ("train", "val", "test")
METADATA_FORMAT = "sgnsep-synth-solos"
METADATA_VERSION = 1


def _resolve_classes(classes) -> list[str]:
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


def _resolve_splits(splits) -> dict[str, float]:
    if isinstance(splits, (tuple, list)):
        if len(splits) != 3:
            raise UsageError("splits must be three fractions (train, val, test) or a dict of them.")
        splits = dict(zip(SPLITS, splits, strict=True))
    unknown = set(splits) - set(SPLITS)
    if unknown:
        raise UsageError(f"Unknown split names {sorted(unknown)}; use {', '.join(SPLITS)}.")
    fr = {s: float(splits.get(s, 0.0)) for s in SPLITS}
    if any(v < 0 for v in fr.values()) or abs(sum(fr.values()) - 1.0) > 1e-6:
        raise UsageError(f"Split fractions must be non-negative and sum to 1, got {fr}.")
    return fr


def _split_counts(n: int, fractions: dict[str, float]) -> dict[str, int]:
    """Largest-remainder rounding; every positive fraction gets at least one clip when n allows."""
    raw = {s: n * f for s, f in fractions.items()}
    counts = {s: int(math.floor(v)) for s, v in raw.items()}
    for s in sorted(SPLITS, key=lambda s: (-(raw[s] - counts[s]), SPLITS.index(s)))[: n - sum(counts.values())]:
        counts[s] += 1
    positive = [s for s in SPLITS if fractions[s] > 0]
    if n >= len(positive):
        for s in positive:
            if counts[s] == 0:
                donor = max(SPLITS, key=lambda d: counts[d])
                counts[donor] -= 1
                counts[s] += 1
    return counts


def _unit_hash(text: str) -> float:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2.0**64


def _chorale_split(chorale_id: str, fractions: dict[str, float]) -> str:
    u = _unit_hash("chorale:" + chorale_id)
    acc = 0.0
    for s in SPLITS:
        acc += fractions[s]
        if u < acc:
            return s
    return [s for s in SPLITS if fractions[s] > 0][-1]


PROBE_QUIET_DB = -60.0  # a preset whose loudest note at velocity 100 is quieter than this is "odd"
PROBE_WEAK_NOTE_DB = 40.0  # a note this far below the loudest one counts as silent
PROBE_SPREAD_DB = 30.0  # notes spread wider than this (at the same velocity) make a preset "uneven"


def probe_preset(
    soundfont_path: str | os.PathLike, instrument: Instrument, sample_rate: int = 11025, *, bank: int = 0
) -> str | None:
    """Why ``instrument`` should not be rendered from this soundfont, or None if it is fine.

    Plays every semitone of the instrument's range at velocity 100 (preset ``bank:instrument.program``) and
    rejects a missing preset, silent notes (40 dB below the loudest), a preset quieter than -60 dBFS, or
    per-note levels spread over 30 dB.
    """
    memo_key = (str(soundfont_path), int(bank), instrument.program, instrument.low, instrument.high, int(sample_rate))
    if memo_key not in _PROBES:
        _PROBES[memo_key] = _probe(Path(soundfont_path), instrument, int(sample_rate), int(bank))
    return _PROBES[memo_key]


_PROBES: dict[tuple, str | None] = {}


def _probe(soundfont_path: Path, instrument: Instrument, sample_rate: int, bank: int = 0) -> str | None:
    step, sound = 0.3, 0.25
    pitches = list(range(instrument.low, instrument.high + 1))
    notes = [Note(p, k * step, sound, 100) for k, p in enumerate(pitches)]
    try:
        audio = render_notes(
            soundfont_path, instrument.program, notes, sample_rate, seconds=len(notes) * step, bank=bank
        )
    except UsageError:
        return f"no preset {bank}:{instrument.program}"
    x = audio.astype(np.float64)
    win = int(0.2 * sample_rate)
    starts = [int(round(k * step * sample_rate)) for k in range(len(pitches))]
    levels = np.array([10 * np.log10(np.mean(x[a : a + win] ** 2) + 1e-20) for a in starts])
    top = float(levels.max())
    if top < -100:
        return f"preset {bank}:{instrument.program} renders silence"
    weak = [p for p, lv in zip(pitches, levels, strict=True) if lv < top - PROBE_WEAK_NOTE_DB]
    if weak:
        return f"silent notes in the range: MIDI {weak[0]}..{weak[-1]} ({len(weak)} notes)"
    if top < PROBE_QUIET_DB:
        return f"very quiet: loudest note {top:.0f} dBFS at velocity 100"
    if top - levels.min() > PROBE_SPREAD_DB:
        return f"uneven: note levels spread over {top - levels.min():.0f} dB at one velocity"
    return None


def _provenance(class_names: list[str], fonts: dict, target_db: float) -> dict:
    """The instruments, soundfonts and loudness rule behind a rendered set, for its metadata.json."""
    return {
        "instruments": {
            c: {
                "program": INSTRUMENTS[c].program,
                "gm_name": INSTRUMENTS[c].gm_name,
                "range": [INSTRUMENTS[c].low, INSTRUMENTS[c].high],
                "sustained": INSTRUMENTS[c].sustained,
            }
            for c in class_names
        },
        "soundfonts": {
            k: {"file": v.name, "path": str(v), "family": _soundfont_family(k, v)} for k, v in fonts.items()
        },
        "loudness": {
            "method": ("active RMS: mean power of 50 ms frames above -70 dBFS and within 20 dB of their mean power"),
            "target_db": target_db,
            "peak_limit": 0.99,
        },
    }


def _own_metadata(path: Path, fmt: str) -> dict | None:
    """The metadata.json at ``path`` if sgnsep wrote it (its "format" is ``fmt``), else None."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) and data.get("format") == fmt else None


def _first_other_file(folder: Path, skip: Callable[[Path], bool] = lambda p: False) -> Path | None:
    """The first file under ``folder`` (sorted walk) that is not the folder's lock, a temporary ``.partial``
    file, or one ``skip`` accepts: a file this command did not write, i.e. one of the user's."""
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = Path(root) / name
            if name == folder_lock.LOCK_NAME or (name.startswith(".") and name.endswith(".partial")) or skip(path):
                continue
            return path
    return None


def _refuse_foreign_corpus_folder(out: Path, fmt: str, overwrite: bool) -> None:
    """A corpus goes into a new or empty folder, or (``overwrite``) over a corpus rendered before. A folder
    that holds other files (a metadata.json of the user's, clips of a render that was killed, anything) is
    refused unless ``overwrite``: rendering writes clips under fixed names, which would replace the user's.
    With ``overwrite`` only the files the render writes are replaced; the others are kept."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out} is a file, not a folder.", hint="Choose a folder with --out.")
    if overwrite or not out.is_dir():
        return
    meta = out / "metadata.json"
    if meta.exists():
        if _own_metadata(meta, fmt) is not None:
            raise OutputError(f"{meta} already exists.", hint="Pass --overwrite to replace that corpus (only its "
                              "own files; others are kept), or choose another directory.")
        raise OutputError(
            f"{meta} exists and is not the metadata of a corpus sgnsep rendered.",
            hint="Choose a new or empty directory, or pass --overwrite to render into this one anyway (its "
            "metadata.json and clips of the corpus's names are replaced; other files are kept).",
        )
    first = _first_other_file(out)
    if first is not None:
        raise OutputError(
            f"{out} holds files but no metadata.json of a finished corpus (e.g. {first}): files of yours, or a "
            "render that was stopped before it finished.",
            hint="Choose a new or empty directory, or pass --overwrite (`sgnsep data synth --overwrite`) to render "
            "into it (only the files of the corpus's names are replaced; others are kept).",
        )


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
    class_names = _resolve_classes(classes)
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
    fractions = _resolve_splits(splits)
    fonts = _resolve_soundfonts(soundfonts)
    clips_per_class, clip_seconds, sample_rate = int(clips_per_class), float(clip_seconds), int(sample_rate)

    out = Path(out_dir)
    meta_path = out / "metadata.json"
    # One render at a time in a corpus folder (sgnsep/folder_lock.py): two would write the same clip names.
    with folder_lock.hold(out, option="--out", what="corpus folder"):
        _refuse_foreign_corpus_folder(out, METADATA_FORMAT, overwrite)
        with NewOutputs() as outputs:  # a stopped run takes away what it wrote: rerun it into the same folder
            try:
                outputs.folder(out)
                if meta_path.exists():
                    # overwrite: the old manifest goes first, so that a stopped run can never leave it describing
                    # new clips under the old names; then the clips of the previous corpus, if sgnsep rendered it
                    # (the clips a metadata.json of the user's lists are the user's)
                    old = _own_metadata(meta_path, METADATA_FORMAT)
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
                    why = probe_preset(path, INSTRUMENTS[c], sample_rate)
                    if why is None:
                        usable[c].append(key)
                    else:
                        skipped_presets.append({"class": c, "soundfont": key, "reason": why})

            # Plan every clip first (cheap), so the chorales needed can be parsed in one go.
            plans = []
            for c in class_names:
                counts = _split_counts(clips_per_class, fractions)
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
                    pools[_chorale_split(cid, fractions)].append(cid)
            for p in plans:
                if p["source"] == "chorale" and not pools[p["split"]]:
                    p["source"] = "random"  # documented fallback: no chorale falls in a tiny split
                if p["source"] == "chorale":
                    pool = pools[p["split"]]
                    p["chorale_candidates"] = [pool[int(j)] for j in p["rng"].permutation(len(pool))[:8]]
                else:
                    p["melody_seed"] = int(p["rng"].integers(0, 2**63 - 1))
            needed = [p["chorale_candidates"][0] for p in plans if p["source"] == "chorale"]
            chorales = load_chorales(needed, cache_path) if needed else {}

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
                families = sorted({_soundfont_family(k, fonts[k]) for k in fonts_ok})
                family = families[int(rng.integers(len(families)))]
                in_family = [k for k in fonts_ok if _soundfont_family(k, fonts[k]) == family]
                font_key = in_family[int(rng.integers(len(in_family)))]
                if p["source"] == "chorale":
                    voices = None
                    for cid in p["chorale_candidates"]:
                        voices = chorales.get(cid) if cid in chorales else load_chorales([cid], cache_path)[cid]
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
                audio = render_notes(fonts[font_key], inst.program, notes, sample_rate, seconds=clip_seconds)
                if float(np.max(np.abs(audio))) < SILENCE_PEAK:
                    skipped_clips.append({"clip_id": clip_id, "soundfont": font_key, "reason": "silent render"})
                    if progress:
                        progress(done, len(plans))
                    continue
                audio, loud = normalise_loudness(audio, sample_rate, target_db)
                rel = f"{c}/{clip_id}.wav"
                _write_wav(outputs.add(out / rel), audio, sample_rate, subtype)
                audio_seconds += len(audio) / sample_rate
                pitches = [n.pitch for n in notes]
                rec = {
                    "clip_id": clip_id,
                    "path": rel,
                    "class": c,
                    "split": p["split"],
                    "soundfont": font_key,
                    "soundfont_file": fonts[font_key].name,
                    "soundfont_family": _soundfont_family(font_key, fonts[font_key]),
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
                **_provenance(class_names, fonts, float(target_db)),
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
            return _write_manifest(manifest, outputs.add(meta_path), t0, audio_seconds)


# ---------------------------------------------------------------------------------------------------------
# Stems of chorales: an evaluation set of real four-part music
# ---------------------------------------------------------------------------------------------------------

STEMS_FORMAT = "sgnsep-chorale-stems"
STEMS_VERSION = 1
#: Soundfonts :func:`render_chorale_stems` draws from by default (both families of the corpus).
STEMS_SOUNDFONTS = ("fluidr3_gm", "musescore_general_lite", "timgm6mb")
#: The split fractions of :func:`synthesize_corpus`'s default, which decide the split of every chorale.
DEFAULT_SPLIT_FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}
STEMS_TARGET_DB = -23.0  # the corpus's loudness target
STEMS_FORMATS = {"flac": ("PCM_16", "PCM_24"), "wav": ("PCM_16", "FLOAT")}
_STEMS_OCTAVE_WEIGHT = 0.25  # a class that needs k octaves of transposition is drawn 0.25**k as often


def _stems_soundfonts(soundfonts) -> dict[str, Path]:
    if soundfonts is not None:
        return _resolve_soundfonts(soundfonts)
    found = find_soundfonts()
    chosen = {k: found[k] for k in STEMS_SOUNDFONTS if k in found}
    if "timgm6mb" not in chosen and "timgm6mb_pretty_midi" in found:
        chosen["timgm6mb_pretty_midi"] = found["timgm6mb_pretty_midi"]
    if not chosen:
        raise UsageError(
            f"None of the soundfonts {', '.join(STEMS_SOUNDFONTS)} was found on this machine.", hint=_INSTALL_HINT
        )
    return chosen


def _chorale_time_map(voices: dict, seconds_per_beat: float, fermata_factor: float) -> Callable[[float], float]:
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


def _assign_instruments(
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


def _write_stem(path: Path, audio: np.ndarray, sample_rate: int, fmt: str, subtype: str) -> None:
    """One mono stem, byte-deterministic. FLAC through libsndfile (it writes no time stamp into FLAC; the
    samples are quantised here, as the WAV writer does, so both formats hold the same integers)."""
    if fmt == "wav":
        _write_wav(path, audio, sample_rate, subtype)
        return
    import soundfile as sf

    x = audio.astype(np.float64)
    if subtype == "PCM_16":
        data = np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)
    else:  # PCM_24, passed as the top 24 bits of int32 (libsndfile shifts them down)
        data = np.clip(np.round(x * 8388608.0), -8388608, 8388607).astype(np.int32) << 8
    encoded = io.BytesIO()
    sf.write(encoded, data, sample_rate, format="FLAC", subtype=subtype)
    write_bytes_atomic(path, encoded.getvalue())


def _clear_chorale_folder(out: Path, overwrite: bool) -> None:
    """A chorale set needs a folder of its own (the evaluator reads every folder in it as a track): new, empty,
    or (``overwrite``) one that holds a set rendered before, whose files are removed first (the manifest
    first, so that a stop half-way never leaves it describing missing tracks). Other files are never removed:
    a folder that holds any is refused."""
    if not out.is_dir():
        return
    meta_path = out / "metadata.json"
    old = _own_metadata(meta_path, STEMS_FORMAT)
    if old is None or not overwrite:
        first = _first_other_file(out)
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
    stray = _first_other_file(out, skip=lambda p: p.resolve() in listed or p == meta_path)
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

    Each track is ONE Bach chorale of ``split`` (decided by :func:`_chorale_split` with the corpus's default
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
    class_names = _resolve_classes(classes)
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
    fonts = _stems_soundfonts(soundfonts)
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
                    why = probe_preset(path, INSTRUMENTS[c], sample_rate)
                    if why is None:
                        usable[key].append(c)
                    else:
                        skipped_presets.append({"class": c, "soundfont": key, "reason": why})
            fonts_ok = [k for k in fonts if len(usable[k]) >= num_sources]
            if not fonts_ok:
                raise UsageError(f"No soundfont renders {num_sources} of the classes {', '.join(class_names)}.")

            pool = [cid for cid in dict.fromkeys(chorale_ids()) if _chorale_split(cid, fractions) == split]
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
                voices = load_chorales([cid])[cid]
                if not voices:
                    skipped_tracks.append({"chorale": cid, "reason": "chorale cannot be parsed"})
                    continue
                families = sorted({_soundfont_family(k, fonts[k]) for k in fonts_ok})
                family = families[int(rng.integers(len(families)))]
                in_family = [k for k in fonts_ok if _soundfont_family(k, fonts[k]) == family]
                font_key = in_family[int(rng.integers(len(in_family)))]
                chosen = [VOICES[int(i)] for i in sorted(rng.choice(len(VOICES), num_sources, replace=False))]
                bpm = float(rng.uniform(*CHORALE_TEMPO_BPM))
                fermata_factor = float(rng.uniform(*FERMATA_FACTOR))
                to_seconds = _chorale_time_map(voices, 60.0 / bpm, fermata_factor)
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
                assignment = _assign_instruments(pitches_by_voice, usable[font_key], uses, rng)
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
                    audio = render_notes(fonts[font_key], inst.program, notes, sample_rate, seconds=seconds)
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
                    _write_stem(outputs.add(out / rel), audio, sample_rate, fmt, subtype)
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
                        "split": _chorale_split(cid, fractions),
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
                        "soundfont_family": _soundfont_family(font_key, fonts[font_key]),
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
                **_provenance(class_names, fonts, STEMS_TARGET_DB),
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
            return _write_manifest(manifest, outputs.add(out / "metadata.json"), t0, audio_seconds)
