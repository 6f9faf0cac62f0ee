"""A run folder and its files: ``last/`` and ``best/`` (checkpoints that `separate` and `eval` load directly),
``state.safetensors`` + ``state.json`` (optimizer, RNG and position, for ``--resume``; no pickle), ``log.csv`` and
``tensorboard/``. Before its first step a run writes ``state.json`` alone, with step 0 and its settings, so that one
stopped before its first checkpoint can be started again by ``--resume`` exactly as it first started. A new run
never replaces what it did not write there without ``overwrite`` (:func:`check_run_folder`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sgnsep.core import folder_lock
from sgnsep.core.atomic_write import remove_stale_partials
from sgnsep.core.errors import OutputError, UsageError


# log.csv's first columns; the diagnostics columns of sgnsep/training/diagnostics.py follow them.
# With val_data_dir: the training corpus's own val split, scored beside the held-out one (val_sdri).
CORPUS_VAL_COLUMNS = ["corpus_val_sdri", "corpus_val_si_sdri"]


LOG_COLUMNS = ["step", "epoch", "lr", "loss", "rec", "class_token", "presence", "assignment", "val_sdri",
               "val_si_sdri", "seconds"]


STATE_NAME = "state.safetensors"


STATE_JSON = "state.json"


LOG_NAME = "log.csv"


CHECKPOINTS = ("best", "last")


TENSORBOARD = "tensorboard"


def read_state(run_dir: Path) -> dict[str, Any]:
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


def remove_stale_run_partials(run_dir: Path) -> None:
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


def remove_run_files(run_dir: Path) -> None:
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
    remove_stale_run_partials(run_dir)
    for d in (*(run_dir / c for c in CHECKPOINTS), tb):
        try:
            d.rmdir()  # only if empty: a file of the user's keeps it
        except OSError:
            pass
