"""Sample-rate conversion to and from the model's rate (torchaudio's polyphase sinc filter), and the rates
sgnsep refuses.
"""

from __future__ import annotations

import math

import torch


# Input rates are converted to the model rate by a polyphase filter of (input/g) x (model/g) taps, with g
# their greatest common divisor; every usual rate (8 to 768 kHz) needs under 2 million. A rate that needs far
# more (44101 Hz, or a damaged header) would take gigabytes, so it is refused with a message instead. So are
# rates below 1 kHz (damaged headers again): 4000 samples "at 1 Hz" would be processed as 67 minutes of audio.
MAX_RESAMPLE_TERMS = 1 << 22
MIN_INPUT_RATE = 1_000
MAX_INPUT_RATE = 2_000_000


def rate_problem(input_rate: int, model_rate: int) -> str | None:
    """Why audio at ``input_rate`` cannot be processed by a model at ``model_rate``, or None if it can."""
    if not MIN_INPUT_RATE <= input_rate <= MAX_INPUT_RATE:
        return f"its sample rate of {input_rate} Hz is outside the {MIN_INPUT_RATE} Hz to {MAX_INPUT_RATE} Hz sgnsep handles"
    g = math.gcd(int(input_rate), int(model_rate))
    if (input_rate // g) * (model_rate // g) > MAX_RESAMPLE_TERMS:
        return (
            f"its sample rate of {input_rate} Hz is not one sgnsep can convert to the model's {model_rate} Hz "
            "efficiently"
        )
    return None


def resample(wave: torch.Tensor, orig: int, new: int) -> torch.Tensor:
    """``wave`` (..., time) from ``orig`` Hz to ``new`` Hz; the same tensor when the rates are equal."""
    if orig == new:
        return wave
    import torchaudio.functional as AF

    return AF.resample(wave, orig, new)
