"""Mix-and-separate training examples (Sound of Pixels / SGN section III-C).

N solo sources of distinct classes are each divided by N and summed; the targets are the binary masks
``m_i = w_i > 0.5 w_mix`` on the log-frequency (warped) magnitudes, the per-bin loss weight of Sound of
Pixels ``clamp(log1p(w_mix), 1e-3, 10)``, and the multi-hot presence label of eq. 7.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sgnsep.audio import frontend
from sgnsep.models.config import AudioConfig


@dataclass
class MixBatch:
    net_input: torch.Tensor  # (B, 1, W, T) log warped mixture magnitude (the network input)
    classes: torch.Tensor  # (B, N) long
    target_masks: torch.Tensor  # (B, N, W, T) in {0, 1}
    weight: torch.Tensor  # (B, 1, W, T)
    present: torch.Tensor  # (B, C) multi-hot
    mixture: torch.Tensor  # (B, S) waveform
    sources: torch.Tensor  # (B, N, S) waveforms, already divided by N

    def to(self, device) -> "MixBatch":
        return MixBatch(*(getattr(self, f).to(device) for f in self.__dataclass_fields__))


def make_batch(
    sources: torch.Tensor,
    classes: torch.Tensor,
    num_classes: int,
    audio: AudioConfig,
    *,
    mask_threshold: float = 0.5,
) -> MixBatch:
    """sources (B, N, S) solo waveforms at the model rate; classes (B, N) their class indices."""
    b, n, s = sources.shape
    scaled = sources / n  # "each divided by N before summing"
    mixture = scaled.sum(dim=1)
    mags = frontend.stft(torch.cat([mixture.unsqueeze(1), scaled], dim=1), audio).abs()  # (B, N+1, F, T)
    warped = frontend.warp(mags.reshape(b * (n + 1), *mags.shape[-2:]), audio).reshape(b, n + 1, audio.warp_bins, -1)
    mix_w, src_w = warped[:, :1], warped[:, 1:]
    target = (src_w > mask_threshold * mix_w).to(sources.dtype)
    weight = torch.clamp(torch.log1p(mix_w), 1e-3, 10.0)
    present = torch.zeros(b, num_classes, dtype=sources.dtype, device=sources.device)
    present.scatter_(1, classes, 1.0)
    return MixBatch(
        net_input=frontend.network_input(mix_w[:, 0], audio),
        classes=classes,
        target_masks=target,
        weight=weight,
        present=present,
        mixture=mixture,
        sources=scaled,
    )
