"""One chunk of a file through the model, and its masks applied at the input's own rate (overlap-add).

Masks live on the model's (time, frequency) grid; they are mapped by linear interpolation onto the STFT grid
of every input channel at the input's own sample rate (a window of four model hops, a hop of
``SYNTHESIS_STEP`` model hops), so the stems keep the input's rate, channels and full band (above the
model's 5.5 kHz Nyquist the top bin's mask is used) and ``stems + residual == input`` exactly. Where the
chunk's lengths come from: :mod:`sgnsep.separation.chunk_plan`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from sgnsep.audio import frontend, resample
from sgnsep.separation.chunk_plan import ChunkPlan, segment_weights, segments_reaching

# How the caller computes masks: (B, 1, W, T) network input -> (B, N, W, T) masks in [0, 1].
MaskFn = Callable[[torch.Tensor], torch.Tensor]


def host_memory(device: torch.device) -> bool:
    """Whether tensors on ``device`` live in host memory, where numpy arrays do.

    There the stems are synthesised straight into the caller's arrays, over cache-sized blocks of frames;
    on an accelerator (CUDA, MPS) over whole spans, then copied back. Tests replace this function to run the
    accelerator path on the CPU.
    """
    return device.type == "cpu"


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
    (a caller streaming a long file reuses one buffer: fresh memory for every chunk would be page-faulted in
    anew, for every class). ``segment_masks`` ({global start frame: (N, W, frames) masks on the network's
    log-frequency axis}), passed from chunk to chunk of one file in order, carries the masks of segments
    that straddle chunk boundaries, so that every segment goes through the network once.
    """
    audio = plan.audio
    device, dtype = block.device, block.dtype
    hop = audio.hop_length

    # 1. Model-rate mono and its STFT, frames on the global grid (read_start is unit-aligned).
    mono = block.mean(dim=0, keepdim=True)
    wave_m = resample.resample(mono, plan.input_rate, plan.model_rate)[0]
    frame0 = read_start * plan.model_rate // plan.input_rate // hop  # global index of local frame 0
    mag = frontend.stft(wave_m, audio).abs()  # (F, T_local)
    t_local = mag.shape[-1]

    # 2. Segments needed by the kept samples: those touching model frames around them. A segment's mask
    #    depends only on audio on the global grid, so one already computed for the previous chunk (the
    #    segments straddling a chunk boundary) is taken from ``segment_masks`` instead of run again.
    starts = segments_reaching(plan, keep[0], keep[1])
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
        masks = mask_fn(net_in)  # (B, N, W, n), on the network's log-frequency axis
        for s, m in zip(batch_starts, masks):
            masks_of[s] = m
            if s >= frame0 and (s - frame0 + n <= t_local or at_end):
                cache[s] = m
    if segment_masks is not None:  # keep only what the next chunk (kept samples from keep[1] on) can need
        upcoming = segments_reaching(plan, keep[1], keep[1] + 1)
        needed_from = upcoming[0] if upcoming else math.inf  # none after the file's last chunk
        for s in [s for s in segment_masks if s < needed_from]:
            del segment_masks[s]

    # 3. Input-rate STFT of every channel, only over the kept span plus one window on each side: the context
    #    read around a chunk is for the model's segments; a kept sample depends only on the input frames
    #    overlapping it. The span starts on the global input-frame grid (hop_in divides the chunk grid),
    #    and frames that touch its edges (reflect-padded) never reach a kept sample, so this equals an STFT
    #    of the whole file (up to float rounding; tests/reference_separation.py is the plain path).
    span0 = max(read_start, keep[0] - plan.n_fft_in)
    span1 = min(read_start + block.shape[-1], keep[1] + plan.n_fft_in)
    piece = block[:, span0 - read_start : span1 - read_start]
    if at_end and span1 == read_start + block.shape[-1]:
        # At the file's end one hop of silence gives the STFT a frame centred at or after the last sample (a
        # centred STFT's last frame may sit a hop before it). Without it, at 50 % overlap the last samples
        # lie under the tail of one window only, and the inverse divides by a window power near zero.
        piece = F.pad(piece, (0, plan.hop_in))
    # Cache-sized blocks pay on CPU; on a GPU they would only multiply kernel launches (7 per block and class).
    block_frames = SYNTHESIS_BLOCK_FRAMES if host_memory(device) else None
    stft = _SpanSTFT(piece, plan.n_fft_in, plan.hop_in, block_frames)
    t_in = stft.spec.shape[-2]

    # 4. Where each input frame falls on the model grid; the segments' masks blended (trapezoid weights) on
    #    the model frames those input frames need only (the chunk's context frames are for the network), still
    #    on the network's log-frequency axis, half as many rows as the linear one.
    times = _TimeMap.of(plan, span0, frame0, t_in, t_local, device, dtype)
    a, b = times.first, times.stop
    acc = torch.zeros(num_masks, audio.warp_bins, b - a, device=device, dtype=dtype)
    norm = torch.zeros(b - a, device=device, dtype=dtype)
    weights = segment_weights(plan, device, dtype)
    for s in starts:
        lo_f, hi_f = max(s - frame0, a), min(s - frame0 + n, b)
        if hi_f <= lo_f:
            continue
        w = weights[lo_f - (s - frame0) : hi_f - (s - frame0)]
        acc[..., lo_f - a : hi_f - a] += masks_of[s][..., lo_f - (s - frame0) : hi_f - (s - frame0)] * w
        norm[lo_f - a : hi_f - a] += w
    # 5. The masks at the input's frames and bins. Bilinear interpolation is separable and, like blending,
    #    linear: time first (a strided slice when input frames fall on model frames), then frequency, from
    #    the log axis to the model's bins (frontend.unwarp) to the input's (_BinMap), on the input's frames
    #    only (half the model's at the default synthesis step).
    warped = times.interpolate(acc.div_(norm.clamp_min_(1e-8)))  # (N, W, T_in)
    bins = _BinMap.of(plan, stft.spec.shape[-1], device, dtype)
    masks_in = bins.interpolate(frontend.unwarp(warped, audio)).clamp_(0.0, 1.0)  # (N, Fl + 1, T_in)

    # 6. One class at a time: mask every channel's spectrum, back to waveforms, keep the requested span.
    lo_keep, hi_keep = keep[0] - span0, keep[1] - span0
    shape = (num_masks, block.shape[0], keep[1] - keep[0])
    if out is None:
        out = torch.empty(shape, device=device, dtype=dtype)
    elif tuple(out.shape) != shape:
        raise ValueError(f"out has shape {tuple(out.shape)}, expected {shape}")
    f = bins.interior
    for i in range(num_masks):
        m = masks_in[i]
        stft.set_mask_band(m[:f].T, m[f])
        stft.masked_samples(lo_keep, hi_keep, out=out[i])
    return out


