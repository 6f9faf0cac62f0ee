"""The settings of a training run (:class:`TrainConfig`): defaults, ``--set key=value`` overrides, and the
checks that refuse an absurd value before anything is built.

Defaults are the paper's recipe (SGD, momentum 0.9, lr 1e-3, batch 80, 100 epochs, N = 2 sources; section IV-A)
plus Sound of Pixels' weight decay 1e-4 and x0.1 learning-rate steps at epochs 40 and 80. Every value can be
overridden from a JSON file or ``--set key=value``; the resolved config is saved with every checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sgnsep.core.errors import UsageError
from sgnsep.models.checkpoint import check_architecture, dry_run
from sgnsep.models.config import AudioConfig, SGNConfig, dataclass_from_dict


@dataclass
class TrainConfig:
    """The training recipe. Paper values by default (section IV-A)."""

    dataset: str = "solos"  # a name in sgnsep.datasets.DATASETS
    data_dir: str = ""  # empty: the dataset's default folder ($SGNSEP_DATA/<name>)
    classes: list[str] = field(default_factory=list)  # empty: every class folder in data_dir
    num_sources: int = 2  # "the number of sources N for training is 2"
    max_sources: int = 0  # > num_sources: draw N uniformly from num_sources..max_sources (curriculum)
    optimizer: str = "sgd"  # "SGD optimizer with momentum 0.9"
    lr: float = 1e-3  # "The learning rate is 0.001"
    momentum: float = 0.9
    weight_decay: float = 1e-4  # Sound of Pixels
    batch_size: int = 80  # "batch size of 80"
    epochs: int = 100  # "100 epochs"
    steps_per_epoch: int = 0  # 0: one pass worth of segments over the training clips
    lr_steps: list[int] = field(default_factory=lambda: [40, 80])  # epochs of x0.1 (Sound of Pixels)
    # Open: the learning rate rises linearly from lr / warmup_steps to lr over the first warmup_steps steps
    # (0: no warm-up, as the paper's recipe; see weights.md for the measured choice).
    warmup_steps: int = 50
    # Every this many steps the log row also gets the diagnostics of sgnsep/training/diagnostics.py
    # (gradient norm per loss term and parameter group, mask-logit statistics, grouping mass on the classes
    # present); 0: never.
    diagnostics_every: int = 10
    val_mixtures: int = 64
    # Where the checkpoint is chosen: the "val" split of this corpus (a folder of the layout val_dataset,
    # empty: the training dataset's) instead of the training corpus's own. A corpus of a soundfont family that
    # training never hears (`sgnsep data music --soundfonts family:timgm6mb --only-splits val,test`) scores
    # generalisation, which validating on the training family does not (weights.md). Its classes that
    # training lacks are left out. With it, the log also scores the training corpus's val split
    # (corpus_val_sdri), so both families are reported.
    val_data_dir: str = ""
    val_dataset: str = ""
    checkpoint_every: int = 50  # steps
    seed: int = 0
    threads: int = 0  # 0: torch's default
    amp: bool = True  # mixed precision on CUDA only
    # Fraction of training and validation mixtures made of stems of one track at one offset (stems and
    # MUSDB18 layouts; see sgnsep.datasets.sample_mixture). 0: every mixture pairs random clips, as the
    # paper's mix-and-separate does.
    coherent: float = 0.0
    # Harder training mixtures (sgnsep/datasets/mixture_draws.py), training mixtures only (validation stays at equal
    # levels and uniform classes, so runs with different settings are scored alike). level_range_db: the
    # level of each source relative to the first is uniform in +-this many dB (12: relative levels from -12
    # to +12 dB; 0: equal levels, the paper's mix-and-separate). hard_pairs: the probability that a mixture
    # holds a hard pair, two classes of hard_pair_classes ("a/b"; empty: violin/viola, viola/cello,
    # cello/bassoon, ...) or, in coherent draws, two stems in the same register. With num_sources 1 and
    # max_sources 4 a run trains on mixtures of 1 to 4 sources.
    level_range_db: float = 0.0
    hard_pairs: float = 0.0
    hard_pair_classes: list[str] = field(default_factory=list)
    # Fine-tuning: start from this checkpoint's weights (a folder, or a registered name such as
    # "sgn-gm-small") instead of a random initialisation. Its model and audio settings and its classes are
    # used; "model" and "audio" overrides must agree with them, and "classes" may only list its classes.
    init_from: str = ""
    # The network: "sgn" (the paper's), or one of the baselines it compares against (sgnsep/baselines.py):
    # "cunet" (label-conditioned U-Net, FiLM) or "unet" (U-Net alone, one mask head per class). Everything
    # else in this recipe (data, loss, budget) is shared, so runs that differ only here compare the models.
    architecture: str = "sgn"
    model: dict[str, Any] = field(default_factory=dict)  # SGNConfig overrides
    audio: dict[str, Any] = field(default_factory=dict)  # AudioConfig overrides

    def model_config(self, num_classes: int) -> SGNConfig:
        return dataclass_from_dict(SGNConfig, {**self.model, "num_classes": num_classes}, where="train config 'model'")

    def audio_config(self) -> AudioConfig:
        return dataclass_from_dict(AudioConfig, self.audio, where="train config 'audio'")


def parse_overrides(cfg: TrainConfig, pairs: list[str]) -> TrainConfig:
    """Apply ``key=value`` overrides; values are JSON (``lr=0.01``, ``classes=["a","b"]``) or bare strings.
    ``model.depth=2`` sets a model field."""
    data = dataclasses.asdict(cfg)
    for pair in pairs:
        if "=" not in pair:
            raise UsageError(f"--set expects key=value, got '{pair}'.")
        key, raw = pair.split("=", 1)
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        target = data
        parts = key.strip().split(".")
        for p in parts[:-1]:
            if p not in ("model", "audio"):
                raise UsageError(f"--set {key}: only model.* and audio.* are nested.")
            target = target[p]
        if len(parts) == 1 and parts[0] not in data:
            raise UsageError(f"--set {key}: unknown setting; known: {', '.join(sorted(data))}.")
        target[parts[-1]] = value
    return config_from_dict(data, where="--set")


def config_from_dict(data: dict[str, Any], *, where: str) -> TrainConfig:
    if not isinstance(data, dict):
        raise UsageError(f"{where}: expected a JSON object of training settings, got {type(data).__name__}.")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise UsageError(f"{where}: unknown training settings {unknown}.")
    _check_bounds(data, where)
    cfg = TrainConfig(**data)
    if cfg.optimizer not in ("sgd", "adam"):
        raise UsageError(f"{where}: optimizer must be 'sgd' or 'adam'.")
    if cfg.batch_size < 1 or cfg.epochs < 1 or cfg.num_sources < 1:
        raise UsageError(f"{where}: batch_size, epochs and num_sources must be positive.")
    if cfg.val_dataset and not cfg.val_data_dir:
        raise UsageError(f"{where}: val_dataset is set but val_data_dir is not.",
                         hint="Name the validation corpus with val_data_dir (--set val_data_dir=DIR).")
    if not 0.0 <= cfg.coherent <= 1.0:
        raise UsageError(f"{where}: coherent must be between 0 and 1, got {cfg.coherent}.")
    from sgnsep.datasets.mixture_draws import parse_pairs

    parse_pairs(cfg.hard_pair_classes, where=f"{where}: hard_pair_classes")
    check_architecture(cfg.architecture, where=where)
    if not cfg.init_from:  # a fine-tune takes the checkpoint's settings, checked when it is loaded
        _dry_run(cfg, where)
    return cfg


def _check_bounds(data: dict[str, Any], where: str) -> None:
    """Every setting's type and range (sgnsep/bounds.py), before a dataset is read or a network is built."""
    from sgnsep.core import bounds

    bounds.check(bounds.TRAIN, data, where=where, error=UsageError)
    for section, table in (("model", bounds.MODEL), ("audio", bounds.AUDIO)):
        if isinstance(data.get(section), dict):
            bounds.check(table, data[section], where=where, error=UsageError, prefix=f"{section}.")


