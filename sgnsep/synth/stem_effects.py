"""Per-stem processing of the music corpus: what a microphone in a room adds to a dry soundfont render.

Each stem (one instrument of one track) goes through, in this order::

    dry render  ->  random EQ  ->  room reverb  ->  noise  ->  (loudness and gain: sgnsep.synth)

EQ
    A low shelf, a peaking band and a high shelf (RBJ audio-EQ-cookbook biquads) with random corner
    frequencies and gains: the colour of a microphone and its placement, which soundfont renders lack.
Room reverb
    One room per track (its RT60, and whether it has one at all), one impulse response per stem (its own
    noise, pre-delay and direct-to-reverberant ratio: another place in the room). The response is exponentially
    decaying noise in three bands whose decay times fall with frequency (air and walls absorb highs first),
    after a direct impulse and a few early reflections. The wet stem is the dry one convolved with it, so
    stems stay additive: a track's mixture is the sum of its (wet) stems, as in a real multitrack recording
    with one room.
Noise
    Some stems get a floor of pink or white noise at a random signal-to-noise ratio against the stem's active
    loudness (:func:`sgnsep.synth.active_loudness_db`).

The ranges are design choices (plausible rooms and microphones), not measurements. Every parameter drawn is
returned for the corpus manifest. Deterministic in the generator passed; no state between stems.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import signal

from sgnsep.synth.loudness import active_loudness_db

__all__ = ["draw_room", "apply_effects", "peaking", "shelf", "room_impulse_response"]


def _biquad(b, a) -> np.ndarray:
    b, a = np.asarray(b, dtype=np.float64), np.asarray(a, dtype=np.float64)
    return np.concatenate([b / a[0], a / a[0]])[None, :]


def peaking(freq: float, gain_db: float, q: float, sample_rate: int) -> np.ndarray:
    """One peaking-EQ biquad as a second-order section (RBJ cookbook)."""
    big_a = 10 ** (gain_db / 40)
    w = 2 * math.pi * freq / sample_rate
    alpha = math.sin(w) / (2 * q)
    c = math.cos(w)
    return _biquad([1 + alpha * big_a, -2 * c, 1 - alpha * big_a], [1 + alpha / big_a, -2 * c, 1 - alpha / big_a])


def shelf(freq: float, gain_db: float, sample_rate: int, *, high: bool) -> np.ndarray:
    """One shelving biquad (slope 1, RBJ cookbook): ``high`` for a high shelf, else a low shelf."""
    big_a = 10 ** (gain_db / 40)
    w = 2 * math.pi * freq / sample_rate
    c, s = math.cos(w), math.sin(w)
    alpha = s / 2 * math.sqrt(2)
    sq = 2 * math.sqrt(big_a) * alpha
    sign = -1 if high else 1
    b = [big_a * ((big_a + 1) - sign * (big_a - 1) * c + sq),
         sign * 2 * big_a * ((big_a - 1) - sign * (big_a + 1) * c),
         big_a * ((big_a + 1) - sign * (big_a - 1) * c - sq)]
    a = [(big_a + 1) + sign * (big_a - 1) * c + sq,
         -sign * 2 * ((big_a - 1) + sign * (big_a + 1) * c),
         (big_a + 1) + sign * (big_a - 1) * c - sq]
    return _biquad(b, a)


def draw_room(rng: np.random.Generator) -> dict:
    """A track's room: ``{"rt60": seconds or 0 (no room: a dry close-miked recording)}``."""
    if rng.random() < 0.15:
        return {"rt60": 0.0}
    return {"rt60": round(float(np.exp(rng.uniform(math.log(0.2), math.log(2.0)))), 4)}


