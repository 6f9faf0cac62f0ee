"""The models the SGN paper measures itself against, on SGN's own front end, data, loss and checkpoints.

The paper's claims are relative (section IV-B): SGN against a U-Net without guidance and against
label-conditioned models. Both live here so that `sgnsep train --set architecture=...` trains them with
exactly SGN's recipe and `separate` / `eval` run them unchanged:

- ``unet`` (:class:`ClassHeadUNet`): Sound of Pixels without vision, "SoP (w/o visual)" (SGN paper IV-B,
  baseline 3): the same U-Net with one output channel per class, whose sigmoid is that class's mask.
- ``cunet`` (:class:`ConditionedUNet`): the label-conditioned U-Net of the Conditioned U-Net paper
  (Slizovskaia, Haro & Gomez, section 3.2.1): a control network turns the class label vector into FiLM
  parameters (eq. 8) that scale and shift U-Net activations (eq. 9); where and how is set by the
  ``cunet_*`` fields of :class:`~sgnsep.models.config.SGNConfig`.

Both take SGN's input, the (B, 1, H, T) log-magnitude warped spectrogram, and honour SGN's contract:
``forward(x, classes)`` with classes (N,) or (B, N) long, any order, duplicates allowed, returns an output
whose ``mask_logits`` is (B, N, H, T) for those classes. Neither has class tokens or a presence head, so
their outputs carry ``class_logits = presence_logits = None`` and :func:`sgnsep.models.sgn.sgn_loss` reduces
to the reconstruction term (eq. 8).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from sgnsep.models.config import SGNConfig
from sgnsep.models.unet import UNet, per_item_conv2d


@dataclass
class MaskOutput:
    """mask_logits (B, N, H, T) for the classes asked for. The SGN-only terms of the loss are absent."""

    mask_logits: torch.Tensor
    class_logits: torch.Tensor | None = None
    presence_logits: torch.Tensor | None = None


def _batch_classes(classes: torch.Tensor, batch: int) -> torch.Tensor:
    return classes.unsqueeze(0).expand(batch, -1) if classes.dim() == 1 else classes


def selected_output_channels(conv: nn.Conv2d, h: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """Output channels ``classes`` of ``conv(h)``, computing only those.

    A convolution's output channel c depends only on row c of its weight and bias, so the requested rows
    are gathered and the others never computed: the cost at full resolution is N maps, not C (the same
    fold as :meth:`sgnsep.models.sgn.SGN.mask_logits`). h (B, K, H, T); classes (N,) or (B, N) -> (B, N, H, T).
    """
    if classes.dim() == 1:  # the same classes for every item: one ordinary convolution
        return F.conv2d(h, conv.weight[classes], conv.bias[classes], padding=conv.padding)
    # Each item's N rows (B, N, K, kh, kw), one convolution per item.
    return per_item_conv2d(h, conv.weight[classes], conv.bias[classes], conv.padding)


# --- unet: Sound of Pixels without vision -----------------------------------------------------------------


class ClassHeadUNet(nn.Module):
    """The Sound of Pixels U-Net (``unet_ngf``, ``unet_depth``) with C output channels, one mask per class.

    Without the visual stream of Sound of Pixels nothing tells the U-Net which source to extract, so each
    class gets its own output channel (the U-Net baseline of the Conditioned U-Net paper, section 3.1 (a),
    is built the same way: "outputs 13 masks at the last upconvolutional layer"). Only the channels asked
    for are computed (:func:`selected_output_channels`), exactly equal to those of the full output.
    """

    def __init__(self, cfg: SGNConfig, input_size: int = 256):
        super().__init__()
        self.cfg = cfg
        self.unet = UNet(cfg.unet_ngf, cfg.unet_depth, cfg.num_classes)

    def forward(self, x: torch.Tensor, classes: torch.Tensor) -> MaskOutput:
        """x (B, 1, H, T); classes (N,) or (B, N) long -> mask_logits (B, N, H, T)."""
        h = self.unet.features(x)
        return MaskOutput(selected_output_channels(self.unet.final_conv, h, classes))


# --- cunet: the label-conditioned U-Net (FiLM) ---------------------------------------------------------------


class ConditionedUNet(nn.Module):
    """The Sound of Pixels U-Net modulated by FiLM from a class label vector (Conditioned U-Net paper, 3.2.1).

    Control network (eq. 8, ``(gamma_j, beta_j) = f_j(c)``): the label vector c, optionally through one
    ReLU hidden layer of ``cunet_control_hidden`` units (the "dense" control of Meseguer-Brocal & Peeters'
    C-U-Net), then one linear map per FiLM location to gamma_j and beta_j.

    FiLM (eq. 9, ``a_hat = gamma a + beta``), written ``(1 + gamma) a + beta`` so that small control outputs
    leave the U-Net close to unmodulated (as the paper's released code does). It is applied after a block's
    BatchNorm and before its activation (section 4.3, "convolutional layer followed by batch normalisation
    with an optional conditioning layer (for FiLM-encoder conditioning), and LeakyReLU"); in this U-Net the
    LeakyReLU opens the next block, so FiLM modulates a down block's output, which feeds both the next
    block and the skip connection.

    ``cunet_film_at``: "encoder" (every down block but the innermost), "bottleneck" (the innermost) or
    "final" (the features entering the output convolution): Table III's Exp. 9, 8 and 10.
    ``cunet_film_type``: "complex", one (gamma, beta) per feature map (FiLM proper), or "simple", one pair
    per layer (C-U-Net's "FiLM simple").
    ``cunet_condition``: "target", c is the one-hot vector of the class to extract and the network runs once
    per requested class (batched as B*N) with one output channel, the C-U-Net way; or "present", c is the
    multi-hot vector of every class asked for (the paper's weak label ``c_l``, the classes present in the
    mixture when training) and one pass gives one output channel per class, of which only the requested
    ones are computed. Layers before the first FiLM location do not depend on c and run once per mixture.
    """

    def __init__(self, cfg: SGNConfig, input_size: int = 256):
        super().__init__()
        self.cfg = cfg
        out_channels = 1 if cfg.cunet_condition == "target" else cfg.num_classes
        self.unet = UNet(cfg.unet_ngf, cfg.unet_depth, out_channels)
        depth = cfg.unet_depth
        widths = [_conv_of(blk).out_channels for blk in self.unet.down]
        if cfg.cunet_film_at == "encoder":
            self.film_levels = list(range(depth - 1))
        elif cfg.cunet_film_at == "bottleneck":
            self.film_levels = [depth - 1]
        else:  # "final"
            self.film_levels = []
        # Channels of each FiLM location, in order: the down blocks, then (for "final") the output conv's input.
        channels = [widths[i] for i in self.film_levels]
        if cfg.cunet_film_at == "final":
            channels.append(self.unet.final_conv.in_channels)
        self.film_sizes = [c if cfg.cunet_film_type == "complex" else 1 for c in channels]
        hidden = cfg.cunet_control_hidden
        self.control = (
            nn.Sequential(nn.Linear(cfg.num_classes, hidden), nn.ReLU()) if hidden > 0 else nn.Identity()
        )
        control_out = hidden if hidden > 0 else cfg.num_classes
        self.to_gamma = nn.Linear(control_out, sum(self.film_sizes))
        self.to_beta = nn.Linear(control_out, sum(self.film_sizes))

    def film_parameters(self, labels: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """labels (B', C) -> per FiLM location (gamma, beta), each (B', channels or 1, 1, 1). Eq. 8."""
        z = self.control(labels)
        gammas = self.to_gamma(z).split(self.film_sizes, dim=-1)
        betas = self.to_beta(z).split(self.film_sizes, dim=-1)
        return [(g[..., None, None], b[..., None, None]) for g, b in zip(gammas, betas)]

    def conditioned_features(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The U-Net's features (input of its output convolution) under FiLM from ``labels``.

        x (B, 1, H, T); labels (B * R, C), R label vectors per mixture, in mixture-major order ->
        (B * R, K, H, T). Follows :meth:`sgnsep.models.unet.UNet.features` step for step (tested equal when
        FiLM is the identity).
        """
        unet = self.unet
        repeats = labels.shape[0] // x.shape[0]
        film = iter(self.film_parameters(labels))

        def modulate(a: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
            if a.shape[0] != labels.shape[0]:  # first FiLM location: from here on, one item per label vector
                a = a.repeat_interleave(repeats, dim=0)
                skips[:] = [s.repeat_interleave(repeats, dim=0) for s in skips]
            gamma, beta = next(film)
            return (1 + gamma) * a + beta  # eq. 9

        x = unet.bn0(x).contiguous(memory_format=unet.memory_format)  # as UNet.features
        skips: list[torch.Tensor] = []
        for level, blk in enumerate(unet.down):
            x = blk(x)
            if level in self.film_levels:
                x = modulate(x, skips)
            skips.append(x)
        x = skips.pop()
        for blk in unet.up:
            x = torch.cat([skips.pop(), blk(x)], dim=1)
        h = unet.final_act(x)
        if self.cfg.cunet_film_at == "final":
            h = modulate(h, skips)
        return h

    def forward(self, x: torch.Tensor, classes: torch.Tensor) -> MaskOutput:
        """x (B, 1, H, T); classes (N,) or (B, N) long -> mask_logits (B, N, H, T)."""
        b = x.shape[0]
        classes = _batch_classes(classes, b)
        n = classes.shape[1]
        c = self.cfg.num_classes
        if self.cfg.cunet_condition == "target":
            labels = F.one_hot(classes.reshape(-1), c).to(x.dtype)  # (B*N, C), mixture-major
            h = self.conditioned_features(x, labels)
            return MaskOutput(self.unet.project(h).reshape(b, n, *h.shape[-2:]))
        labels = torch.zeros(b, c, dtype=x.dtype, device=x.device).scatter_(1, classes, 1.0)  # multi-hot
        h = self.conditioned_features(x, labels)
        return MaskOutput(selected_output_channels(self.unet.final_conv, h, classes))


def _conv_of(block: nn.Sequential) -> nn.Conv2d:
    return next(m for m in block if isinstance(m, nn.Conv2d))