@dataclass(frozen=True)
class _TimeMap:
    """Input frame q of a span sits at model frame ``first + row0[q] + weight[q] * (row1[q] - row0[q])`` of
    its chunk (rows counted from ``first``), clamped to the chunk's frames like grid_sample's border padding.

    When input frames fall exactly on model frames (:func:`_model_frame_offset`) and inside the chunk, they are
    every ``step``-th model frame from ``first``, ``row0`` is None, and interpolation is a strided slice.
    """

    first: int  # first model frame needed (chunk-local)
    stop: int  # one past the last
    step: int
    row0: torch.Tensor | None  # (T_in,) rows from ``first``; None: first, first + step, ...
    row1: torch.Tensor | None
    weight: torch.Tensor | None  # (T_in,)

    @classmethod
    def of(cls, plan: ChunkPlan, span0: int, frame0: int, t_in: int, t_local: int, device, dtype) -> "_TimeMap":
        offset, step = _model_frame_offset(plan, span0, frame0), plan.synthesis_step
        if offset is not None:
            rows = (torch.arange(t_in, device=device) * step + offset).clamp(0, t_local - 1)
            first, stop = int(rows[0]), int(rows[-1]) + 1
            if offset >= 0 and offset + step * (t_in - 1) < t_local:
                return cls(first, stop, step, None, None, None)
            return cls(first, stop, step, rows - first, None, None)
        q = torch.arange(t_in, device=device, dtype=torch.float64)
        pos = ((span0 + q * plan.hop_in) * (plan.model_rate / plan.input_rate) / plan.audio.hop_length - frame0)
        pos = pos.clamp(0, t_local - 1)
        row0 = pos.floor().long()
        row1 = (row0 + 1).clamp(max=t_local - 1)
        first, stop = int(row0[0]), int(row1[-1]) + 1
        return cls(first, stop, step, row0 - first, row1 - first, (pos - row0).to(dtype))

    def interpolate(self, mask: torch.Tensor) -> torch.Tensor:
        """(..., stop - first) mask over model frames -> (..., T_in) mask over the input frames."""
        if self.row0 is None:
            return mask[..., :: self.step]
        start = mask.index_select(-1, self.row0)
        if self.weight is None:
            return start
        return torch.lerp(start, mask.index_select(-1, self.row1), self.weight)