def room_impulse_response(rt60: float, sample_rate: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """A synthetic room response with a unit direct impulse (module docstring) and what was drawn."""
    predelay = float(rng.uniform(0.005, 0.03))
    drr_db = float(rng.uniform(-3.0, 12.0))  # direct-to-reverberant energy ratio
    hf_ratio = float(rng.uniform(0.35, 0.8))  # high band's decay time / the low band's
    length = int(min(2.5, 1.1 * rt60) * sample_rate) + 1
    t = np.arange(length) / sample_rate
    bands = ((None, 500.0, 1.0), (500.0, 2500.0, (1 + hf_ratio) / 2), (2500.0, None, hf_ratio))
    tail = np.zeros(length)
    nyq = sample_rate / 2
    for lo, hi, ratio in bands:
        noise = rng.standard_normal(length)
        if lo is not None and lo >= nyq * 0.95:
            continue
        hi_ok = hi is not None and hi < nyq * 0.95
        if lo is None:
            sos = signal.butter(2, hi / nyq, "lowpass", output="sos")
        elif hi_ok:
            sos = signal.butter(2, [lo / nyq, hi / nyq], "bandpass", output="sos")
        else:
            sos = signal.butter(2, lo / nyq, "highpass", output="sos")
        tail += signal.sosfilt(sos, noise) * np.exp(-6.9078 * t / (rt60 * ratio))  # -60 dB at the band's RT60
    onset = int(predelay * sample_rate)
    tail[:onset] = 0.0
    tail[onset:] *= np.minimum(1.0, (t[onset:] - predelay) / 0.005)  # no click where the tail starts
    for _ in range(4):  # early reflections: sparse taps in the first 40 ms after the pre-delay
        k = onset + int(rng.uniform(0.0, 0.04) * sample_rate)
        if k < length:
            tail[k] += float(rng.uniform(-0.5, 0.5))
    energy = float(np.sum(tail**2))
    if energy > 0:
        tail *= math.sqrt(10 ** (-drr_db / 10) / energy)
    ir = tail
    ir[0] += 1.0
    return ir, {"predelay_seconds": round(predelay, 4), "drr_db": round(drr_db, 3), "hf_decay_ratio": round(hf_ratio, 3)}


def _noise(n: int, rng: np.random.Generator, colour: str) -> np.ndarray:
    white = rng.standard_normal(n)
    if colour == "white":
        return white
    spec = np.fft.rfft(white)
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    return np.fft.irfft(spec / np.sqrt(f), n)  # 1/f power: pink


def apply_effects(
    audio: np.ndarray, sample_rate: int, room: dict, rng: np.random.Generator, *, noise_probability: float = 0.5
) -> tuple[np.ndarray, dict]:
    """EQ, reverb (in ``room``) and, with ``noise_probability``, noise on one dry stem -> (the wet stem, same
    length, float64; params)."""
    x = np.asarray(audio, dtype=np.float64)
    nyq = sample_rate / 2
    low = (float(np.exp(rng.uniform(math.log(80.0), math.log(300.0)))), float(rng.uniform(-6.0, 6.0)))
    mid = (float(np.exp(rng.uniform(math.log(300.0), math.log(min(3000.0, 0.6 * nyq))))),
           float(rng.uniform(-6.0, 6.0)), float(rng.uniform(0.7, 2.0)))
    high = (float(rng.uniform(0.35, 0.8)) * nyq, float(rng.uniform(-8.0, 4.0)))
    sos = np.concatenate([
        shelf(low[0], low[1], sample_rate, high=False),
        peaking(mid[0], mid[1], mid[2], sample_rate),
        shelf(high[0], high[1], sample_rate, high=True),
    ])
    y = signal.sosfilt(sos, x)
    params = {
        "eq": {
            "low_shelf_hz": round(low[0], 2), "low_shelf_db": round(low[1], 3),
            "peak_hz": round(mid[0], 2), "peak_db": round(mid[1], 3), "peak_q": round(mid[2], 3),
            "high_shelf_hz": round(high[0], 2), "high_shelf_db": round(high[1], 3),
        },
    }
    if room.get("rt60", 0.0) > 0:
        ir, reverb = room_impulse_response(float(room["rt60"]), sample_rate, rng)
        y = signal.oaconvolve(y, ir)[: len(y)]
        params["reverb"] = {"rt60": room["rt60"], **reverb}
    else:
        params["reverb"] = None
    if rng.random() < noise_probability:
        colour = "pink" if rng.random() < 0.6 else "white"
        snr = float(rng.uniform(30.0, 60.0))
        level = active_loudness_db(y, sample_rate)
        noise = _noise(len(y), rng, colour)
        rms = float(np.sqrt(np.mean(noise**2))) or 1.0
        if math.isfinite(level):
            y = y + noise / rms * 10 ** ((level - snr) / 20)
        params["noise"] = {"colour": colour, "snr_db": round(snr, 3)}
    else:
        params["noise"] = None
    return y, params
