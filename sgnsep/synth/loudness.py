"""Loudness normalisation: General MIDI presets differ by up to 30 dB in level, so every clip is brought to
the same "active RMS".

:func:`active_loudness_db` is the mean power of the 50 ms frames that are not silence (above -70 dBFS) and
not more than 20 dB below the mean power of those frames (this drops rests and release tails, like the
gating of EBU R128 but without its K-weighting). :func:`normalise_loudness` brings a clip to ``target_db``;
when that would push a sample peak above 0.99 the gain is lowered to keep the peak at 0.99 and the clip is
marked ``peak_limited`` (its loudness is then below the target; the metadata records both values).
"""

from __future__ import annotations

import math

import numpy as np


LOUDNESS_FRAME_SECONDS = 0.05


LOUDNESS_ABSOLUTE_GATE_DB = -70.0


LOUDNESS_RELATIVE_GATE_DB = -20.0


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