def _dry_run(cfg: TrainConfig, where: str) -> None:
    """The model and audio settings together, on the meta device (no memory): a U-Net too deep for the input
    fails now, not after the dataset has been read."""
    from sgnsep.core.errors import ModelError

    try:
        mcfg = cfg.model_config(max(1, len(cfg.classes)))
        audio = cfg.audio_config()
    except ModelError as exc:  # unknown keys and choices: options, so a usage error
        raise UsageError(f"{where}: {exc.message}", hint=exc.hint) from None
    dry_run(cfg.architecture, mcfg, audio, where=where, error=UsageError)


# Model settings that only shape the loss, not the network or what it computes at inference: a fine-tuning
# run may change them (the checkpoint's weights fit any of them); every other model setting must match.
FINE_TUNABLE_MODEL_SETTINGS = ("class_token_loss_weight", "presence_loss_weight", "weighted_mask_loss", "mask_threshold",
                               "aux_loss_reduction", "class_token_loss_on", "presence_gradient", "assignment_loss_weight")


# The input level is a front-end setting a fine-tune may add or change (the network then learns at it).
FINE_TUNABLE_AUDIO_SETTINGS = ("input_level_db",)


def load_config_file(path: str | Path, *, name: str = "config file") -> TrainConfig:
    """The training settings of a JSON file (missing keys keep their defaults); ``name`` is how errors call it."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"{name} {path}: cannot read it as JSON ({exc}).") from None
    except RecursionError:
        raise UsageError(f"{name} {path}: the JSON is nested too deeply to be a training config.") from None
    return config_from_dict(data, where=str(path))


def resolve_dataset(
    dataset: str, data_dir: str | Path | None, *, name: str = "dataset"
) -> tuple[str, Path | None, bool]:
    """``(dataset, data_dir, render_offline)`` for a dataset name of `sgnsep train`: one of
    :data:`sgnsep.datasets.registry.DATASETS`, or ``"synth"``, the offline soundfont corpus, which is trained on as
    solos from ``data_dir`` (default ``$SGNSEP_DATA/synth``) and has to be rendered there first when
    ``render_offline`` is true and the folder holds no corpus yet."""
    from sgnsep.datasets.catalog import data_root
    from sgnsep.datasets.registry import DATASETS

    if dataset == "synth":
        return "solos", Path(data_dir) if data_dir else data_root() / "synth", True
    if dataset not in DATASETS:
        raise UsageError(f"Unknown {name} '{dataset}'; choose from synth, {', '.join(DATASETS)}.")
    return dataset, None if data_dir is None else Path(data_dir), False


def config_from_options(cfg: TrainConfig, *, dataset: str, data_dir: str | Path | None = None,
                        init_from: str | None = None, overrides: Sequence[str] = (),
                        from_file: bool = False) -> TrainConfig:
    """``cfg`` with the dataset, its folder and the model to start from as `sgnsep train` gives them, then the
    ``key=value`` ``overrides``. A config read from a file (``from_file``) keeps its own dataset unless another
    is named (``dataset`` other than the default "solos", or a ``data_dir``)."""
    given = [f"dataset={json.dumps(dataset)}"] if (not from_file or dataset != "solos" or data_dir) else []
    if data_dir is not None:
        given.append(f"data_dir={json.dumps(str(data_dir))}")
    if init_from is not None:
        given.append(f"init_from={json.dumps(init_from)}")
    return parse_overrides(cfg, given + list(overrides))