@dataclass(frozen=True)
class _BinMap:
    """Input bin k below ``interior`` sits between model bins ``bin0[k]`` and ``bin0[k] + 1`` (at
    ``weight[k]``); every bin from ``interior`` on is at or above the model's last bin and takes its value
    (grid_sample's border padding: above the model's Nyquist the top bin's mask is used), so a mask over the
    input's bins is ``interior`` values and that one.
    """

    interior: int
    start: torch.Tensor  # (interior + 1,) model bins: bin0, then the last
    end: torch.Tensor  # bin0 + 1, then the last
    weight: torch.Tensor  # (interior + 1, 1); 0 for the last
    exact: bool  # every weight is 0 (input bins fall on model bins): a gather, no interpolation

    @classmethod
    def of(cls, plan: ChunkPlan, f_in: int, device, dtype) -> "_BinMap":
        audio = plan.audio
        pos = torch.arange(f_in, device=device, dtype=torch.float64) * (
            plan.input_rate / plan.n_fft_in * audio.n_fft / plan.model_rate
        )
        last = audio.freq_bins - 1
        interior = int((pos < last).sum())  # pos increases with the bin
        bin0 = pos[:interior].floor().long()
        top = torch.tensor([last], device=device)
        weight = torch.cat([pos[:interior] - bin0, torch.zeros(1, device=device, dtype=torch.float64)])
        return cls(
            interior,
            torch.cat([bin0, top]),
            torch.cat([(bin0 + 1).clamp(max=last), top]),
            weight.to(dtype)[:, None],
            bool((weight == 0).all()),
        )

    def interpolate(self, mask: torch.Tensor) -> torch.Tensor:
        """(..., F, T) mask over the model's bins -> (..., interior + 1, T) over the input's bins."""
        start = mask.index_select(-2, self.start)
        if self.exact:
            return start
        return torch.lerp(start, mask.index_select(-2, self.end), self.weight)


def _model_frame_offset(plan: ChunkPlan, span0: int, frame0: int) -> int | None:
    """The model frame of the span's first input frame when input frames fall exactly on model frames; else
    None.

    They do when a model hop lasts a whole number of input samples (44.1, 22.05 and 11.025 kHz input for an
    11.025 kHz model: the usual case): input frame q is then model frame offset + synthesis_step * q,
    so interpolation in time (_TimeMap) is a slice of the blended masks, with no copy for any class. Same
    result as grid_sample up to float rounding (tested against tests/reference_separation.py).
    """
    if plan.frame_in * plan.model_rate != plan.audio.hop_length * plan.input_rate:
        return None
    # step 4's t_pos of frame 0: span0 * model_rate / input_rate / hop - frame0
    num, den = span0 * plan.model_rate, plan.input_rate * plan.audio.hop_length
    return num // den - frame0 if num % den == 0 else None


# The input-rate STFT pair. Hann window (periodic) of a whole number of hops (2 at the default synthesis
# step): the same transform as torch.stft/istft with center=True and reflect padding, laid out (channels,
# frames, bins) so that the FFTs run over contiguous memory and the overlap-add is a few shifted additions
# instead of a general fold.


# Frames per block of the inverse STFT on CPU: 64 stereo frames of 4096 points keep a block's spectrum and
# frames (2 MB each) in the cores' caches. On the 2-core test machine 32 to 128 frames measure alike, 16 and
# 256 slower, the whole 10 s span 1.3-1.6x slower (`python benchmarks/separate_speed.py --no-files
# --no-classes --synthesis-blocks 16 32 64 128 256 0`; benchmarks/results/separate_speed.md).
SYNTHESIS_BLOCK_FRAMES = 64


