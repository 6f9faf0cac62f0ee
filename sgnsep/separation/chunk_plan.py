"""How one file is cut for the model and for memory: segments, chunks and the lengths of both.

The model sees fixed segments of 256 STFT frames (about 5.9 s at 11025 Hz). A file is covered by segments
on one global frame grid with ``overlap`` frames of overlap; the masks of overlapping segments are blended
with trapezoidal weights (:func:`segment_weights`).

Memory stays flat in the file's length because the file is processed in chunks. Chunk boundaries lie on a
grid where the input rate, the model rate, the model hop and the input hop all align, and every chunk
reads enough context on both sides that each output sample it keeps depends on exactly the same data as in
a whole-file pass: chunked output equals whole-file output up to float rounding (no seams, no crossfade).
:class:`ChunkPlan` holds those lengths; :mod:`sgnsep.separation.overlap_add` runs one chunk.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Iterator

import torch

from sgnsep.models.config import AudioConfig


def _lcm(a: int, b: int) -> int:
    return a * b // math.gcd(a, b)


# Model hops per hop of the input-rate STFT that masks the stems. Its window spans four model hops, like the
# model's own STFT; its hop spans two, i.e. 50 % overlap (at 44.1 kHz: 4096-point frames every 2048 samples).
# Each frame's mask is the model's at the frame under its centre. A step of one (75 % overlap) costs every
# requested class twice the inverse FFTs and overlap-add for 0.05 dB more SDRi on the 2-source test set and
# 0.02 dB on the 3-source one (weights.md; ``make_plan(..., synthesis_step=1)`` gives it).
SYNTHESIS_STEP = 2


@dataclass(frozen=True)
class ChunkPlan:
    """Every length of one file's processing, in input samples (``_in``) or model samples/frames.

    The derived lengths are computed once per plan (``frame_in`` searches the divisors of the resampler's
    period, and a chunk asks for them thousands of times).
    """

    input_rate: int
    audio: AudioConfig
    total_in: int  # samples in the input file
    overlap_frames: int  # segment overlap, model frames
    chunk_units: int  # chunk length in alignment units
    synthesis_step: int = SYNTHESIS_STEP  # model hops per hop of the input-rate STFT

    @property
    def model_rate(self) -> int:
        return self.audio.sample_rate

    @cached_property
    def _g(self) -> int:
        return math.gcd(self.input_rate, self.model_rate)

    @cached_property
    def _period_in(self) -> int:
        """Input samples that hold a whole number of resampler periods and of model hops."""
        unit_model = _lcm(self.model_rate // self._g, self.audio.hop_length)
        return unit_model // (self.model_rate // self._g) * (self.input_rate // self._g)

    @cached_property
    def frame_in(self) -> int:
        """Input samples per model hop: the divisor of ``_period_in`` closest to the model hop's duration."""
        target = self.audio.hop_length * self.input_rate / self.model_rate
        best = 1
        for d in range(1, int(math.isqrt(self._period_in)) + 1):
            if self._period_in % d == 0:
                for cand in (d, self._period_in // d):
                    if abs(math.log(cand / target)) < abs(math.log(best / target)):
                        best = cand
        return best

    @cached_property
    def unit_in(self) -> int:
        """Alignment unit in input samples: whole resampler periods, model hops and input-STFT hops (chunks,
        their context and so every span start lie on all three grids)."""
        return _lcm(self._period_in, self.hop_in)

    @property
    def hop_in(self) -> int:
        """Hop of the input-rate STFT that masks the stems."""
        return self.synthesis_step * self.frame_in

    @property
    def n_fft_in(self) -> int:
        return 4 * self.frame_in  # Hann window of four model hops, like the model's own STFT

    @property
    def total_model(self) -> int:
        return -(-self.total_in * self.model_rate // self.input_rate)

    @property
    def total_frames(self) -> int:
        return 1 + self.total_model // self.audio.hop_length

    @property
    def segment_frames(self) -> int:
        return self.audio.segment_frames

    @property
    def stride_frames(self) -> int:
        return self.segment_frames - self.overlap_frames

    @property
    def final_segment_start(self) -> int:
        """Start frame of the file's last segment, which ends on its last frame (see segment_layout)."""
        return max(0, self.total_frames - self.segment_frames)

    @cached_property
    def context_in(self) -> int:
        """Context read on each side of a chunk, a whole number of units.

        Enough for: the segments touching the kept frames (one segment, plus 2 frames for interpolation),
        the model STFT window, the resampler's filter and the input STFT window.
        """
        need_model = (self.segment_frames + 4) * self.audio.hop_length + self.audio.n_fft
        need_in = need_model * self.input_rate / self.model_rate + self.n_fft_in + 64 * self.input_rate // self._g
        return self.unit_in * math.ceil(need_in / self.unit_in)

    @property
    def chunk_in(self) -> int:
        return self.unit_in * self.chunk_units

    def chunks(self) -> Iterator[tuple[int, int, int, int]]:
        """(read_start, read_stop, keep_start, keep_stop) in input samples, in order."""
        for keep_start in range(0, self.total_in, self.chunk_in):
            keep_stop = min(self.total_in, keep_start + self.chunk_in)
            yield (
                max(0, keep_start - self.context_in),
                min(self.total_in, keep_stop + self.context_in),
                keep_start,
                keep_stop,
            )


def make_plan(
    input_rate: int,
    total_in: int,
    audio: AudioConfig,
    *,
    overlap: float = 0.25,
    chunk_seconds: float = 60.0,
    synthesis_step: int = SYNTHESIS_STEP,
) -> ChunkPlan:
    frames = audio.segment_frames
    overlap_frames = int(round(overlap * frames))
    overlap_frames = min(max(overlap_frames, 0), frames - 1)
    probe = ChunkPlan(input_rate, audio, total_in, overlap_frames, 1, synthesis_step)
    # A chunk longer than the file is the whole file (and a huge --chunk-seconds must not overflow).
    units = max(1, math.ceil(min(chunk_seconds * input_rate, total_in) / probe.unit_in))
    return ChunkPlan(input_rate, audio, total_in, overlap_frames, units, synthesis_step)


def segment_weights(plan: ChunkPlan, device, dtype) -> torch.Tensor:
    """Trapezoid over a segment's frames: ramps of ``overlap`` frames, strictly positive everywhere."""
    n, o = plan.segment_frames, plan.overlap_frames
    w = torch.ones(n, device=device, dtype=dtype)
    if o > 0:
        ramp = (torch.arange(o, device=device, dtype=dtype) + 0.5) / o
        w[:o] = ramp
        w[n - o :] = ramp.flip(0)
    return w


def segments_reaching(plan: ChunkPlan, keep_start: int, keep_stop: int) -> list[int]:
    """Global start frames of the segments whose masks reach input samples [keep_start, keep_stop): those
    touching the model frames (plus 2 for interpolation) under the input frames overlapping them.

    The segments of a file are those of :func:`segment_layout`.
    """
    ratio = plan.model_rate / plan.input_rate
    hop = plan.audio.hop_length
    lo = (keep_start - plan.n_fft_in) * ratio / hop - 2
    hi = (keep_stop + plan.n_fft_in) * ratio / hop + 2
    final = plan.final_segment_start
    first = max(0, math.floor((lo - plan.segment_frames) / plan.stride_frames) + 1)
    last = math.floor(hi / plan.stride_frames)
    starts = [s for s in (j * plan.stride_frames for j in range(first, last + 1)) if s < final]
    if lo - plan.segment_frames < final <= hi:
        starts.append(final)
    return starts


def segment_layout(plan: ChunkPlan) -> list[int]:
    """Start frames of every segment the network sees for one file: every ``stride`` frames, then one
    ending on the file's last frame.

    The last segment ends with the file rather than running past it: a segment that is mostly zero padding
    is unlike anything the model was trained on, and its masks (blended into the file's last seconds) cost
    the 6-second test tracks about 1 dB of SDR. Only a file shorter than one segment is padded.
    """
    return list(range(0, plan.final_segment_start, plan.stride_frames)) + [plan.final_segment_start]
