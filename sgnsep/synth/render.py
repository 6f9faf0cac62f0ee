"""Notes to audio with tinysoundfont, and the check that a soundfont's preset is fit to render a class.

tinysoundfont has no reverb or chorus unit, so every stem is dry. Note events are placed on exact sample
positions of the output rate. To avoid the aliasing of tinysoundfont's linear-interpolation resampler, audio
is rendered at ``sample_rate * k`` (k = ceil(44100 / sample_rate), 4 at 11025 Hz) and decimated with a
linear-phase Kaiser-windowed sinc low-pass (-6 dB at 0.92 x the output Nyquist, flat to 0.87, -80 dB from
0.98). tinysoundfont renders stereo; the mono stem is (L + R) / 2. FluidR3_GM's stereo sample pairs
(strings, flute, oboe, bassoon, piano) partly cancel in that downmix (1.4..2.9 dB on average), as a spaced
microphone pair would; the loudness normalisation makes up the level. Every render plays on a fresh clone of
the loaded soundfont, so it depends only on its own notes. Rendering runs in the calling process (the
soundfont cache is per process and not thread-safe).

Before rendering, each (class, soundfont) pair is probed by :func:`probe_preset` (every semitone of the
range at velocity 100): a missing or silent preset, silent notes inside the range, a preset quieter than
-60 dBFS or note levels spread over 30 dB exclude that soundfont for that class (listed in the metadata
under ``skipped.presets``). With the Debian soundfonts this excludes MuseScore_General_Lite's Grand Piano
(note levels spread over 37 dB, 15-30 dB quieter than the others under tinysoundfont).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from sgnsep.core.errors import UsageError
from sgnsep.synth.instruments import Instrument
from sgnsep.synth.scores import Note
from sgnsep.synth.soundfonts import INSTALL_HINT, check_soundfont_allowed


# Loaded soundfonts, per process (loading an sf3 decodes all its Vorbis samples: 1-2.5 s).
LOADED_SOUNDFONTS: dict[str, object] = {}


def _fresh_player(soundfont_path: Path, render_rate: int, bank: int, program: int):
    """A tinysoundfont player in a fresh state, with ``bank:program`` on channel 0.

    tinysoundfont's public ``Synth`` loads a file per instance, and its ``reset()`` leaves voice state behind
    (a render differs by up to 1e-4 after other renders). So the file is loaded once into the extension's
    ``SoundFont`` and every render plays on a clone of it (``SoundFont(other)``: shares the samples, fresh
    voices and channels; microseconds), which makes renders independent of what was rendered before.
    """
    from tinysoundfont import _tinysoundfont as tsf

    key = str(soundfont_path)
    if key not in LOADED_SOUNDFONTS:
        LOADED_SOUNDFONTS[key] = tsf.SoundFont(key)
    player = tsf.SoundFont(LOADED_SOUNDFONTS[key])
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
        raise UsageError(f"Soundfont {path} does not exist.", hint=INSTALL_HINT)
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


SILENCE_PEAK = 1e-4  # a render whose peak is below this (-80 dBFS) counts as silent


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
