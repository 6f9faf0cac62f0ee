"""The Sound of Pixels audio U-Net (Zhao et al. 2018), whose features U SGN's classes select from (Fig. 1, eq. 10)
and the body of both baselines, with the helpers that run it per item and in channels-last layout.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class UNet(nn.Module):
    """Sound of Pixels' audio U-Net: BatchNorm on the input, ``depth`` 4x4 stride-2 down convolutions
    (LeakyReLU 0.2, BatchNorm), bilinear upsampling + 3x3 convolutions back up (ReLU, BatchNorm), skip
    concatenation, and ``out_channels`` = D feature maps at full resolution.

    ``features(x)`` returns the input of the last 3x3 convolution; ``project(h)`` applies that convolution
    and gives U (B, D, H, T). Keeping them apart lets the reconstruction fold the inner product with the
    class embeddings into the last convolution (see :meth:`SGN.mask_logits`).
    """

    def __init__(self, ngf: int, depth: int, out_channels: int):
        super().__init__()
        self.bn0 = nn.BatchNorm2d(1)
        widths = [min(ngf * 2**i, ngf * 8) for i in range(depth)]  # ngf, 2ngf, 4ngf, 8ngf, 8ngf, ...
        self.down = nn.ModuleList()
        in_ch = 1
        for i, w in enumerate(widths):
            layers: list[nn.Module] = []
            if i > 0:
                layers.append(nn.LeakyReLU(0.2))
            layers.append(nn.Conv2d(in_ch, w, kernel_size=4, stride=2, padding=1, bias=False))
            if 0 < i < depth - 1:
                layers.append(nn.BatchNorm2d(w))
            self.down.append(nn.Sequential(*layers))
            in_ch = w
        # Up path, innermost first. Block i maps to the width of down level i-1 (skip), concatenated.
        self.up = nn.ModuleList()
        in_ch = widths[-1]
        for i in reversed(range(1, depth)):
            out = widths[i - 1]
            self.up.append(
                nn.Sequential(
                    nn.ReLU(),
                    nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
                    nn.Conv2d(in_ch, out, kernel_size=3, padding=1, bias=False),
                    nn.BatchNorm2d(out),
                )
            )
            in_ch = 2 * out  # after concatenation with the skip
        self.final_act = nn.Sequential(nn.ReLU(), nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True))
        self.final_conv = nn.Conv2d(in_ch, out_channels, kernel_size=3, padding=1)
        # Layout of the activations; use_channels_last() switches it (with the weights) for CPU inference.
        self.memory_format = torch.contiguous_format

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn0(x).contiguous(memory_format=self.memory_format)
        skips = []
        for blk in self.down:
            x = blk(x)
            skips.append(x)
        x = skips.pop()
        for blk in self.up:
            x = torch.cat([skips.pop(), blk(x)], dim=1)
        return self.final_act(x)

    def project(self, h: torch.Tensor) -> torch.Tensor:
        return self.final_conv(h)


def per_item_conv2d(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, padding) -> torch.Tensor:
    """Each batch item convolved with its own filters: h (B, K, H, T), weight (B, N, K, kh, kw), bias (B, N)
    -> (B, N, H, T).

    One grouped convolution (one group per item) in the default layout; in channels-last layout (see
    :func:`use_channels_last`) a loop of ordinary convolutions, because there oneDNN's grouped convolution
    is slower than the loop.
    """
    b, n = bias.shape
    if h.is_contiguous(memory_format=torch.channels_last) and not h.is_contiguous():
        return torch.stack([F.conv2d(h[i : i + 1], weight[i], bias[i], padding=padding)[0] for i in range(b)])
    out = F.conv2d(
        h.reshape(1, -1, *h.shape[-2:]),
        weight.reshape(b * n, *weight.shape[2:]),
        bias.reshape(b * n),
        padding=padding,
        groups=b,
    )
    return out.reshape(b, n, *out.shape[-2:])


def use_channels_last(model: nn.Module) -> nn.Module:
    """Run ``model``'s U-Net (SGN's or a baseline's) in channels-last layout, weights and activations.

    For inference on CPU: the network's forward pass is faster this way with oneDNN (1.85x for the default
    model on 2 threads; benchmarks/separate_speed.py times both layouts), with the same results up to
    float rounding. Training is left in the default layout: there the backward
    pass gains nothing and the grouped per-item convolution is faster.
    """
    for module in model.modules():
        if isinstance(module, UNet):
            module.memory_format = torch.channels_last
    return model.to(memory_format=torch.channels_last)
