"""`sgnsep train`: mix-and-separate training of SGN (paper section III-C and IV-A).

Defaults are the paper's recipe (SGD, momentum 0.9, lr 1e-3, batch 80, 100 epochs, N = 2 sources) plus
Sound of Pixels' weight decay 1e-4 and x0.1 learning-rate steps at epochs 40 and 80. Every value can be
overridden from a JSON file or ``--set key=value``; the resolved config is saved with every checkpoint.

A run folder holds ``last/`` and ``best/`` (checkpoints that `separate` and `eval` load directly),
``state.safetensors`` + ``state.json`` (optimizer, RNG and position, for ``--resume``; no pickle), and
``log.csv``. Everything is written atomically: a run killed at any moment resumes from its last checkpoint.
Before its first step a run writes ``state.json`` alone, with step 0 and its settings, so that one stopped
before its first checkpoint can be started again by ``--resume`` exactly as it first started. The folder is
locked while a run writes in it (sgnsep/folder_lock.py), and a new run never replaces what it did not write
there without ``overwrite`` (:func:`check_run_folder`).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from sgnsep.core import folder_lock
from sgnsep._version import __version__
from sgnsep.core.atomic_write import remove_stale_partials, write_bytes_atomic
from sgnsep.models.checkpoint import CheckpointMeta, build_network, check_architecture, dry_run, save_checkpoint
from sgnsep.models.config import AudioConfig, SGNConfig, dataclass_from_dict
from sgnsep.datasets.registry import load_dataset
from sgnsep.datasets.sampling import sample_mixture
from sgnsep.core.errors import OutputError, SgnsepError, UsageError
from sgnsep.mixing import make_batch
from sgnsep.models.sgn import sgn_loss
from sgnsep.training_diagnostics import auxiliary_gradients, diagnostic_columns, step_diagnostics


# log.csv's first columns; the diagnostics columns of sgnsep/training_diagnostics.py follow them.
# With val_data_dir: the training corpus's own val split, scored beside the held-out one (val_sdri).
CORPUS_VAL_COLUMNS = ["corpus_val_sdri", "corpus_val_si_sdri"]
LOG_COLUMNS = ["step", "epoch", "lr", "loss", "rec", "class_token", "presence", "assignment", "val_sdri",
               "val_si_sdri", "seconds"]


class TrainingDiverged(SgnsepError):
    exit_code = 7


# --resume reuses the run's saved settings (a --set lr=... given with it is not applied), so say what works.
DIVERGED_HINT = "Start a new run (another --out) with a lower learning rate (--set lr=...)."


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
    # Every this many steps the log row also gets the diagnostics of sgnsep/training_diagnostics.py
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


def _init_checkpoint(cfg: TrainConfig):
    """The checkpoint ``init_from`` names, checked against the run's settings -> (LoadedCheckpoint, cfg with
    its classes, model and audio settings)."""
    from sgnsep.models.checkpoint import load_checkpoint
    from sgnsep.models.registry import resolve_model

    loaded = load_checkpoint(resolve_model(cfg.init_from))
    where = f"init_from {cfg.init_from}"
    ck_model, ck_audio = dataclasses.asdict(loaded.meta.model), dataclasses.asdict(loaded.meta.audio)
    for section, given, saved in (("model", cfg.model, ck_model), ("audio", cfg.audio, ck_audio)):
        free = FINE_TUNABLE_MODEL_SETTINGS if section == "model" else FINE_TUNABLE_AUDIO_SETTINGS
        differ = sorted(k for k, v in given.items()
                        if k in saved and saved[k] != v and k != "num_classes" and k not in free)
        unknown = sorted(k for k in given if k not in saved)
        if differ or unknown:
            raise UsageError(
                f"{where}: the checkpoint's {section} settings differ from the run's "
                f"({', '.join(f'{k}={saved.get(k)!r} vs {given[k]!r}' for k in differ + unknown)}).",
                hint=f"Drop those '{section}' settings: a fine-tuned model keeps the checkpoint's.",
            )
    if loaded.meta.architecture != cfg.architecture:
        raise UsageError(
            f"{where}: the checkpoint is a {loaded.meta.architecture!r} model, the run asks for {cfg.architecture!r}.",
            hint=f"Set architecture={loaded.meta.architecture} (--set architecture={loaded.meta.architecture}) to fine-tune it.",
        )
    extra = [c for c in cfg.classes if c not in loaded.meta.classes]
    if extra:
        raise UsageError(
            f"{where}: the checkpoint has no class {', '.join(map(repr, extra))}.",
            hint=f"Its classes: {', '.join(loaded.meta.classes)}. Train a new model for other classes.",
        )
    ck_model.pop("num_classes", None)
    ck_model.update({k: v for k, v in cfg.model.items() if k in FINE_TUNABLE_MODEL_SETTINGS})
    ck_audio.update({k: v for k, v in cfg.audio.items() if k in FINE_TUNABLE_AUDIO_SETTINGS})
    fitted = dataclasses.replace(cfg, classes=list(loaded.meta.classes), model=ck_model, audio=ck_audio)
    return loaded, fitted


# --- optimizer state without pickle -------------------------------------------------------------------


def _optimizer_to_flat(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"opt.{idx}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars[f"{idx}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _optimizer_from_flat(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any]):
    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        if key.startswith("opt."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = v
    for key, v in meta["scalars"].items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


# --- the loop -------------------------------------------------------------------------------------------


@dataclass
class TrainResult:
    run_dir: Path
    steps: int
    best_val_sdri: float
    last_val_sdri: float
    seconds: float


def _si_sdr(ref: torch.Tensor, est: torch.Tensor) -> torch.Tensor:
    ref = ref - ref.mean(-1, keepdim=True)
    est = est - est.mean(-1, keepdim=True)
    alpha = (est * ref).sum(-1, keepdim=True) / (ref.pow(2).sum(-1, keepdim=True) + 1e-12)
    target = alpha * ref
    return 10 * torch.log10(target.pow(2).sum(-1) / ((est - target).pow(2).sum(-1) + 1e-12) + 1e-12)


@torch.no_grad()
def validate(model: torch.nn.Module, batches, audio: AudioConfig) -> dict[str, float]:
    """Scores on the fixed validation mixtures, with the evaluation code of `sgnsep eval`: mean SDR
    improvement over the mixture (BSS Eval v3, as mir_eval) and mean SI-SDR improvement."""
    from sgnsep.audio import frontend
    from sgnsep.evaluation.metrics import evaluate_sources

    model.eval()
    sdri, si_sdri = [], []
    for b in batches:
        out = model(b.net_input, b.classes)
        masks = frontend.unwarp(torch.sigmoid(out.mask_logits), audio)
        spec = frontend.stft(b.mixture, audio).unsqueeze(1)
        est = frontend.istft(spec * masks, audio, length=b.mixture.shape[-1])
        if not torch.isfinite(est).all():
            raise TrainingDiverged(
                "The model's outputs on the validation mixtures became NaN or infinite (training diverged); "
                "no checkpoint was written for them.",
                hint=DIVERGED_HINT,
            )
        mix = b.mixture.unsqueeze(1).expand_as(b.sources)
        si_sdri.append((_si_sdr(b.sources, est) - _si_sdr(b.sources, mix)).flatten())
        for refs, ests, mixes in zip(b.sources.double().cpu().numpy(), est.double().cpu().numpy(), mix.double().cpu().numpy()):
            for s_est, s_mix in zip(evaluate_sources(refs, ests, metrics=("sdr",)), evaluate_sources(refs, mixes, metrics=("sdr",))):
                if s_est.sdr is not None and s_mix.sdr is not None:
                    sdri.append(s_est.sdr - s_mix.sdr)
    model.train()
    return {
        "sdri": float(np.mean(sdri)) if sdri else float("nan"),
        "si_sdri": float(torch.cat(si_sdri).mean()),
    }


def validation_batches(val_set, cfg: TrainConfig, num_classes: int, audio: AudioConfig, mask_threshold: float,
                       device, class_index: Sequence[int] | None = None) -> list:
    """The run's fixed validation mixtures: ``cfg.val_mixtures`` of ``cfg.num_sources`` sources, drawn with
    their own seed (``cfg.seed`` + 1,000,003) so that they do not depend on the training position, and the
    same for any checkpoint scored with the same settings (benchmarks/validation_score.py).
    ``class_index[j]``: the model's index of ``val_set.classes[j]`` (None: the same order)."""
    vrng = np.random.default_rng(cfg.seed + 1_000_003)
    to_model = np.arange(num_classes) if class_index is None else np.asarray(class_index, dtype=np.int64)
    batches = []
    for start in range(0, cfg.val_mixtures, 16):
        n = min(16, cfg.val_mixtures - start)
        pairs = [sample_mixture(val_set, cfg.num_sources, audio.segment_samples, vrng, coherent=cfg.coherent)
                 for _ in range(n)]
        batches.append(
            make_batch(
                torch.from_numpy(np.stack([p[0] for p in pairs])),
                torch.from_numpy(np.stack([to_model[p[1]] for p in pairs])),
                num_classes, audio, mask_threshold=mask_threshold,
            ).to(device)
        )
    return batches


