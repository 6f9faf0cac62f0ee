"""Configuration dataclasses: every hyperparameter of the front end and the model, with the paper's value
as the default. A checkpoint's ``config.json`` is these dataclasses written as JSON (never pickled).

Values marked "open" are not given by the SGN paper (../shared/SPEC.md lists them); the default chosen
here is written into every saved config so a checkpoint always records what it was trained with.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from typing import Any

from sgnsep.core.errors import ModelError


@dataclass(frozen=True)
class AudioConfig:
    """The audio front end shared with Sound of Pixels (SGN paper, section IV-A "Implementation")."""

    sample_rate: int = 11025  # "the audio signal is sub-sampled to 11kHz"
    segment_samples: int = 65535  # about 5.94 s; gives 256 STFT frames
    n_fft: int = 1022  # "window size of 1022" -> 512 frequency bins
    hop_length: int = 256  # "hop length of 256"
    warp_bins: int = 256  # "resampled to a log-frequency scale with size of 256 x 256"
    log_eps: float = 1e-10  # network input is log(mag + eps) (Sound of Pixels)
    # Open (not in the paper): each segment's magnitude spectrogram is scaled to this mean power (dB of the
    # mean squared warped magnitude) before the log, so the network sees every recording at one level; the
    # masks are applied to the unscaled mixture. None: no scaling (checkpoints saved before it existed).
    # The log input makes an unnormalised network level-dependent: the default model, trained on mixtures
    # of stems divided by N (median level 1.0-2.5 dB, benchmarks/input_levels.py), was tested on summed stems
    # (about 9 dB); setting the level alone took its held-out 2-source SDRi from 7.96 to 8.65 dB (weights.md,
    # sgn-gm-small).
    input_level_db: float | None = None

    @property
    def freq_bins(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def segment_frames(self) -> int:
        return 1 + self.segment_samples // self.hop_length


@dataclass(frozen=True)
class SGNConfig:
    """The Semantic Grouping Network (paper section III; sizes from section IV-A)."""

    num_classes: int = 11  # C: one learnable token per class (11 for MUSIC-11)
    # Patch embedding: "kernel size is 16 and stride size is 16" -> P = 256 patches of a 256 x 256 input.
    patch_size: int = 16
    embed_dim: int = 256  # D, "the dimension size D is 256"; also the U-Net's output channels
    depth: int = 6  # "6 self-attention transformer layers" (Table IV varies 1/3/6/12)
    num_heads: int = 8  # open: heads of each transformer layer
    mlp_ratio: float = 4.0  # open: pre-norm ViT block MLP width
    dropout: float = 0.0  # open
    # U-Net of Sound of Pixels: 7 down / 7 up blocks, ngf 64.
    unet_ngf: int = 64
    unet_depth: int = 7
    # Ablation switches (Tables III and IV).
    class_tokens: bool = True  # SCT: learnable source class tokens pass through the transformer
    grouping: bool = True  # CAG: category-aware grouping (eq. 5-6); off -> g_i = c_i
    hard_grouping: bool = False  # Table IV: hard (Gumbel-softmax, straight-through) assignment
    gumbel_tau: float = 1.0  # open: temperature of the hard variant
    grouping_scale: str = "inv_sqrt_d"  # open: scaling of the eq. 5 logits ("inv_sqrt_d" or "none")
    # Loss terms (eq. 7-9). Sound of Pixels weights the mask BCE per bin by clamp(log1p(|mix|), 1e-3, 10).
    weighted_mask_loss: bool = True
    class_token_loss_weight: float = 1.0  # eq. 7 CE(h_i, e_i)
    presence_loss_weight: float = 1.0  # eq. 7 BCE(y_i, p_i)
    # --- How SGN trains (open in the paper; see weights.md, "How SGN is trained"). Each setting keeps the
    # paper-literal value selectable; a checkpoint saved before a setting existed loads with the value in
    # LEGACY_SGN_SETTINGS, which is what it was trained with.
    # Reconstruction head, eq. 10: "none" computes <g_i, U> + b as written; "inv_sqrt_d" divides the inner
    # product by sqrt(D) as attention does, so that the logits start at the U-Net baseline's scale (|g_i| is
    # about sqrt(D) at init, which makes the literal logits several times larger and the first Adam steps
    # overshoot); "cosine" uses g_i / |g_i| times a learned temperature (initialised to 1).
    mask_head_scale: str = "inv_sqrt_d"
    # "shared": one bias b for every class (eq. 10's "+ b"); "per_class": one b_i per class.
    mask_bias: str = "per_class"
    # "sum": eq. 7 sums the class-token CE and the presence BCE over the C classes, so with many classes
    # they outweigh the reconstruction loss (a mean over bins); "mean": both are averaged over the classes.
    aux_loss_reduction: str = "mean"
    # Where eq. 7's class-token constraint e_i = softmax(FC(c_i)) is applied: "tokens", the learnable tokens
    # c_i themselves, as the paper writes it; "encoder_output", the tokens after the transformer.
    class_token_loss_on: str = "tokens"
    # "full": the presence BCE trains the whole encoder through g_i; "head_only": its gradient stops at g_i
    # (the presence head learns to read g_i, but does not shape it).
    presence_gradient: str = "full"
    # Open, not in the paper: weight of a supervised grouping loss. Mix-and-separate knows which source
    # dominates each time-frequency bin (the target masks), so each patch has a target share per class (the
    # log1p-weighted fraction of its bins that class dominates); the loss is the cross-entropy of eq. 5's
    # assignment A[p, :] against it. Without it nothing asks the assignment to follow the sources: g_i is a
    # normalised mean (eq. 6), so presence and masks can be learnt from any assignment. 0: off (the paper).
    assignment_loss_weight: float = 0.0
    # Which classes eq. 5's softmax shares each patch among for the masks: "all" C classes (the paper), or
    # "requested", only the classes whose masks are asked for (in training the classes in the mixture), so
    # that a patch goes to the source it belongs to rather than being spread over absent classes. The
    # presence head and `embed` always use the grouping over all classes. Open, not in the paper.
    grouping_over: str = "all"
    # Std of the class tokens' initial values. ViT's 0.02 makes every token nearly the same vector, so the
    # grouping's query/key get no gradient at first (its softmax over classes is flat); 0.5 puts them on the
    # scale of the batch-normalised patch features.
    class_token_init_std: float = 0.5
    # Normalisation of the log magnitude before the patch embedding: "none", or "batchnorm" (one learned
    # BatchNorm over the input channel, like the U-Net's first layer).
    patch_input_norm: str = "batchnorm"
    mask_threshold: float = 0.5  # ground truth m_i = w_i > 0.5 w_mix (section III-C)
    # The label-conditioned baseline, architecture "cunet" (sgnsep/baselines.py; the other architectures
    # ignore these). Conditioned U-Net paper (Slizovskaia, Haro & Gomez), section 3.2.1 and Table III.
    # Where FiLM goes: "encoder" (every down block but the innermost), "bottleneck" or "final". With label
    # conditioning, FiLM-encoder scores best in SDR, SI-SDR and SAR (Table III, Exp. 9; Exp. 8 and 10 are
    # the other two).
    cunet_film_at: str = "encoder"
    # "complex": one (gamma, beta) per feature map, FiLM as defined in eq. 5 and used in eq. 8-9; "simple":
    # one pair per layer (the "FiLM simple" of Meseguer-Brocal & Peeters' C-U-Net).
    cunet_film_type: str = "complex"
    # "target": the control network gets the one-hot vector of the class to extract and the U-Net runs once
    # per requested class (C-U-Net); "present": it gets the multi-hot vector of every class asked for (the
    # paper's weak label c_l) and one pass yields one mask per class (Table III's set-up).
    cunet_condition: str = "target"
    # 0: gamma, beta = a linear map of the label vector (f_j of eq. 8); > 0: one ReLU hidden layer of this
    # width first (C-U-Net's "dense" control network).
    cunet_control_hidden: int = 0

    def __post_init__(self):
        problems = []
        if self.num_classes < 1:
            problems.append("num_classes must be >= 1")
        if self.embed_dim % self.num_heads:
            problems.append(f"embed_dim {self.embed_dim} is not divisible by num_heads {self.num_heads}")
        if self.depth < 0:
            problems.append("depth must be >= 0")
        if self.unet_depth < 2:
            problems.append("unet_depth must be >= 2")
        if self.grouping_scale not in ("inv_sqrt_d", "none"):
            problems.append("grouping_scale must be 'inv_sqrt_d' or 'none'")
        if self.cunet_film_at not in ("encoder", "bottleneck", "final"):
            problems.append("cunet_film_at must be 'encoder', 'bottleneck' or 'final'")
        if self.cunet_film_type not in ("complex", "simple"):
            problems.append("cunet_film_type must be 'complex' or 'simple'")
        if self.cunet_condition not in ("target", "present"):
            problems.append("cunet_condition must be 'target' or 'present'")
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                problems.append(f"{name} must be one of {', '.join(map(repr, allowed))}, got {getattr(self, name)!r}")
        if not (math.isfinite(self.assignment_loss_weight) and self.assignment_loss_weight >= 0):
            problems.append(f"assignment_loss_weight must be a finite number >= 0, got {self.assignment_loss_weight}")
        if not (math.isfinite(self.class_token_init_std) and self.class_token_init_std > 0):
            problems.append(f"class_token_init_std must be a finite number > 0, got {self.class_token_init_std}")
        if self.cunet_control_hidden < 0:
            problems.append("cunet_control_hidden must be >= 0")
        if problems:
            raise ModelError("Invalid model config: " + "; ".join(problems) + ".")


# The allowed values of SGNConfig's string settings that shape how SGN trains.
CHOICES = {
    "mask_head_scale": ("none", "inv_sqrt_d", "cosine"),
    "mask_bias": ("shared", "per_class"),
    "aux_loss_reduction": ("sum", "mean"),
    "class_token_loss_on": ("tokens", "encoder_output"),
    "presence_gradient": ("full", "head_only"),
    "patch_input_norm": ("none", "batchnorm"),
    "grouping_over": ("all", "requested"),
}

# What every checkpoint saved before these settings existed was trained with (the package's own
# sgn-gm-small among them): a saved model config without the key means this value, not today's default.
LEGACY_SGN_SETTINGS = {
    "mask_head_scale": "none",
    "mask_bias": "shared",
    "aux_loss_reduction": "sum",
    "class_token_loss_on": "encoder_output",
    "presence_gradient": "full",
    "class_token_init_std": 0.02,
    "patch_input_norm": "none",
    "assignment_loss_weight": 0.0,
    "grouping_over": "all",
}


def saved_sgn_config(data: dict[str, Any], *, where: str) -> SGNConfig:
    """The SGNConfig a checkpoint's saved ``model`` section describes: keys it lacks that were added after
    it was written take their legacy value (:data:`LEGACY_SGN_SETTINGS`), the others the current default."""
    if isinstance(data, dict):
        data = {**{k: v for k, v in LEGACY_SGN_SETTINGS.items() if k not in data}, **data}
    return dataclass_from_dict(SGNConfig, data, where=where)


def dataclass_from_dict(cls, data: dict[str, Any], *, where: str):
    """Build ``cls`` from a JSON dict, naming unknown or ill-typed keys instead of failing obscurely."""
    if not isinstance(data, dict):
        raise ModelError(f"{where}: expected a JSON object, got {type(data).__name__}.")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ModelError(
            f"{where}: unknown keys {unknown}; this sgnsep knows {sorted(known)}.",
            hint="Was the checkpoint written by a newer sgnsep? Upgrade with `pip install -U sgnsep`.",
        )
    kwargs = {}
    for name, value in data.items():
        default = getattr(cls(), name) if name in known else None
        if isinstance(default, bool) and not isinstance(value, bool):
            raise ModelError(f"{where}: key '{name}' must be true or false, got {value!r}.")
        if isinstance(default, int) and not isinstance(default, bool):
            if not isinstance(value, int) or isinstance(value, bool):
                raise ModelError(f"{where}: key '{name}' must be an integer, got {value!r}.")
        if isinstance(default, float) and not isinstance(value, (int, float)):
            raise ModelError(f"{where}: key '{name}' must be a number, got {value!r}.")
        if known[name].type == "float | None" and value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
        ):
            raise ModelError(f"{where}: key '{name}' must be a finite number or null, got {value!r}.")
        kwargs[name] = value
    from sgnsep.core import bounds  # typed ranges, before __post_init__ divides by num_heads or a network is sized

    table = {"SGNConfig": bounds.MODEL, "AudioConfig": bounds.AUDIO}.get(cls.__name__)
    if table is not None:
        bounds.check(table, kwargs, where=where, error=ModelError)
    return cls(**kwargs)


def to_dict(obj) -> dict[str, Any]:
    return dataclasses.asdict(obj)


__all__ = ["AudioConfig", "SGNConfig", "CHOICES", "LEGACY_SGN_SETTINGS", "saved_sgn_config", "dataclass_from_dict", "to_dict", "field"]
