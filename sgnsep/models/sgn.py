"""The Semantic Grouping Network (SGN), following section III of Mo & Tian's paper.

Top to bottom: patch embedding of the log-frequency spectrogram, learnable source class tokens and the
transformer (III-B), the class-token constraint (III-B), category-aware grouping and the presence head
(III-C, eq. 5-7), the Sound of Pixels U-Net (`sgnsep.models.unet`), the light reconstruction (eq. 10: W = U G) and the losses
(eq. 7-9).

Shapes: ``B`` batch, ``C`` classes the model knows, ``N`` classes asked for, ``D`` embedding size,
``P`` patches, ``H`` x ``T`` the 256 x 256 log-frequency spectrogram (frequency x time).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from sgnsep.models.config import SGNConfig
from sgnsep.models.unet import UNet, per_item_conv2d, use_channels_last  # noqa: F401  (use_channels_last: for sgnsep.model's old users)


# --- III-B: patch embedding, source class tokens, transformer ---------------------------------------


class TokenEncoder(nn.Module):
    """Conv patch embedding + C learnable class tokens + a pre-norm transformer.

    ``forward(x)`` with x (B, 1, H, T) returns patch features f (B, P, D) and class tokens c (B, C, D).
    With ``class_tokens=False`` (Table III, "w/o SCT") the class embeddings are a learned table that does
    not attend over the audio; the transformer then sees only the patches.
    """

    def __init__(self, cfg: SGNConfig, input_size: int):
        super().__init__()
        self.cfg = cfg
        d = cfg.embed_dim
        # Open: the log magnitude has a large common offset, so without a normalisation most of the patch
        # vectors' energy lies along one direction ("batchnorm" removes it as the U-Net's bn0 does).
        self.input_norm = nn.BatchNorm2d(1) if cfg.patch_input_norm == "batchnorm" else nn.Identity()
        self.patch_embed = nn.Conv2d(1, d, kernel_size=cfg.patch_size, stride=cfg.patch_size)
        num_patches = (input_size // cfg.patch_size) ** 2
        # Open in the paper: learned absolute position embeddings, ViT style.
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches, d))
        self.class_tokens = nn.Parameter(torch.zeros(1, cfg.num_classes, d))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        # Cut at 2 std, or at torch's default +-2 where that is wider (the same draw as before for 0.02).
        bound = max(2.0, 2 * cfg.class_token_init_std)
        nn.init.trunc_normal_(self.class_tokens, std=cfg.class_token_init_std, a=-bound, b=bound)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(
                d_model=d,
                nhead=cfg.num_heads,
                dim_feedforward=int(d * cfg.mlp_ratio),
                dropout=cfg.dropout,
                activation="gelu",
                batch_first=True,
                norm_first=True,
            )
            for _ in range(cfg.depth)
        )
        self.norm = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = x.shape[0]
        f = self.patch_embed(self.input_norm(x)).flatten(2).transpose(1, 2) + self.pos_embed  # (B, P, D)
        c = self.class_tokens.expand(b, -1, -1)  # (B, C, D)
        if self.cfg.class_tokens:
            z = torch.cat([c, f], dim=1)
            for blk in self.blocks:
                z = blk(z)
            z = self.norm(z)
            c, f = z[:, : self.cfg.num_classes], z[:, self.cfg.num_classes :]
        else:
            for blk in self.blocks:
                f = blk(f)
            f = self.norm(f)
        return f, c


# --- III-C: category-aware grouping (eq. 5-6) and presence head ---------------------------------------


class CategoryAwareGrouping(nn.Module):
    """GroupViT-style grouping of patch features into one embedding per class.

    eq. 5: ``A[p, i] = softmax_i((Wq f_p) . (Wk c_i))``;
    eq. 6: ``g_i = c_i + Wo (sum_p A[p, i] Wv f_p) / (sum_p A[p, i])``.
    The softmax runs over classes, so each patch is shared out among the classes. ``hard_grouping``
    (Table IV) replaces it by a straight-through Gumbel-softmax one-hot assignment.
    """

    def __init__(self, cfg: SGNConfig):
        super().__init__()
        d = cfg.embed_dim
        self.cfg = cfg
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(d, d)
        self.v = nn.Linear(d, d)
        self.o = nn.Linear(d, d)
        self.scale = 1.0 / math.sqrt(d) if cfg.grouping_scale == "inv_sqrt_d" else 1.0

    def assignment_logits(self, f: torch.Tensor, c: torch.Tensor, allowed: torch.Tensor | None = None) -> torch.Tensor:
        """The logits (B, P, C) of eq. 5, before the softmax over classes; -inf for classes that ``allowed``
        (B, C) bool leaves out, so the softmax shares each patch among the allowed classes only."""
        logits = torch.einsum("bpd,bcd->bpc", self.q(f), self.k(c)) * self.scale
        if allowed is not None:
            logits = logits.masked_fill(~allowed.unsqueeze(1), float("-inf"))
        return logits

    def assignment(self, logits: torch.Tensor) -> torch.Tensor:
        """Soft (or hard) assignment A (B, P, C) of patches to classes, eq. 5, from its logits."""
        if self.cfg.hard_grouping:
            if self.training:
                return F.gumbel_softmax(logits, tau=self.cfg.gumbel_tau, hard=True, dim=-1)
            # At inference the hard assignment is the argmax (no noise), as in GroupViT.
            index = logits.argmax(dim=-1)
            return F.one_hot(index, logits.shape[-1]).to(logits.dtype)
        return logits.softmax(dim=-1)

    def forward(self, f: torch.Tensor, c: torch.Tensor, allowed: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> g (B, C, D), A (B, P, C) and A's logits (B, P, C). With ``allowed`` (B, C) bool, the classes left
        out get no patch (their g_i is c_i)."""
        logits = self.assignment_logits(f, c, allowed)
        a = self.assignment(logits)
        pooled = torch.einsum("bpc,bpd->bcd", a, self.v(f))
        # eps guards a class that no patch was assigned to (possible with hard grouping).
        pooled = pooled / (a.sum(dim=1).unsqueeze(-1) + 1e-6)
        return c + self.o(pooled), a, logits