def load_validation_corpus(cfg: TrainConfig, classes: Sequence[str], audio: AudioConfig):
    """The "val" split of ``cfg.val_data_dir`` (layout ``cfg.val_dataset`` or ``cfg.dataset``) on the training
    classes it has -> (dataset, class_index), ``class_index[j]`` being the index in ``classes`` of the dataset's
    class j. Raises UsageError when it shares fewer than ``cfg.num_sources`` classes with training."""
    name = cfg.val_dataset or cfg.dataset
    where = f"val_data_dir {cfg.val_data_dir}"
    every = load_dataset(name, cfg.val_data_dir, split="val", sample_rate=audio.sample_rate,
                         min_samples=audio.segment_samples)
    shared = [c for c in classes if c in every.classes and c not in every.empty_classes]
    if len(shared) < cfg.num_sources:
        raise UsageError(
            f"{where}: its val split has {len(shared)} of the training classes ({', '.join(shared) or 'none'}); "
            f"validation mixes {cfg.num_sources}.",
            hint=f"Its classes: {', '.join(every.classes)}. Render it with the training classes "
            "(`sgnsep data music --classes ...`).",
        )
    val_set = load_dataset(name, cfg.val_data_dir, split="val", sample_rate=audio.sample_rate,
                           min_samples=audio.segment_samples, classes=shared)
    return val_set, [list(classes).index(c) for c in val_set.classes]


