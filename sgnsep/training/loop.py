"""`sgnsep train`: mix-and-separate training of SGN and its baselines (paper section III-C and IV-A).

:func:`train` checks the run folder, locks it while it writes there (:mod:`sgnsep.core.folder_lock`), and runs
the steps: draw mixtures, compute the losses, step the optimizer, validate and checkpoint every so often.
Everything is written atomically: a run killed at any moment resumes from its last checkpoint.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from sgnsep._version import __version__
from sgnsep.core import folder_lock
from sgnsep.core.atomic_write import write_bytes_atomic
from sgnsep.core.errors import UsageError
from sgnsep.datasets.registry import load_dataset
from sgnsep.datasets.sampling import sample_mixture
from sgnsep.training.batch import make_batch
from sgnsep.models.checkpoint import CheckpointMeta, build_network, save_checkpoint
from sgnsep.models.sgn import sgn_loss
from sgnsep.training.config import (
    FINE_TUNABLE_AUDIO_SETTINGS, FINE_TUNABLE_MODEL_SETTINGS, TrainConfig, config_from_dict,
)
from sgnsep.training.run_folder import (
    CORPUS_VAL_COLUMNS, LOG_COLUMNS, LOG_NAME, STATE_JSON, STATE_NAME, check_run_folder, read_state, remove_run_files,
    remove_stale_run_partials,
)
from sgnsep.training.validation import (
    DIVERGED_HINT, TrainingDiverged, load_validation_corpus, validate, validation_batches,
)
from sgnsep.training.diagnostics import auxiliary_gradients, diagnostic_columns, step_diagnostics

log = logging.getLogger(__name__)  # `sgnsep train` prints these warnings


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


@dataclass
class TrainResult:
    run_dir: Path
    steps: int
    best_val_sdri: float
    last_val_sdri: float
    seconds: float


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


log = logging.getLogger(__name__)  # `sgnsep train` prints these warnings


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
        saved = read_state(run_dir)
        cfg = config_from_dict(saved["config"], where=str(state_json))
        if saved.get("step") == 0 and not (run_dir / STATE_NAME).is_file():
            log.warning(f"{run_dir} has no checkpoint yet (the run stopped before its first one): starting it "
                        "again from step 0 with its saved settings.")
            resume, start_over = False, True
        elif lead:
            remove_stale_run_partials(run_dir)
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
        remove_run_files(run_dir)
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
