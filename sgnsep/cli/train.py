"""`sgnsep train`: a training run into a run folder, from a config file and ``--set`` overrides."""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from sgnsep.cli.common import DeviceOpt, app, err, fail, interrupted, show_library_warnings
from sgnsep.core.errors import SgnsepError, UsageError


TRAIN_HELP = """Train SGN by mix-and-separate on solo recordings (the paper's recipe by default).

[bold]Examples[/]

  sgnsep train --dataset music

  sgnsep train --dataset synth --out runs/mine

  sgnsep train --dataset solos --data-dir my_solos --out runs/mine

  sgnsep train --config configs/sgn-gm-small.json --out runs/sgn-gm-small

  sgnsep train --out runs/mine --resume

  sgnsep train --data-dir DIR --out runs/x --set lr=0.01 --set model.depth=3 --set batch_size=16

  torchrun --nproc_per_node 4 -m sgnsep train --dataset music

Datasets are looked for in $SGNSEP_DATA/<name> (default ~/.cache/sgnsep/data/<name>) unless --data-dir is
given; a missing one is explained. synth renders the offline soundfont corpus there on first use.
"""


@app.command(help=TRAIN_HELP)
def train(
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Run folder (checkpoints, logs).")] = Path("runs/sgn"),
    dataset: Annotated[
        str, typer.Option("--dataset", help="synth (offline corpus), solos, stems, music, music21, fuss, musdb18 or vggsound.")
    ] = "solos",
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir", help="Dataset folder.", readable=False)] = None,
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="JSON file of training settings.", readable=False)] = None,
    overrides: Annotated[Optional[list[str]], typer.Option("--set", help="key=value override (repeatable).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out where it stopped.")] = False,
    overwrite: Annotated[
        bool,
        typer.Option("--overwrite", help="Start a new run in an --out that holds a run, a model or other files: "
                                         "replaces what `sgnsep train` writes there, keeps everything else."),
    ] = False,
    init_from: Annotated[
        Optional[str],
        typer.Option("--init-from", help="Fine-tune: start from this model's weights (folder or name), not from scratch."),
    ] = None,
    device: DeviceOpt = "auto",
    max_steps: Annotated[Optional[int], typer.Option("--max-steps", help="Stop after this many steps.")] = None,
):
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from sgnsep.core import folder_lock
    from sgnsep.separation.separator import resolve_device
    from sgnsep.training.config import TrainConfig, config_from_options, load_config_file, resolve_dataset
    from sgnsep.training.loop import train as run_training
    from sgnsep.training.run_folder import check_run_folder

    show_library_warnings()
    held = ExitStack()
    try:
        if max_steps is not None and max_steps < 1:
            raise UsageError(f"--max-steps must be at least 1, got {max_steps}.")
        dataset, data_dir, render_offline = resolve_dataset(dataset, data_dir, name="--dataset")
        cfg = TrainConfig() if config is None else load_config_file(config, name="--config")
        cfg = config_from_options(cfg, dataset=dataset, data_dir=data_dir, init_from=init_from,
                                  overrides=overrides or [], from_file=config is not None)
        distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
        if int(os.environ.get("RANK", "0")) == 0:  # the lead process holds the run folder (train() again, reentrant)
            held.enter_context(folder_lock.hold(out_dir, option="--out", what="run folder"))
            check_run_folder(out_dir, resume=resume, overwrite=overwrite)  # now, not after rendering a corpus
        if render_offline:
            from sgnsep.synth import solos

            solos.ensure_offline_corpus(
                data_dir, wait=distributed, option="--data-dir",
                on_render=lambda d: err.print(f"Rendering the offline instrument corpus into {escape(str(d))} (once; "
                                              "about a minute)..."),
            )
        dev = resolve_device(device)
        with Progress(
            TextColumn("step {task.completed}/{task.total}"), BarColumn(), TextColumn("{task.fields[info]}"),
            TimeRemainingColumn(), console=err, disable=not err.is_terminal,
        ) as progress:
            task = progress.add_task("train", total=None, info="")

            def on_step(row):
                val = f" val SDRi {row['val_sdri']:.2f} dB" if row["val_sdri"] != "" else ""
                progress.update(task, completed=row["step"], total=row["total_steps"], info=f"loss {row['loss']:.3f}{val}")

            result = run_training(cfg, out_dir, resume=resume, overwrite=overwrite, device=dev, on_step=on_step,
                                  max_steps=max_steps)
    except SgnsepError as e:
        fail(e)
    except KeyboardInterrupt as exc:
        interrupted(exc)
    finally:
        held.close()  # the run folder's lock (and the folder itself if it was made for it and is empty)
    err.print(
        f"[green]trained[/] {result.steps} steps in {result.seconds:.0f} s; best validation SDRi "
        f"{result.best_val_sdri:.2f} dB. Checkpoints: {escape(str(out_dir / 'best'))} and {escape(str(out_dir / 'last'))}.",
        highlight=False,
    )