def _init_distributed(device: torch.device) -> tuple[int, int, torch.device, bool]:
    """Join the process group that `torchrun` describes in the environment (WORLD_SIZE, RANK, LOCAL_RANK,
    MASTER_ADDR/PORT): NCCL between GPUs, Gloo on CPUs. Without torchrun: rank 0 of 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, device, False
    import torch.distributed as dist

    owns = not dist.is_initialized()
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if owns:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size(), device, owns


def _tensorboard(run_dir: Path):
    """A TensorBoard writer if the optional `tensorboard` package is installed, else None."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(run_dir / "tensorboard"))


STATE_NAME = "state.safetensors"
STATE_JSON = "state.json"
LOG_NAME = "log.csv"
CHECKPOINTS = ("best", "last")
TENSORBOARD = "tensorboard"
log = logging.getLogger(__name__)  # `sgnsep train` prints these warnings


def _read_state(run_dir: Path) -> dict[str, Any]:
    """What --resume continues: the saved state, or (``{"config": ..., "step": 0}``) the settings of a run that
    stopped before its first checkpoint, which then starts again from step 0 exactly as it first did."""
    from safetensors import safe_open

    path = run_dir / STATE_NAME
    if not path.is_file():
        started = _started_state(run_dir)
        if started is not None:
            return started
        if _own_log(run_dir / LOG_NAME):
            raise UsageError(
                f"--resume: {run_dir} has no checkpoint to resume from (the run stopped before its first one) "
                "and no saved settings.",
                hint="Start it again without --resume, with its options: the stopped run's log is replaced.",
            )
        raise UsageError(f"--resume: {run_dir} has no {STATE_NAME} to resume from.", hint="Start without --resume.")
    try:
        with safe_open(str(path), "pt") as fh:
            return json.loads(fh.metadata()["state"])
    except Exception as exc:  # truncated or foreign file
        raise UsageError(f"--resume: {path} is unreadable ({exc}).", hint="Start a new run with another --out.") from None