class _SpanSTFT:
    """The STFT of every channel of one span, then masked inverses of it.

    ``spec`` (C, T, F) is analysed once. ``set_mask_band`` sets a real mask: its own value for each of the
    low bins (the model's band), one value per frame for every bin above; ``masked_samples`` writes samples
    [lo, hi) of istft(mask * spec) for every channel. The inverse is the least-squares overlap-add with the
    analysis window, as torch.istft's.

    The inverse runs over blocks of ``block_frames`` frames (None: the whole span) of every channel at once:
    a block's masked spectrum and frames (2 MB each for 64 stereo frames of 4096 points) stay in the cores'
    caches from the product through the inverse FFT to the overlap-add, where whole-span buffers (7 MB each
    for 10 s of 44.1 kHz stereo at 50 % overlap) went out to memory and back between every step; and each
    step is one call for all channels. Every working buffer is allocated once per span and reused for every
    class: fresh multi-megabyte allocations would be page-faulted in anew each time.
    """

    def __init__(self, x: torch.Tensor, n_fft: int, hop: int, block_frames: int | None = SYNTHESIS_BLOCK_FRAMES):
        if n_fft % hop or n_fft // hop < 2:
            raise ValueError("the overlap-add below assumes a window of a whole number (2 or more) of hops")
        self.parts = n_fft // hop  # frames overlapping each output sample
        c, length = x.shape
        self.n_fft, self.hop, self.length = n_fft, hop, length
        self.window = torch.hann_window(n_fft, periodic=True, device=x.device, dtype=x.dtype)
        padded = F.pad(x.unsqueeze(0), (n_fft // 2, n_fft // 2), mode="reflect")[0]
        views = padded.unfold(-1, n_fft, hop)  # (C, T, n_fft) views of the signal
        t = views.shape[1]
        self.block = t if block_frames is None else min(block_frames, t)
        self.frames = torch.empty(c, self.block, n_fft, device=x.device, dtype=x.dtype)
        self.spec = torch.empty(c, t, n_fft // 2 + 1, device=x.device, dtype=x.dtype.to_complex())
        for a in range(0, t, self.block):
            b = min(t, a + self.block)
            torch.mul(views[:, a:b], self.window, out=self.frames[:, : b - a])
            torch.fft.rfft(self.frames[:, : b - a], dim=-1, out=self.spec[:, a:b])
        self.masked = torch.empty_like(self.spec[:, : self.block])
        self.spec_ri, self.masked_ri = torch.view_as_real(self.spec), torch.view_as_real(self.masked)
        self.mask_pairs = self.edge = None  # set by set_mask_band
        k = self.parts
        self.acc = torch.empty(c, t + k - 1, hop, device=x.device, dtype=x.dtype)
        env = torch.zeros(t + k - 1, hop, device=x.device, dtype=x.dtype)
        wsq = (self.window * self.window).view(k, hop)
        for j in range(k):
            env[j : j + t] += wsq[j]
        self.start = n_fft // 2  # center=True: sample 0 sits in the middle of frame 0
        # Dividing by the window-power envelope is multiplying by its inverse (computed once).
        self.inv_env = env.view(-1)[self.start : self.start + length].reciprocal()
        self.window_parts = self.window.view(k, hop)

    def set_mask_band(self, low: torch.Tensor, edge: torch.Tensor) -> None:
        """Mask bins [0, Fl) with ``low`` (T, Fl) and every bin above with ``edge`` (T,), for the next
        :meth:`masked_samples`.

        Only the low band is written out as a mask; above it each frame is scaled by one number, which costs
        no mask-sized memory traffic (the bins above the model's band are three quarters of a 44.1 kHz STFT).
        The mask is laid out like the spectrum's real view, (T, Fl, 2) with the value twice, so that masking
        is one contiguous product: broadcasting a (T, Fl, 1) mask over the real/imaginary pairs is not
        vectorised and costs more than writing the pairs.
        """
        t, f = low.shape
        if self.mask_pairs is None or self.mask_pairs.shape[1] != f:
            self.mask_pairs = torch.empty(t, f, 2, device=low.device, dtype=low.dtype)
        self.mask_pairs.copy_(low[..., None].expand(t, f, 2))
        self.edge = edge[:, None, None]

    def masked_samples(self, lo: int, hi: int, out: torch.Tensor) -> torch.Tensor:
        """Samples [lo, hi) of the inverse of the masked spectrum, written into ``out`` (C, hi - lo)."""
        t, k = self.spec.shape[1], self.parts
        acc, w, f = self.acc, self.window_parts, self.mask_pairs.shape[1]
        # Only frames that reach [lo, hi) are synthesised: a span carries one window of context each side.
        q0 = max(0, (self.start + lo) // self.hop - (k - 1))
        q1 = min(t, -(-(self.start + hi) // self.hop))
        # Output block r sums part j of frames r - j. Block by block, part k - 1 lands on blocks no frame has
        # reached yet, so it is written rather than added: only the first k - 1 blocks need zeros.
        acc[:, q0 : q0 + k - 1].zero_()
        for a in range(q0, q1, self.block):
            b = min(q1, a + self.block)
            masked, masked_ri, frames = self.masked[:, : b - a], self.masked_ri[:, : b - a], self.frames[:, : b - a]
            torch.mul(self.spec_ri[:, a:b, :f], self.mask_pairs[a:b], out=masked_ri[:, :, :f])
            torch.mul(self.spec_ri[:, a:b, f:], self.edge[a:b], out=masked_ri[:, :, f:])
            torch.fft.irfft(masked, n=self.n_fft, dim=-1, out=frames)
            # Overlap-add of the windowed frames, the window applied on the way (one pass over the frames,
            # not two): hop-sized part j of frame q lands on output block q + j.
            parts = frames.view(frames.shape[0], b - a, k, self.hop)
            torch.mul(parts[:, :, k - 1], w[k - 1], out=acc[:, a + k - 1 : b + k - 1])
            for j in range(k - 2, -1, -1):
                acc[:, a + j : b + j].addcmul_(parts[:, :, j], w[j])
        samples = acc.view(acc.shape[0], -1)[:, self.start + lo : self.start + hi]
        torch.mul(samples, self.inv_env[lo:hi], out=out)
        return out
