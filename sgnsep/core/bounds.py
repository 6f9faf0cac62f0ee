"""Typed bounds of every setting, checked before anything is allocated or built.

A model's ``config.json``, a training config file, ``--set key=value`` and the CLI's options all end up as
values of :class:`sgnsep.models.config.SGNConfig`, :class:`sgnsep.models.config.AudioConfig` and
:class:`sgnsep.training.TrainConfig`. Without bounds an absurd value fails late and obscurely: ``num_heads 0``
as a ZeroDivisionError, ``unet_ngf 1e9`` as a MemoryError after a minute, ``hop_length 0`` in C++ frames,
``checkpoint_every 0`` as a run that claims checkpoints it never wrote. Here each setting has a type and a
range, and :func:`check` names the first one outside it in one line (the setting, the value, the range), raised
as the error class the caller gives: :class:`~sgnsep.core.errors.ModelError` (exit 5) for a model file,
:class:`~sgnsep.core.errors.UsageError` (exit 2) for options.

Bounds are wide: they exclude what cannot work (zero, negative, NaN, not an integer) and sizes no machine runs
(more than :data:`MAX_PARAMETERS` weights), not unusual choices. Settings that depend on each other (the U-Net's
depth and the input size, the patch size and the spectrogram) are checked by :func:`sgnsep.models.checkpoint.dry_run`, which builds the
network on PyTorch's ``meta`` device (shapes only, no memory) and runs one forward pass through it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

from sgnsep.core.errors import SgnsepError

#: Weights a model may have: 1e9 float32 weights are 4 GB, far above any sgnsep model (the default has 33M).
MAX_PARAMETERS = 1_000_000_000


@dataclass(frozen=True)
class Bound:
    """``kind`` int, float, bool, str, list or dict; ``lo`` / ``hi`` inclusive unless ``open_lo`` / ``open_hi``;
    ``none`` allows null."""

    kind: type
    lo: float | None = None
    hi: float | None = None
    open_lo: bool = False
    open_hi: bool = False
    none: bool = False
    items: type | None = None  # element type of a list

    def describe(self) -> str:
        """The bound in words: "an integer between 1 and 4096", "between 0 and 1", "above 0 and at most 64"."""
        if self.kind in (bool, str, list, dict):
            noun = {bool: "true or false", str: "a string", list: "a list", dict: "a JSON object"}[self.kind]
            if self.items is not None:
                noun += f" of {'integers' if self.items is int else 'strings'}"
        else:
            noun = "an integer " if self.kind is int else ""
            num = (lambda v: str(int(v))) if self.kind is int else (lambda v: f"{v:g}")
            lo, hi = self.lo, self.hi
            if lo is not None and hi is not None and not (self.open_lo or self.open_hi):
                noun += f"between {num(lo)} and {num(hi)}"
            else:
                parts = []
                if lo is not None:
                    parts.append(f"above {num(lo)}" if self.open_lo else f"at least {num(lo)}")
                if hi is not None:
                    parts.append(f"below {num(hi)}" if self.open_hi else f"at most {num(hi)}")
                noun += ("a number " if self.kind is float else "") + " and ".join(parts)
            noun = noun.strip()
        return noun + (", or null" if self.none else "")

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.none
        if self.kind is bool:
            return isinstance(value, bool)
        if self.kind is int:
            if isinstance(value, bool) or not isinstance(value, int):
                return False
        elif self.kind is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                return False
        elif self.kind is list:
            return isinstance(value, list) and (self.items is None or all(
                isinstance(v, self.items) and not isinstance(v, bool) for v in value))
        else:
            return isinstance(value, self.kind)
        if self.lo is not None and (value <= self.lo if self.open_lo else value < self.lo):
            return False
        if self.hi is not None and (value >= self.hi if self.open_hi else value > self.hi):
            return False
        return True


def _i(lo, hi=None) -> Bound:
    return Bound(int, lo, hi)


def _f(lo, hi=None, *, open_lo=False, open_hi=False, none=False) -> Bound:
    return Bound(float, lo, hi, open_lo=open_lo, open_hi=open_hi, none=none)


#: SGNConfig (sgnsep/models/config.py). String choices are checked there (``__post_init__``).
MODEL: dict[str, Bound] = {
    "num_classes": _i(1, 100_000),
    "patch_size": _i(1, 4096),
    "embed_dim": _i(1, 65_536),
    "depth": _i(0, 1024),
    "num_heads": _i(1, 4096),
    "mlp_ratio": _f(0, 1024, open_lo=True),
    "dropout": _f(0, 1, open_hi=True),
    "unet_ngf": _i(1, 65_536),
    "unet_depth": _i(2, 16),
    "gumbel_tau": _f(0, 1e6, open_lo=True),
    "class_token_loss_weight": _f(0, 1e6),
    "presence_loss_weight": _f(0, 1e6),
    "mask_threshold": _f(0, 1e6),
    "cunet_control_hidden": _i(0, 1_000_000),
    "class_token_init_std": _f(0, 1e3, open_lo=True),
    "assignment_loss_weight": _f(0, 1e6),
}

#: AudioConfig (sgnsep/models/config.py).
AUDIO: dict[str, Bound] = {
    "sample_rate": _i(1000, 768_000),
    "segment_samples": _i(16, 1 << 26),
    "n_fft": _i(4, 1 << 20),
    "hop_length": _i(1, 1 << 20),
    "warp_bins": _i(2, 65_536),
    "log_eps": _f(0, 1, open_lo=True),
    "input_level_db": _f(-400, 400, none=True),
}

#: TrainConfig (sgnsep/training/config.py).
TRAIN: dict[str, Bound] = {
    "dataset": Bound(str),
    "data_dir": Bound(str),
    "classes": Bound(list, items=str),
    "num_sources": _i(1, 64),
    "max_sources": _i(0, 64),
    "optimizer": Bound(str),
    "lr": _f(0, None, open_lo=True),
    "momentum": _f(0, 1),
    "weight_decay": _f(0, 1e6),
    "batch_size": _i(1, 65_536),
    "epochs": _i(1, 10_000_000),
    "steps_per_epoch": _i(0, 1_000_000_000),
    "lr_steps": Bound(list, items=int),
    "warmup_steps": _i(0, 1_000_000_000),
    "diagnostics_every": _i(0, 1_000_000_000),
    "val_mixtures": _i(1, 1_000_000),
    "val_data_dir": Bound(str),
    "val_dataset": Bound(str),
    "checkpoint_every": _i(1, 1_000_000_000),
    "seed": _i(0, 2**63 - 1),
    "threads": _i(0, 4096),
    "amp": Bound(bool),
    "coherent": _f(0, 1),
    "level_range_db": _f(0, 60),
    "hard_pairs": _f(0, 1),
    "hard_pair_classes": Bound(list, items=str),
    "init_from": Bound(str),
    "architecture": Bound(str),
    "model": Bound(dict),
    "audio": Bound(dict),
}


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check(table: dict[str, Bound], data: dict[str, Any], *, where: str, error: type[SgnsepError],
          prefix: str = "", skip: Iterable[str] = ()) -> None:
    """Raise ``error`` naming the first key of ``data`` whose value is outside its bound in ``table``.

    Keys not in ``table`` are left to the caller (which names unknown keys itself)."""
    skip = set(skip)
    for key, value in data.items():
        bound = table.get(key)
        if bound is None or key in skip or bound.accepts(value):
            continue
        raise error(f"{where}: {prefix}{key} must be {bound.describe()}, got {_shown(value)}.")


def check_audio(audio, *, where: str, error: type[SgnsepError]) -> None:
    """The front end's settings that depend on each other (an AudioConfig)."""
    problems = []
    if audio.hop_length > audio.n_fft:
        problems.append(f"hop_length {audio.hop_length} is larger than n_fft {audio.n_fft}")
    if audio.n_fft > audio.segment_samples:
        problems.append(f"n_fft {audio.n_fft} is larger than segment_samples {audio.segment_samples}")
    if problems:
        raise error(f"{where}: the audio settings do not fit together: {'; '.join(problems)}.")