def _started_state(run_dir: Path) -> dict[str, Any] | None:
    """state.json as a run writes it before its first step (step 0, its settings), if that is what is there."""
    try:
        data = json.loads((run_dir / STATE_JSON).read_text())
    except (OSError, ValueError, RecursionError):
        return None
    if isinstance(data, dict) and data.get("step") == 0 and isinstance(data.get("config"), dict):
        return data
    return None


def _own_log(path: Path) -> bool:
    """Whether ``path`` is a log.csv that `sgnsep train` wrote (its header starts with LOG_COLUMNS)."""
    try:
        with open(path, newline="") as fh:
            header = fh.readline().strip().split(",")
    except (OSError, UnicodeDecodeError):
        return False
    return header[: len(LOG_COLUMNS)] == LOG_COLUMNS


def _remove_stale_partials(run_dir: Path) -> None:
    """Delete the temporary files of writes that a killed run never finished (see sgnsep/atomic_write.py and
    sgnsep/checkpoint.py). The writes are atomic, so the finished files beside them are intact; the leftovers
    would only pile up, one per kill. Called with the run folder locked, so the temporary files of versions
    whose names carry no process id can go too: no other run writes here."""
    for folder in (run_dir, *(run_dir / c for c in CHECKPOINTS)):
        remove_stale_partials(folder, legacy=True)


@dataclass
class RunFolder:
    """What a run folder holds, sorted into what `sgnsep train` writes there and what it does not."""

    path: Path
    state: bool = False  # state.safetensors: a run that can be resumed
    started: bool = False  # a run that stopped before its first checkpoint (its state.json, or its log.csv alone)
    models: list[Path] = field(default_factory=list)  # best/ and last/ when they hold checkpoint files
    foreign_log: bool = False  # a log.csv that `sgnsep train` did not write
    unknown: list[Path] = field(default_factory=list)  # anything else: the user's

    @property
    def empty(self) -> bool:
        return not (self.state or self.started or self.models or self.foreign_log or self.unknown)


def inspect_run_folder(run_dir: str | Path) -> RunFolder:
    from sgnsep.models.checkpoint import CONFIG_NAME, WEIGHTS_NAME

    run_dir = Path(run_dir)
    found = RunFolder(run_dir)
    if not run_dir.is_dir():
        return found
    for entry in sorted(run_dir.iterdir()):
        name = entry.name
        if name == STATE_NAME:
            found.state = True
        elif name == STATE_JSON and _started_state(run_dir) is not None:
            found.started = True
        elif name == STATE_JSON:
            pass  # the readable copy beside state.safetensors
        elif name == LOG_NAME and entry.is_file():
            if _own_log(entry):
                found.started = True
            else:
                found.foreign_log = True
        elif name in CHECKPOINTS and entry.is_dir() and not entry.is_symlink():
            for inner in sorted(entry.iterdir()):
                if inner.name in (CONFIG_NAME, WEIGHTS_NAME):
                    if entry not in found.models:
                        found.models.append(entry)
                elif not _is_partial(inner.name):
                    found.unknown.append(inner)
        elif name == TENSORBOARD and entry.is_dir():
            pass
        elif name == folder_lock.LOCK_NAME or _is_partial(name):
            pass
        else:
            found.unknown.append(entry)
    if found.state:
        found.started = False  # a log and state.json beside a state are that run's
    return found


def _is_partial(name: str) -> bool:
    return name.startswith(".") and name.endswith(".partial")