# --- The whole network ----------------------------------------------------------------------------------


@dataclass
class SGNOutput:
    """What one forward pass produces.

    mask_logits (B, N, H, T) for the classes asked for; class_logits (B, C, C), the class-token classifier
    h_i of eq. 7 (None without class tokens); presence_logits (B, C), FC(g_i) of eq. 7; assignment (B, P, C)
    of eq. 5 (None without grouping); embeddings (B, C, D), g_i; assignment_logits (B, P, C), eq. 5 before
    its softmax (None without grouping).
    """

    mask_logits: torch.Tensor
    class_logits: torch.Tensor | None
    presence_logits: torch.Tensor
    assignment: torch.Tensor | None
    embeddings: torch.Tensor
    assignment_logits: torch.Tensor | None = None


class SGN(nn.Module):
    def __init__(self, cfg: SGNConfig, input_size: int = 256):
        super().__init__()
        self.cfg = cfg
        self.encoder = TokenEncoder(cfg, input_size)
        self.class_head = nn.Linear(cfg.embed_dim, cfg.num_classes) if cfg.class_tokens else None
        self.grouping = CategoryAwareGrouping(cfg) if cfg.grouping else None
        self.presence_head = nn.Linear(cfg.embed_dim, 1)
        self.unet = UNet(cfg.unet_ngf, cfg.unet_depth, cfg.embed_dim)
        # "+ b" of the light reconstruction: one for all classes, or one per class (cfg.mask_bias).
        self.mask_bias = nn.Parameter(torch.zeros(cfg.num_classes if cfg.mask_bias == "per_class" else ()))
        if cfg.mask_head_scale == "cosine":
            self.mask_log_temperature = nn.Parameter(torch.zeros(()))  # learned temperature, starts at 1

    def head_embeddings(self, g: torch.Tensor) -> torch.Tensor:
        """g (B, N, D) scaled as the reconstruction head uses it (cfg.mask_head_scale)."""
        if self.cfg.mask_head_scale == "inv_sqrt_d":
            return g * (1.0 / math.sqrt(self.cfg.embed_dim))
        if self.cfg.mask_head_scale == "cosine":
            return F.normalize(g, dim=-1) * self.mask_log_temperature.exp()
        return g

    def mask_logits(self, h: torch.Tensor, g: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """Light reconstruction, eq. 10: logit_i(f, t) = <g_i, U[:, f, t]> + b, with g_i scaled by
        :meth:`head_embeddings` and b shared or per class.

        U = conv3x3(h) is linear in h, so <g_i, conv(h)> = conv_{sum_d g_i[d] W_d}(h): the N per-class
        filters are folded from the D output filters and only N maps are computed instead of D. This is
        exact (see tests) and makes the cost independent of D at full resolution.
        h (B, K, H, T), g (B, N, D) the embeddings of ``classes`` (B, N) -> (B, N, H, T).
        """
        conv = self.unet.final_conv
        g = self.head_embeddings(g)
        weight = torch.einsum("bnd,dkij->bnkij", g, conv.weight)  # (B, N, K, 3, 3)
        b = self.mask_bias[classes] if self.mask_bias.dim() else self.mask_bias
        bias = torch.einsum("bnd,d->bn", g, conv.bias) + b
        return per_item_conv2d(h, weight, bias, conv.padding)

    def embed(self, x: torch.Tensor):
        """Class embeddings g (B, C, D) plus the auxiliary outputs of III-B / III-C: the class-token logits,
        the presence logits and the grouping's assignment."""
        return self.embed_with_assignment_logits(x)[:4]

    def embed_with_assignment_logits(self, x: torch.Tensor):
        """As :meth:`embed`, plus the assignment's logits (None without grouping)."""
        return self._embed(x)[:5]

    def _embed(self, x: torch.Tensor):
        """As :meth:`embed_with_assignment_logits`, plus the encoder's patch features and tokens."""
        f, c = self.encoder(x)
        if self.class_head is None:
            class_logits = None
        elif self.cfg.class_token_loss_on == "tokens":  # e_i = softmax(FC(c_i)) on the tokens themselves
            class_logits = self.class_head(self.encoder.class_tokens).expand(x.shape[0], -1, -1)
        else:  # on the tokens after the transformer
            class_logits = self.class_head(c)
        if self.grouping is not None:
            g, a, a_logits = self.grouping(f, c)
        else:
            g, a, a_logits = c, None, None
        presence = self.presence_head(g.detach() if self.cfg.presence_gradient == "head_only" else g).squeeze(-1)
        return g, class_logits, presence, a, a_logits, f, c

    def forward(self, x: torch.Tensor, classes: torch.Tensor) -> SGNOutput:
        """x (B, 1, H, T) log-magnitude input; classes (B, N) long: which class masks to compute.

        Any number of classes in any order, including the same class twice; masks come back in that order.
        """
        if classes.dim() == 1:
            classes = classes.unsqueeze(0).expand(x.shape[0], -1)
        g, class_logits, presence, a, a_logits, f, c = self._embed(x)
        h = self.unet.features(x)
        g_masks = g
        if self.grouping is not None and self.cfg.grouping_over == "requested":
            allowed = torch.zeros(g.shape[:2], dtype=torch.bool, device=g.device).scatter_(1, classes, True)
            g_masks = self.grouping(f, c, allowed)[0]
        selected = torch.gather(g_masks, 1, classes.unsqueeze(-1).expand(-1, -1, g.shape[-1]))
        return SGNOutput(self.mask_logits(h, selected, classes), class_logits, presence, a, g, a_logits)


# --- Losses (eq. 7-9) -----------------------------------------------------------------------------------


@dataclass
class SGNLoss:
    total: torch.Tensor
    reconstruction: torch.Tensor
    class_token: torch.Tensor
    presence: torch.Tensor
    assignment: torch.Tensor  # the supervised grouping term (cfg.assignment_loss_weight; 0 when off)


def assignment_targets(
    target_masks: torch.Tensor, classes: torch.Tensor, num_classes: int, patch_size: int, weight: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per patch, the share of each class: the (weighted) fraction of the patch's bins that class
    dominates in the target masks, and the patch's weight.

    target_masks (B, N, H, T) of ``classes`` (B, N); weight (B, 1, H, T) or None (every bin alike)
    -> shares (B, P, C), zero for classes not in the mixture, summing to at most 1 per patch; patch
    weights (B, P), the mean bin weight of each patch. P runs over patches in the patch embedding's order.
    """
    w = torch.ones_like(target_masks[:, :1]) if weight is None else weight
    energy = F.avg_pool2d(w, patch_size)  # (B, 1, H', T')
    share = F.avg_pool2d(target_masks * w, patch_size) / energy.clamp_min(1e-8)  # (B, N, H', T')
    share = share.flatten(2).transpose(1, 2)  # (B, P, N)
    shares = share.new_zeros(*share.shape[:2], num_classes)
    shares.scatter_add_(2, classes.unsqueeze(1).expand(-1, share.shape[1], -1), share)
    return shares, energy.flatten(1)


def sgn_loss(
    out: SGNOutput,
    target_masks: torch.Tensor,
    present: torch.Tensor,
    cfg: SGNConfig,
    weight: torch.Tensor | None = None,
    classes: torch.Tensor | None = None,
) -> SGNLoss:
    """L = L_rec + L_group (eq. 9).

    L_rec = sum over the N sources of BCE(m_i, m_hat_i) (eq. 8), averaged over bins and batch, optionally
    weighted per bin as Sound of Pixels does (``weight``, (B, 1, H, T)). L_group (eq. 7) = sum_i CE(h_i, e_i)
    against class index i + sum_i BCE(y_i, p_i) against the multi-hot ``present`` (B, C); with
    ``cfg.aux_loss_reduction`` "mean" both sums over the C classes become means.

    ``out`` may also be a baseline's output (sgnsep/baselines.py): without class tokens or a presence head
    (``class_logits`` / ``presence_logits`` None) those terms are zero and L = L_rec.

    With ``cfg.assignment_loss_weight`` > 0 (not in the paper) a grouping term is added: the cross-entropy
    of the assignment A[p, :] (eq. 5) against each patch's class shares (:func:`assignment_targets`; needs
    ``classes`` (B, N), the classes of ``target_masks``), weighted by patch energy and averaged.
    """
    rec = F.binary_cross_entropy_with_logits(
        out.mask_logits, target_masks, weight=weight, reduction="none"
    ).mean(dim=(0, 2, 3)).sum()
    zero = out.mask_logits.new_zeros(())
    if out.class_logits is not None:
        b, c, _ = out.class_logits.shape
        target = torch.arange(c, device=out.class_logits.device).expand(b, c)
        ce = F.cross_entropy(out.class_logits.reshape(b * c, c), target.reshape(-1), reduction="sum") / b
    else:
        ce = zero
    if out.presence_logits is not None:
        bce = F.binary_cross_entropy_with_logits(out.presence_logits, present, reduction="sum") / present.shape[0]
    else:
        bce = zero
    if cfg.aux_loss_reduction == "mean" and out.presence_logits is not None:
        num_classes = out.presence_logits.shape[-1]
        ce, bce = ce / num_classes, bce / num_classes
    assign = zero
    logits = getattr(out, "assignment_logits", None)
    if cfg.assignment_loss_weight > 0 and logits is not None:
        if classes is None:
            raise ValueError("the assignment loss needs the classes of the target masks")
        shares, energy = assignment_targets(target_masks, classes, logits.shape[-1], cfg.patch_size, weight)
        per_patch = -(shares * logits.log_softmax(dim=-1)).sum(dim=-1)  # (B, P)
        assign = (per_patch * energy).sum() / energy.sum().clamp_min(1e-8)
    total = rec + cfg.class_token_loss_weight * ce + cfg.presence_loss_weight * bce + cfg.assignment_loss_weight * assign
    return SGNLoss(total, rec, ce, bce, assign)
