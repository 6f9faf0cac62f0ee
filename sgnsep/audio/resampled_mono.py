"""Mono audio at the model's sample rate, read block by block from a file or an array.

Detection, the separation figures and the embedding pictures look at a recording the way the network does:
the mean of its channels at the model's rate (11025 Hz for the default model). They read it in blocks so
that memory stays that of one block, however long the file.

Each block is resampled with a margin of context on both sides, and its start is aligned to a whole period
of the rate conversion, so a block read on its own equals the same span of a whole-file conversion (up to
the resampling filter's rounding): no seams between blocks.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from sgnsep.audio import audio_io, resample
from sgnsep.core.errors import InputAudioError

# Input samples of context read on each side of a block, in units of the rate ratio: well over the
# width of torchaudio's default resampling filter (6 zero crossings).
_CONTEXT_PERIODS = 64


@dataclass
class ResampledMono:
    """``read(start, stop)`` returns model-rate mono samples [start, stop) as float32, zeros past the end.

    read_input(a, b) gives input samples [a, b) as (channels, b - a) float32; ``total_input`` is their
    number and ``input_rate`` their rate.
    """

    read_input: Callable[[int, int], np.ndarray]
    total_input: int
    input_rate: int
    rate: int
    name: str = "The audio"

    @classmethod
    def from_file(cls, path: str | os.PathLike, rate: int) -> "ResampledMono":
        info = audio_io.probe(path)
        problem = resample.rate_problem(info.sample_rate, rate)
        if problem:
            raise InputAudioError(
                f"{path}: {problem}.", hint="Resample it to a usual rate (e.g. 44100 or 48000 Hz) first."
            )
        return cls(lambda a, b: audio_io.read_block(info.path, a, b), info.frames, info.sample_rate, rate, str(path))

    @classmethod
    def from_array(cls, audio: np.ndarray, sample_rate: int, rate: int, name: str = "The audio") -> "ResampledMono":
        """audio (samples,) or (channels, samples)."""
        array = np.atleast_2d(np.asarray(audio, dtype=np.float32))
        return cls(lambda a, b: array[:, a:b], array.shape[-1], int(sample_rate), rate, name)

    @property
    def _gcd(self) -> int:
        return math.gcd(self.input_rate, self.rate)

    @property
    def total(self) -> int:
        """Length at the model rate (rounded up, as the separation's plan counts it)."""
        return -(-self.total_input * self.rate // self.input_rate)

    @property
    def seconds(self) -> float:
        return self.total_input / self.input_rate

    def read(self, start: int, stop: int) -> np.ndarray:
        out = np.zeros(max(0, stop - start), dtype=np.float32)
        if stop <= start or start >= self.total:
            return out
        period_in = self.input_rate // self._gcd  # input samples per whole period of the conversion
        period_out = self.rate // self._gcd
        context = period_in * math.ceil(_CONTEXT_PERIODS * max(1.0, self.input_rate / self.rate) / period_in)
        first_period = max(0, start // period_out * period_in - context) // period_in
        a = first_period * period_in
        b = min(self.total_input, -(-stop * self.input_rate // self.rate) + context)
        block = self.read_input(a, b)
        mono = torch.from_numpy(np.ascontiguousarray(block.mean(axis=0), dtype=np.float32))
        mono = resample.resample(mono, self.input_rate, self.rate)
        mono = mono.numpy()
        offset = first_period * period_out  # model-rate index of mono[0]
        lo, hi = start - offset, min(stop, self.total) - offset
        piece = mono[lo:hi]
        out[: len(piece)] = piece
        if not np.isfinite(out).all():
            raise InputAudioError(
                f"{self.name}: its samples are too large to process (audio is expected within about -1..1).",
                hint="Normalise it (re-export it at a sensible level) first.",
            )
        return out
