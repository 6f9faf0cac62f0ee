"""Long files: segments for the model, chunks for memory, and masks applied at the input's own rate.

The model sees fixed segments of 256 STFT frames (about 5.9 s at 11025 Hz). A file is covered by segments
on one global frame grid with ``overlap`` frames of overlap; the masks of overlapping segments are blended
with trapezoidal weights. Masks live on the model's (time, frequency) grid; they are mapped by linear
interpolation onto the STFT grid of every input channel at the input's own sample rate, so the stems keep
the input's rate, channels and full band (above the model's 5.5 kHz Nyquist the top bin's mask is used)
and ``stems + residual == input`` exactly.

Memory stays flat in the file's length because the file is processed in chunks. Chunk boundaries lie on a
grid where the input rate, the model rate, the model hop and the input hop all align, and every chunk
reads enough context on both sides that each output sample it keeps depends on exactly the same data as in
a whole-file pass: chunked output equals whole-file output up to float rounding (no seams, no crossfade).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Callable, Iterator

import torch
import torch.nn.functional as F

from sgnsep import frontend
from sgnsep.config import AudioConfig

# How the caller computes masks: (B, 1, W, T) network input -> (B, N, W, T) masks in [0, 1].
MaskFn = Callable[[torch.Tensor], torch.Tensor]


def _lcm(a: int, b: int) -> int:
    return a * b // math.gcd(a, b)


@dataclass(frozen=True)
class ChunkPlan:
    """Every length of one file's processing, in input samples (``_in``) or model samples/frames.

    The derived lengths are computed once per plan (``hop_in`` searches the divisors of the alignment unit,
    and a chunk asks for them thousands of times).
    """

    input_rate: int
    audio: AudioConfig
    total_in: int  # samples in the input file
    overlap_frames: int  # segment overlap, model frames
    chunk_units: int  # chunk length in alignment units

    @property
    def model_rate(self) -> int:
        return self.audio.sample_rate

    @cached_property
    def _g(self) -> int:
        return math.gcd(self.input_rate, self.model_rate)

    @cached_property
    def unit_model(self) -> int:
        """Alignment unit in model samples: a whole number of resampler periods and of model hops."""
        return _lcm(self.model_rate // self._g, self.audio.hop_length)

    @cached_property
    def unit_in(self) -> int:
        return self.unit_model // (self.model_rate // self._g) * (self.input_rate // self._g)

    @cached_property
    def hop_in(self) -> int:
        """Hop of the input-rate STFT: the divisor of the alignment unit closest to the model hop's duration."""
        target = self.audio.hop_length * self.input_rate / self.model_rate
        best = 1
        for d in range(1, int(math.isqrt(self.unit_in)) + 1):
            if self.unit_in % d == 0:
                for cand in (d, self.unit_in // d):
                    if abs(math.log(cand / target)) < abs(math.log(best / target)):
                        best = cand
        return best

    @property
    def n_fft_in(self) -> int:
        return 4 * self.hop_in  # Hann window at 75 % overlap: exact overlap-add inversion

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


def make_plan(
    input_rate: int,
    total_in: int,
    audio: AudioConfig,
    *,
    overlap: float = 0.25,
    chunk_seconds: float = 60.0,
) -> ChunkPlan:
    frames = audio.segment_frames
    overlap_frames = int(round(overlap * frames))
    overlap_frames = min(max(overlap_frames, 0), frames - 1)
    probe = ChunkPlan(input_rate, audio, total_in, overlap_frames, 1)
    # A chunk longer than the file is the whole file (and a huge --chunk-seconds must not overflow).
    units = max(1, math.ceil(min(chunk_seconds * input_rate, total_in) / probe.unit_in))
    return ChunkPlan(input_rate, audio, total_in, overlap_frames, units)


def segment_weights(plan: ChunkPlan, device, dtype) -> torch.Tensor:
    """Trapezoid over a segment's frames: ramps of ``overlap`` frames, strictly positive everywhere."""
    n, o = plan.segment_frames, plan.overlap_frames
    w = torch.ones(n, device=device, dtype=dtype)
    if o > 0:
        ramp = (torch.arange(o, device=device, dtype=dtype) + 0.5) / o
        w[:o] = ramp
        w[n - o :] = ramp.flip(0)
    return w


def _segment_starts(plan: ChunkPlan, keep_start: int, keep_stop: int) -> list[int]:
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


def _resample(wave: torch.Tensor, orig: int, new: int) -> torch.Tensor:
    if orig == new:
        return wave
    import torchaudio.functional as AF

    return AF.resample(wave, orig, new)


def separate_chunk(
    block: torch.Tensor,
    read_start: int,
    plan: ChunkPlan,
    mask_fn: MaskFn,
    num_masks: int,
    keep: tuple[int, int],
    batch_size: int = 8,
    out: torch.Tensor | None = None,
    segment_masks: dict[int, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Separate one chunk.

    block (channels, samples) holds input samples [read_start, read_start + samples). Returns the stems for
    the kept input samples [keep[0], keep[1]): (N, channels, keep length), written into ``out`` if given
    (a caller streaming a long file reuses one buffer: fresh memory for every chunk is page-faulted in anew,
    which costs as much per class as the inverse STFT itself). ``segment_masks`` ({global start frame:
    (N, F, frames) mask}), passed from chunk to chunk of one file in order, carries the masks of segments
    that straddle chunk boundaries, so that every segment goes through the network once.
    """
    audio = plan.audio
    device, dtype = block.device, block.dtype
    hop = audio.hop_length
    ratio = plan.model_rate / plan.input_rate

    # 1. Model-rate mono and its STFT, frames on the global grid (read_start is unit-aligned).
    mono = block.mean(dim=0, keepdim=True)
    wave_m = _resample(mono, plan.input_rate, plan.model_rate)[0]
    frame0 = read_start * plan.model_rate // plan.input_rate // hop  # global index of local frame 0
    mag = frontend.stft(wave_m, audio).abs()  # (F, T_local)
    t_local = mag.shape[-1]

    # 2. Segments needed by the kept samples: those touching model frames around them. A segment's mask
    #    depends only on audio on the global grid, so one already computed for the previous chunk (the
    #    segments straddling a chunk boundary) is taken from ``segment_masks`` instead of run again.
    starts = _segment_starts(plan, keep[0], keep[1])
    cache = segment_masks if segment_masks is not None else {}
    todo = [s for s in starts if s not in cache]
    masks_of = {s: cache[s] for s in starts if s in cache}
    # A segment running past the block's end is zero-padded here (it only feeds frames this chunk does not
    # keep) but not in the next chunk: only segments whose frames all lie in the block may be handed on.
    # At the file's end the whole-file pass pads in the same way.
    at_end = read_start + block.shape[-1] >= plan.total_in

    n = plan.segment_frames
    for b0 in range(0, len(todo), batch_size):
        batch_starts = todo[b0 : b0 + batch_size]
        segs = []
        for s in batch_starts:
            a = s - frame0
            seg = mag[:, max(a, 0) : a + n]
            pad_left = max(0, -a)
            segs.append(F.pad(seg, (pad_left, n - seg.shape[-1] - pad_left)))
        seg_mag = torch.stack(segs)  # (B, F, n)
        net_in = frontend.network_input(frontend.warp(seg_mag, audio), audio)
        masks = frontend.unwarp(mask_fn(net_in), audio).clamp(0.0, 1.0)  # (B, N, F, n)
        for s, m in zip(batch_starts, masks):
            masks_of[s] = m
            if s >= frame0 and (s - frame0 + n <= t_local or at_end):
                cache[s] = m
    acc = torch.zeros(num_masks, audio.freq_bins, t_local, device=device, dtype=dtype)
    norm = torch.zeros(t_local, device=device, dtype=dtype)
    weights = segment_weights(plan, device, dtype)
    for s in starts:
        a = s - frame0
        lo_f, hi_f = max(a, 0), min(a + n, t_local)
        if hi_f <= lo_f:
            continue
        w = weights[lo_f - a : hi_f - a]
        acc[:, :, lo_f:hi_f] += masks_of[s][:, :, lo_f - a : hi_f - a] * w
        norm[lo_f:hi_f] += w
    if segment_masks is not None:  # keep only what the next chunk (kept samples from keep[1] on) can need
        upcoming = _segment_starts(plan, keep[1], keep[1] + 1)
        needed_from = upcoming[0] if upcoming else math.inf  # none after the file's last chunk
        for s in [s for s in segment_masks if s < needed_from]:
            del segment_masks[s]
    mask_model = acc / norm.clamp_min(1e-8)  # (N, F, T_local)

    # 3. Input-rate STFT of every channel, only over the kept span plus one window on each side: the context
    #    read around a chunk is for the model's segments; a kept sample depends only on the input frames
    #    overlapping it. The span starts on the global input-frame grid (hop_in divides the chunk grid),
    #    and frames that touch its edges (reflect-padded) never reach a kept sample, so this equals an STFT
    #    of the whole file (up to float rounding; tests/reference_separation.py is the plain path).
    span0 = max(read_start, keep[0] - plan.n_fft_in)
    span1 = min(read_start + block.shape[-1], keep[1] + plan.n_fft_in)
    stft = _SpanSTFT(block[:, span0 - read_start : span1 - read_start], plan.n_fft_in, plan.hop_in)
    t_in, f_in = stft.spec.shape[-2:]

    # 4. Where each input frame and bin falls on the model grid (time in model frames, frequency in Hz).
    masks_tf = mask_model.transpose(1, 2).contiguous()  # (N, T_local, F): time-major like the frames
    offset = _model_frame_offset(plan, span0, frame0)
    if offset is None:
        q = torch.arange(t_in, device=device, dtype=torch.float64)
        t_pos = ((span0 + q * plan.hop_in) * ratio / hop - frame0).to(dtype)
        k = torch.arange(f_in, device=device, dtype=torch.float64)
        f_pos = (k * plan.input_rate / plan.n_fft_in * audio.n_fft / plan.model_rate).to(dtype)
        gx = 2.0 * f_pos / (audio.freq_bins - 1) - 1.0
        gy = 2.0 * t_pos / max(t_local - 1, 1) - 1.0
        grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], dim=-1).unsqueeze(0)  # (1, T_in, F_in, 2)
    else:
        # Input frame q is model frame q + offset (clamped at the edges, like grid_sample's border padding);
        # along frequency the interpolation weights are the same for every frame: a gather and a lerp over
        # the bins below the model's last one, whose value every higher bin takes (border again).
        rows = (torch.arange(t_in, device=device) + offset).clamp(0, t_local - 1)
        inside = offset >= 0 and offset + t_in <= t_local
        f_pos = torch.arange(f_in, device=device, dtype=torch.float64) * (
            plan.input_rate / plan.n_fft_in * audio.n_fft / plan.model_rate
        )
        last = audio.freq_bins - 1
        interior = int((f_pos < last).sum())  # f_pos increases with the bin
        j0 = f_pos[:interior].floor().long()
        j1 = (j0 + 1).clamp(max=last)
        w = (f_pos[:interior] - j0).to(dtype)

    # 5. One class at a time (memory does not grow with N): map its mask onto the input grid by bilinear
    #    interpolation, mask every channel's spectrum, back to waveforms, keep the requested span.
    lo_keep, hi_keep = keep[0] - span0, keep[1] - span0
    shape = (num_masks, block.shape[0], keep[1] - keep[0])
    if out is None:
        out = torch.empty(shape, device=device, dtype=dtype)
    elif tuple(out.shape) != shape:
        raise ValueError(f"out has shape {tuple(out.shape)}, expected {shape}")
    for i in range(num_masks):
        if offset is None:
            mask_in = F.grid_sample(
                masks_tf[None, i : i + 1], grid, mode="bilinear", padding_mode="border", align_corners=True
            )[0, 0]  # (T_in, F_in)
            stft.set_mask(mask_in)
        else:
            m = masks_tf[i, offset : offset + t_in] if inside else masks_tf[i].index_select(0, rows)  # (T_in, F)
            stft.set_mask_low_band(m.index_select(1, j0), m.index_select(1, j1), w, m[:, last])
        stft.masked_samples(lo_keep, hi_keep, out=out[i])
    return out


def _model_frame_offset(plan: ChunkPlan, span0: int, frame0: int) -> int | None:
    """The model frame of the span's first input frame when input frames fall exactly on model frames; else
    None.

    They do when the input hop is the model's scaled by input_rate / model_rate exactly (44.1, 22.05 and
    11.025 kHz input for an 11.025 kHz model: the usual case): input frame q is then model frame q + offset,
    so step 4's bilinear interpolation is exact indexing in time and a fixed two-tap interpolation in
    frequency, the same for every frame. Same result as grid_sample up to float rounding (tested against
    tests/reference_separation.py), at a fraction of the cost for every requested class.
    """
    if plan.hop_in * plan.model_rate != plan.audio.hop_length * plan.input_rate:
        return None
    # step 4's t_pos of frame 0: span0 * model_rate / input_rate / hop - frame0
    num, den = span0 * plan.model_rate, plan.input_rate * plan.audio.hop_length
    return num // den - frame0 if num % den == 0 else None


# The input-rate STFT pair. Hann window (periodic) at exactly 4 hops per window: the same transform as
# torch.stft/istft with center=True and reflect padding, laid out (channels, frames, bins) so that the
# FFTs run over contiguous memory and the overlap-add is four shifted additions instead of a general fold.
# For a 10-minute stereo file this halves the time of the inverse transform (benchmarks/separate_speed.py).


class _SpanSTFT:
    """The STFT of every channel of one span, then masked inverses of it, one channel at a time.

    ``spec`` (C, T, F) is analysed once. ``set_mask`` (or ``set_mask_low_band``) sets a real mask (T, F);
    ``masked_samples`` writes samples [lo, hi) of istft(mask * spec) for every channel. The inverse is the
    least-squares overlap-add with the analysis window, as torch.istft's. Besides the spectrum itself, every
    working buffer (windowed frames, masked spectrum, mask, overlap-add) is one channel's size and reused for
    every channel and class: a stereo chunk needs 4 such buffers rather than 7, and fresh multi-megabyte
    allocations (page-faulted in anew each time) would cost as much as the arithmetic.
    """

    def __init__(self, x: torch.Tensor, n_fft: int, hop: int):
        if n_fft != 4 * hop:
            raise ValueError("the overlap-add below assumes four hops per window")
        c, length = x.shape
        self.n_fft, self.hop, self.length = n_fft, hop, length
        self.window = torch.hann_window(n_fft, periodic=True, device=x.device, dtype=x.dtype)
        padded = F.pad(x.unsqueeze(0), (n_fft // 2, n_fft // 2), mode="reflect")[0]
        views = padded.unfold(-1, n_fft, hop)  # (C, T, n_fft) views of the signal
        t = views.shape[1]
        self.frames = torch.empty(t, n_fft, device=x.device, dtype=x.dtype)
        self.spec = torch.empty(c, t, n_fft // 2 + 1, device=x.device, dtype=x.dtype.to_complex())
        for ch in range(c):
            torch.mul(views[ch], self.window, out=self.frames)
            torch.fft.rfft(self.frames, dim=-1, out=self.spec[ch])
        self.masked = torch.empty_like(self.spec[0])
        self.spec_ri, self.masked_ri = torch.view_as_real(self.spec), torch.view_as_real(self.masked)
        # The mask laid out like one channel's real view, (T, F, 2) with the value twice, so that masking is
        # one contiguous product: broadcasting a (T, F, 1) mask over the real/imaginary pairs is not
        # vectorised and costs more than writing the pairs.
        self.mask_pairs = torch.empty_like(self.masked_ri)
        self.low_bins, self.edge = self.mask_pairs.shape[1], None  # set by set_mask / set_mask_low_band
        self.acc = torch.empty(t + 3, hop, device=x.device, dtype=x.dtype)
        env = torch.zeros(t + 3, hop, device=x.device, dtype=x.dtype)
        wsq = (self.window * self.window).view(4, hop)
        for j in range(4):
            env[j : j + t] += wsq[j]
        self.start = n_fft // 2  # center=True: sample 0 sits in the middle of frame 0
        # Dividing by the window-power envelope is multiplying by its inverse (computed once).
        self.inv_env = env.view(-1)[self.start : self.start + length].reciprocal()
        self.window_parts = self.window.view(4, hop)

    def set_mask(self, mask: torch.Tensor) -> None:
        """Mask (T, F) for the next :meth:`masked_samples`."""
        self.mask_pairs.copy_(mask[..., None].expand_as(self.mask_pairs))
        self.low_bins, self.edge = self.mask_pairs.shape[1], None

    def set_mask_low_band(self, start: torch.Tensor, end: torch.Tensor, weight: torch.Tensor, edge: torch.Tensor) -> None:
        """Mask bins [0, Fl) with ``lerp(start, end, weight)`` (T, Fl) and every bin above with ``edge`` (T,).

        Only the low band is written out as a mask; above it each frame is scaled by one number, which costs
        no mask-sized memory traffic (the bins above the model's band are three quarters of a 44.1 kHz STFT).
        """
        pairs, f = self.mask_pairs, start.shape[-1]
        torch.lerp(start, end, weight, out=pairs[:, :f, 0])
        pairs[:, :f, 1].copy_(pairs[:, :f, 0])
        self.low_bins, self.edge = f, edge[:, None, None]

    def masked_samples(self, lo: int, hi: int, out: torch.Tensor) -> torch.Tensor:
        """Samples [lo, hi) of the inverse of the masked spectrum, written into ``out`` (C, hi - lo)."""
        t = self.frames.shape[0]
        parts = self.frames.view(t, 4, self.hop)
        acc, w = self.acc, self.window_parts
        samples = acc.view(-1)[self.start + lo : self.start + hi]
        f = self.low_bins
        for ch in range(self.spec.shape[0]):
            torch.mul(self.spec_ri[ch, :, :f], self.mask_pairs[:, :f], out=self.masked_ri[:, :f])
            if self.edge is not None:
                torch.mul(self.spec_ri[ch, :, f:], self.edge, out=self.masked_ri[:, f:])
            torch.fft.irfft(self.masked, n=self.n_fft, dim=-1, out=self.frames)
            # Overlap-add of the windowed frames, the window applied on the way (one pass over the frames,
            # not two): hop-sized quarter j of frame q lands on output block q + j.
            torch.mul(parts[:, 0], w[0], out=acc[:t])
            acc[t:].zero_()
            for j in range(1, 4):
                acc[j : j + t].addcmul_(parts[:, j], w[j])
            torch.mul(samples, self.inv_env[lo:hi], out=out[ch])
        return out