def check_run_folder(run_dir: str | Path, *, resume: bool = False, overwrite: bool = False) -> RunFolder:
    """Refuse, before any work, a run folder whose contents a new run would replace or mix with (a resumable
    run, a model, a log that is not ours, files of the user's), unless ``overwrite``; ``resume`` continues the
    run there. A run that stopped before its first checkpoint has nothing to keep: a new run starts it over."""
    run_dir = Path(run_dir)
    if resume and overwrite:
        raise UsageError("--resume continues the run in --out and --overwrite starts a new one there; pass one of them.")
    if run_dir.exists() and not run_dir.is_dir():
        raise OutputError(f"--out {run_dir} is a file, not a folder.", hint="Choose a folder with --out.")
    found = inspect_run_folder(run_dir)
    if resume or overwrite:
        return found
    hint = "Pass --overwrite to start a new run in its place (it replaces only what `sgnsep train` writes), or choose another --out."
    if found.state:  # a usage error, as before: the options (--resume, --overwrite) say what to do with it
        raise UsageError(
            f"{run_dir} already holds a training run ({STATE_NAME}).",
            hint="Pass --resume to continue it, --overwrite to start a new run in its place, or choose another --out.",
        )
    if found.models:
        raise OutputError(f"{run_dir} already holds a model ({found.models[0]}).", hint=hint)
    if found.foreign_log:
        raise OutputError(f"{run_dir / LOG_NAME} exists and is not a log that `sgnsep train` wrote.", hint=hint)
    if found.unknown:
        more = f" and {len(found.unknown) - 1} more" if len(found.unknown) > 1 else ""
        raise OutputError(
            f"{run_dir} holds files that `sgnsep train` does not write ({found.unknown[0]}{more}).",
            hint="Choose a new or empty --out, or pass --overwrite to train there anyway (those files are kept).",
        )
    return found


def _remove_run_files(run_dir: Path) -> None:
    """Take away what a previous run wrote in ``run_dir`` (state first, so that a stop half-way leaves a folder
    that reads as "stopped before its first checkpoint"); nothing else there is touched."""
    from sgnsep.models.checkpoint import CONFIG_NAME, WEIGHTS_NAME

    for path in (run_dir / STATE_NAME, run_dir / STATE_JSON, run_dir / LOG_NAME):
        path.unlink(missing_ok=True)
    for c in CHECKPOINTS:
        for name in (WEIGHTS_NAME, CONFIG_NAME):
            (run_dir / c / name).unlink(missing_ok=True)
    tb = run_dir / TENSORBOARD
    if tb.is_dir():
        for events in tb.glob("events.out.tfevents.*"):
            events.unlink(missing_ok=True)
    _remove_stale_partials(run_dir)
    for d in (*(run_dir / c for c in CHECKPOINTS), tb):
        try:
            d.rmdir()  # only if empty: a file of the user's keeps it
        except OSError:
            pass


def train(
    cfg: TrainConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    device: torch.device | None = None,
    name: str = "",
    on_step: Callable[[dict[str, Any]], None] | None = None,
    max_steps: int | None = None,
) -> TrainResult:
    """Train into ``run_dir``, which this process holds locked throughout (sgnsep/folder_lock.py): a second
    run into the same folder is refused instead of interleaving its log and checkpoints with this one's.

    ``resume`` continues the run there. Otherwise the folder must be new, empty, or hold a run that stopped
    before its first checkpoint (started again in its place); a resumable run, a model, a foreign log or files
    of the user's are refused (:func:`check_run_folder`) unless ``overwrite``, which replaces only what a run
    writes, once everything else has been checked."""
    device = device or torch.device("cpu")
    rank, world, device, owns_group = _init_distributed(device)
    if rank != 0:  # the lead process holds the folder and writes in it; the others only read the state
        return _train(cfg, Path(run_dir), resume, False, device, name, on_step, max_steps,
                      (rank, world, owns_group))
    with folder_lock.hold(run_dir, option="--out", what="run folder"):
        return _train(cfg, Path(run_dir), resume, overwrite, device, name, on_step, max_steps,
                      (rank, world, owns_group))


