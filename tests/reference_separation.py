"""The plain separation path, for checking the optimised one (sgnsep/separation/) against it.

Everything is done once over the whole signal with the library's general-purpose transforms: the mono mix
resampled to the model rate, its STFT, every model segment of chunk_plan.segment_layout blended with the
trapezoid weights, then torch.stft of every channel at the input rate (the plan's window and hop, one hop
of silence after the end), the masks mapped onto that grid by bilinear interpolation (grid_sample), and
torch.istft. No chunks, no spans, no reused buffers, no custom overlap-add: slow and simple, so that the fast
path can be held to it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sgnsep.audio import frontend, resample
from sgnsep.separation import chunk_plan


def reference_stems(separator, audio, sample_rate: int, sources) -> dict:
    """{class: (channels, samples) array} for ``audio`` (channels, samples) at ``sample_rate``."""
    class_idx = separator.class_indices(sources)
    names = [separator.classes[i] for i in class_idx]
    audio_cfg = separator.meta.audio
    x = torch.as_tensor(audio, dtype=torch.float32)
    plan = chunk_plan.make_plan(sample_rate, x.shape[-1], audio_cfg, overlap=separator.overlap, chunk_seconds=1e9)
    mask_fn = separator._mask_fn(class_idx)
    hop, n = audio_cfg.hop_length, plan.segment_frames

    mono = x.mean(dim=0, keepdim=True)
    wave_m = resample.resample(mono, sample_rate, plan.model_rate)[0]
    mag = frontend.stft(wave_m, audio_cfg).abs()  # (F, T)
    total = mag.shape[-1]
    acc = torch.zeros(len(class_idx), audio_cfg.freq_bins, total)
    norm = torch.zeros(total)
    weights = chunk_plan.segment_weights(plan, "cpu", torch.float32)
    for s in chunk_plan.segment_layout(plan):
        seg = mag[:, s : s + n]
        seg = F.pad(seg, (0, n - seg.shape[-1]))
        net_in = frontend.network_input(frontend.warp(seg[None], audio_cfg), audio_cfg)
        m = frontend.unwarp(mask_fn(net_in), audio_cfg).clamp(0.0, 1.0)[0]
        hi = min(s + n, total)
        acc[:, :, s:hi] += m[:, :, : hi - s] * weights[: hi - s]
        norm[s:hi] += weights[: hi - s]
    mask_model = acc / norm.clamp_min(1e-8)

    window = torch.hann_window(plan.n_fft_in, periodic=True)
    x_end = F.pad(x, (0, plan.hop_in))  # one hop of silence: a frame centred at or after the last sample
    spec = torch.stft(x_end, plan.n_fft_in, plan.hop_in, window=window, center=True, pad_mode="reflect",
                      return_complex=True)  # (C, F_in, T_in)
    f_in, t_in = spec.shape[-2:]
    ratio = plan.model_rate / sample_rate
    t_pos = torch.arange(t_in, dtype=torch.float64) * plan.hop_in * ratio / hop
    f_pos = torch.arange(f_in, dtype=torch.float64) * sample_rate / plan.n_fft_in * audio_cfg.n_fft / plan.model_rate
    gx = (2.0 * t_pos / max(total - 1, 1) - 1.0).float()
    gy = (2.0 * f_pos / (audio_cfg.freq_bins - 1) - 1.0).float()
    grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], dim=-1)[None]
    mask_in = F.grid_sample(mask_model[None], grid, mode="bilinear", padding_mode="border", align_corners=True)[0]
    out = {}
    for i, name in enumerate(names):
        stems = torch.istft(mask_in[i][None] * spec, plan.n_fft_in, plan.hop_in, window=window, center=True,
                            length=x_end.shape[-1])[:, : x.shape[-1]]
        out[name] = stems.numpy()
    return out