def _train(cfg, run_dir, resume, overwrite, device, name, on_step, max_steps, dist_info) -> TrainResult:
    started = time.perf_counter()
    rank, world, owns_group = dist_info
    lead = rank == 0  # only the first process validates, writes checkpoints and logs
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    state_json = run_dir / STATE_JSON
    found = check_run_folder(run_dir, resume=resume, overwrite=overwrite) if lead else None
    start_over = False  # the previous run's files go before the first step (once everything is checked)
    if resume:
        saved = _read_state(run_dir)
        cfg = config_from_dict(saved["config"], where=str(state_json))
        if saved.get("step") == 0 and not (run_dir / STATE_NAME).is_file():
            log.warning(f"{run_dir} has no checkpoint yet (the run stopped before its first one): starting it "
                        "again from step 0 with its saved settings.")
            resume, start_over = False, True
        elif lead:
            _remove_stale_partials(run_dir)
    elif found is not None and (overwrite or found.started) and not found.empty:
        if not overwrite:
            log.warning(f"{run_dir} holds a run that stopped before its first checkpoint: starting a new run in "
                        "its place (its log is replaced).")
        start_over = True
    requested = cfg  # as given: what a run stopped before its first checkpoint starts again with
    init = None
    if cfg.init_from and not resume:  # a resumed run's saved config already holds the checkpoint's settings
        # the checkpoint's classes, in its order (class tokens are indexed by position)
        init, cfg = _init_checkpoint(cfg)
    audio = cfg.audio_config()
    train_set = load_dataset(
        cfg.dataset, cfg.data_dir or None, split="train", sample_rate=audio.sample_rate,
        min_samples=audio.segment_samples, classes=cfg.classes or None,
    )
    val_set = load_dataset(
        cfg.dataset, cfg.data_dir or None, split="val", sample_rate=audio.sample_rate,
        min_samples=audio.segment_samples, classes=train_set.classes,
    )
    classes = train_set.classes
    if cfg.hard_pairs > 0 and cfg.hard_pair_classes:  # the default pairs may name classes a dataset lacks
        from sgnsep.datasets.mixture_draws import parse_pairs

        unknown = sorted({c for pair in parse_pairs(cfg.hard_pair_classes) for c in pair} - set(classes))
        if unknown:
            raise UsageError(f"hard_pair_classes names classes the training data does not have: {', '.join(unknown)}.",
                             hint=f"Its classes: {', '.join(classes)}.")
    mcfg = cfg.model_config(len(classes))
    torch.manual_seed(cfg.seed)
    model = build_network(cfg.architecture, mcfg, audio.warp_bins)
    if init is not None:
        model.load_state_dict(init.model.state_dict())
    model = model.to(device)
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    total_audio = train_set.total_samples
    steps_per_epoch = cfg.steps_per_epoch or max(1, total_audio // (audio.segment_samples * cfg.batch_size))
    total_steps = steps_per_epoch * cfg.epochs

    def lr_at(step: int) -> float:
        epoch = step // steps_per_epoch
        warmup = min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps else 1.0
        return warmup * cfg.lr * 0.1 ** sum(epoch >= e for e in cfg.lr_steps)

    corpus_val_batches = None
    if cfg.val_data_dir:
        corpus_val_batches = validation_batches(val_set, cfg, len(classes), audio, mcfg.mask_threshold, device)
        held_out, class_index = load_validation_corpus(cfg, classes, audio)
        val_batches = validation_batches(held_out, cfg, len(classes), audio, mcfg.mask_threshold, device,
                                         class_index=class_index)
    else:
        val_batches = validation_batches(val_set, cfg, len(classes), audio, mcfg.mask_threshold, device)

    if cfg.batch_size % world:
        raise UsageError(f"batch_size {cfg.batch_size} does not split evenly over {world} processes.")
    per_rank_batch = cfg.batch_size // world
    # Each process draws its own mixtures; with one process the stream is the one of a plain run.
    rng = np.random.default_rng(cfg.seed if world == 1 else [cfg.seed, rank])
    step, best = 0, -math.inf
    if resume:
        from safetensors.torch import load_file

        tensors = load_file(str(run_dir / "state.safetensors"))
        model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
        _optimizer_from_flat(opt, {k: v.to(device) for k, v in tensors.items() if k.startswith("opt.")}, saved["optimizer"])
        torch.set_rng_state(tensors["rng.torch"])
        rng_states = saved["numpy_rng"]
        if world > 1:
            if not isinstance(rng_states, list) or len(rng_states) != world:
                raise UsageError(f"--resume: the run was saved with a different number of processes than {world}.")
            rng_states = rng_states[rank]
        rng.bit_generator.state = rng_states
        step, best = saved["step"], saved["best_val_sdri"]
    if start_over and lead:
        _remove_run_files(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if lead and not resume:
        # Before the first step: a run stopped before its first checkpoint keeps its settings, so that
        # --resume can start it again from step 0 exactly as it first started (and a new run knows the
        # folder holds nothing else of value).
        started_state = {"config": dataclasses.asdict(requested), "step": 0, "world_size": world,
                         "note": "started; no checkpoint yet"}
        write_bytes_atomic(state_json, (json.dumps(started_state, indent=1) + "\n").encode(), durable=True)
    net = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    def meta(extra: dict[str, Any]) -> CheckpointMeta:
        return CheckpointMeta(
            classes=classes, model=mcfg, audio=audio, architecture=cfg.architecture, name=name or run_dir.name,
            training={"config": dataclasses.asdict(cfg), "steps": step, "sgnsep_version": __version__, **extra},
        )

    def save_state(val: float):
        from safetensors.torch import save

        tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        opt_tensors, opt_meta = _optimizer_to_flat(opt)
        tensors.update(opt_tensors)
        tensors["rng.torch"] = torch.get_rng_state()
        state = {
            "config": dataclasses.asdict(cfg), "step": step, "best_val_sdri": best, "last_val_sdri": val,
            "optimizer": opt_meta, "numpy_rng": rng_states_all, "world_size": world,
        }
        # One file holds tensors and state (in the safetensors header), replaced atomically: a kill at any
        # moment leaves either the previous state or the new one, never a mix. state.json is a readable copy.
        text = json.dumps(state, indent=1)
        write_bytes_atomic(run_dir / "state.safetensors", save(tensors, metadata={"state": text}), durable=True)
        write_bytes_atomic(state_json, (text + "\n").encode(), durable=True)

    log_path = run_dir / LOG_NAME
    if resume and lead and log_path.is_file():
        # Steps logged after the saved state were lost with the interrupted run and are redone: drop their rows.
        rows = log_path.read_text().splitlines(keepends=True)
        kept = rows[:1] + [r for r in rows[1:] if r.split(",", 1)[0].isdigit() and int(r.split(",", 1)[0]) <= step]
        if len(kept) != len(rows):
            write_bytes_atomic(log_path, "".join(kept).encode(), durable=True)
    new_log = not (resume and log_path.exists())  # a new run's log starts afresh, never after another's rows
    log_file = open(log_path, "a" if not new_log else "w", newline="") if lead else open(os.devnull, "w")
    writer = csv.writer(log_file)
    has_aux = cfg.architecture == "sgn"
    has_grouping = has_aux and mcfg.grouping
    diag_columns = diagnostic_columns(model, has_aux_terms=has_aux, has_grouping=has_grouping)
    if corpus_val_batches is not None:
        diag_columns = CORPUS_VAL_COLUMNS + diag_columns
    if new_log and lead:
        writer.writerow(LOG_COLUMNS + diag_columns)
    tb = _tensorboard(run_dir) if lead else None
    last_val = float("nan")
    end = total_steps if max_steps is None else min(total_steps, max_steps)
    # Mixed precision on CUDA: bfloat16 where the GPU has it (no loss scaling needed), else float16 with
    # a gradient scaler. The CPU trains in float32.
    use_amp = cfg.amp and device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    model.train()
    try:
        while step < end:
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            n_src = cfg.num_sources if cfg.max_sources <= cfg.num_sources else int(
                rng.integers(cfg.num_sources, cfg.max_sources + 1)
            )
            pairs = [sample_mixture(train_set, n_src, audio.segment_samples, rng, coherent=cfg.coherent,
                                    level_range_db=cfg.level_range_db, hard_pairs=cfg.hard_pairs,
                                    hard_pair_classes=cfg.hard_pair_classes)
                     for _ in range(per_rank_batch)]
            batch = make_batch(
                torch.from_numpy(np.stack([p[0] for p in pairs])),
                torch.from_numpy(np.stack([p[1] for p in pairs])),
                len(classes), audio, mask_threshold=mcfg.mask_threshold,
            ).to(device)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                out = net(batch.net_input, batch.classes)
                loss = sgn_loss(out, batch.target_masks, batch.present, mcfg,
                                weight=batch.weight if mcfg.weighted_mask_loss else None, classes=batch.classes)
            finite = torch.isfinite(loss.total.detach()).to(torch.float32)
            if world > 1:  # every process must stop together, or the others wait forever in all-reduce
                import torch.distributed as dist

                dist.all_reduce(finite, op=dist.ReduceOp.MIN)
            if not bool(finite):
                raise TrainingDiverged(
                    f"The loss became {float(loss.total)} at step {step}; no checkpoint was written for it.",
                    hint=DIVERGED_HINT,
                )
            # Diagnostics on the lead process of a single-process run (with DDP the gradients are averaged
            # over processes and the per-term split would mix local and global gradients).
            diag_due = lead and world == 1 and cfg.diagnostics_every and (step + 1) % cfg.diagnostics_every == 0
            aux_grads = auxiliary_gradients(model, loss, mcfg) if diag_due and has_aux else None
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss.total).backward()
            if diag_due:
                scaler.unscale_(opt)
                diag = step_diagnostics(model, out, batch.present, aux_grads, has_grouping=has_grouping)
            scaler.step(opt)
            scaler.update()
            step += 1
            row = {"step": step, "epoch": step / steps_per_epoch, "lr": lr_at(step - 1),
                   "loss": loss.total.item(), "rec": loss.reconstruction.item(),
                   "class_token": loss.class_token.item(), "presence": loss.presence.item(),
                   "assignment": loss.assignment.item(), "val_sdri": "", "val_si_sdri": ""}
            row.update({c: "" for c in diag_columns})
            if diag_due:
                row.update(diag)
            if (step % cfg.checkpoint_every == 0 or step == end) and world > 1:
                import torch.distributed as dist

                gathered: list[Any] = [None] * world
                dist.all_gather_object(gathered, rng.bit_generator.state)
                rng_states_all = gathered
            else:
                rng_states_all = rng.bit_generator.state
            if (step % cfg.checkpoint_every == 0 or step == end) and not all(
                torch.isfinite(p).all() for p in model.parameters()
            ):  # every process holds the same weights, so all stop here together
                raise TrainingDiverged(
                    f"The weights became NaN or infinite at step {step}; no checkpoint was written for it.",
                    hint=DIVERGED_HINT,
                )
            state_due = (step % cfg.checkpoint_every == 0 or step == end) and lead
            if state_due:
                scores = validate(model, val_batches, audio)
                last_val = scores["sdri"]
                row["val_sdri"], row["val_si_sdri"] = scores["sdri"], scores["si_sdri"]
                extra = {"val_sdri": scores["sdri"], "val_si_sdri": scores["si_sdri"]}
                if corpus_val_batches is not None:
                    own = validate(model, corpus_val_batches, audio)
                    row["corpus_val_sdri"], row["corpus_val_si_sdri"] = own["sdri"], own["si_sdri"]
                    extra.update(corpus_val_sdri=own["sdri"], corpus_val_si_sdri=own["si_sdri"])
                save_checkpoint(run_dir / "last", model, meta(extra))
                if last_val > best:
                    best = last_val
                    save_checkpoint(run_dir / "best", model, meta(extra))
                if tb is not None:
                    tb.add_scalar("val/sdri", scores["sdri"], step)
                    tb.add_scalar("val/si_sdri", scores["si_sdri"], step)
            row["seconds"] = round(time.perf_counter() - started, 1)
            writer.writerow([row[k] for k in LOG_COLUMNS + diag_columns])
            if tb is not None:
                for k in ("loss", "rec", "class_token", "presence", "lr"):
                    tb.add_scalar(f"train/{k}", row[k], step)
            log_file.flush()
            if state_due:  # after the log row: a run killed in between resumes with every step logged once
                save_state(last_val)
            if on_step:
                on_step({**row, "total_steps": end})
    finally:
        log_file.close()
        if tb is not None:
            tb.close()
        if owns_group:
            import torch.distributed as dist

            dist.destroy_process_group()
    return TrainResult(run_dir, step, best, last_val, time.perf_counter() - started)
