"""`sgnsep separate`: files or folders in, one stem per requested class (and the residual) out."""

from __future__ import annotations

import json
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from sgnsep.cli.common import DeviceOpt, MasksOpt, ModelOpt, app, default_model, err, fail, interrupted
from sgnsep.core.errors import SgnsepError, exit_code_of


SEPARATE_HELP = """Separate the classes you name from audio files or folders.

[bold]Examples[/]

  sgnsep separate song.wav --sources violin,cello

  sgnsep separate takes/ --sources flute --residual --ext flac --bit-depth 24 --out stems

  sgnsep separate song.mp3 --sources cello --model ./runs/mine --json > manifest.json

  sgnsep separate song.wav --sources auto

  sgnsep separate song.wav -s violin,cello --gain violin=-6,cello=+3 --plot

Outputs go to OUT/<model>/<track>/<class>.<ext> at the input's sample rate and channel count. --sources auto
separates the classes `sgnsep detect` finds present (exit 8 if none); --gain adds remix.<ext> (stems with
gains plus the residual) and --plot separation.png, next to the stems.
"""


@app.command(help=SEPARATE_HELP)
def separate(
    inputs: Annotated[list[Path], typer.Argument(help="Audio files or folders (wav, flac, ogg, mp3, ...).", readable=False)],
    sources: Annotated[
        str,
        typer.Option(
            "--sources", "-s",
            help="Comma-separated classes, e.g. violin,cello; or auto: the classes `sgnsep detect` finds present.",
        ),
    ],
    model: ModelOpt = "",
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("separated"),
    name: Annotated[
        str,
        typer.Option(
            "--name",
            help="Output path template with {model}, {track} (file name without extension), {parent} (the "
                 "input's folder name), {source}, {ext}.",
        ),
    ] = "{model}/{track}/{source}.{ext}",
    ext: Annotated[str, typer.Option("--ext", help="Output format: wav or flac.")] = "wav",
    bit_depth: Annotated[str, typer.Option("--bit-depth", help="16, 24 or 32 (float, wav only).")] = "",
    residual: Annotated[bool, typer.Option("--residual", help="Also write the mixture minus the stems.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs.")] = False,
    device: DeviceOpt = "auto",
    overlap: Annotated[float, typer.Option("--overlap", help="Segment overlap fraction, 0 <= x < 1.")] = 0.25,
    chunk_seconds: Annotated[
        float, typer.Option("--chunk-seconds", help="Seconds processed at once (bounds memory).")
    ] = 10.0,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Segments per network batch.")] = 4,
    masks: MasksOpt = "shared",
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON manifest on stdout.")] = False,
    gain: Annotated[
        str,
        typer.Option("--gain", help="Also write remix.<ext>: stems with these gains in dB plus the residual, "
                                    "e.g. violin=-6,cello=+3 (mute silences; scaled down only if it would clip)."),
    ] = "",
    plot: Annotated[
        bool, typer.Option("--plot", help="Also write separation.png: spectrograms and masks (needs sgnsep\\[plot]).")
    ] = False,
    threshold: Annotated[
        Optional[float],
        typer.Option("--threshold", help="With --sources auto: presence probability a class must reach (default 0.5)."),
    ] = None,
    min_seconds: Annotated[
        Optional[float],
        typer.Option("--min-seconds", help="With --sources auto: seconds a class must be detected over (default 0: one window)."),
    ] = None,
):
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from sgnsep.audio import audio_io
    from sgnsep.core import folder_lock
    from sgnsep.separation.separation_job import SeparationJob, batch_manifest, check_job, distinct_outputs, run_job
    from sgnsep.separation.separator import Separator

    bit_depth = bit_depth or audio_io.default_bit_depth(ext)
    held = ExitStack()  # the output folder's lock, from just before the first write to the end
    try:
        audio_io.resolve_format(ext, bit_depth)
        if len(inputs) == 1 and not inputs[0].exists():
            raise audio_io.InputAudioError(f"{inputs[0]}: no such file or folder.", hint="Check the path.")
        # Folders expand to their audio files; a missing file among several fails alone, in the batch.
        files = audio_io.list_audio_files(list(inputs))
        sep = Separator(
            model or default_model(),
            device=device,
            overlap=overlap,
            chunk_seconds=chunk_seconds,
            batch_size=batch_size,
            masks=masks,
        )
        given = {k: v for k, v in (("threshold", threshold), ("min_seconds", min_seconds)) if v is not None}
        job = SeparationJob(
            sources, out_dir=out_dir, template=name, ext=ext, bit_depth=bit_depth, residual=residual,
            overwrite=overwrite, plot=plot, detection=given,
        )
        if gain:
            from sgnsep.separation.remix import parse_gains

            job.gains_db = parse_gains(gain)
        check_job(sep, job)  # fail before touching any file
        files = distinct_outputs(sep, files, job)
        # One run at a time per output folder: a second one whose outputs collide would pass the "exists?"
        # checks while the first still writes, then replace its stems (sgnsep/folder_lock.py).
        held.enter_context(folder_lock.hold(out_dir, option="--out", what="output folder"))
    except SgnsepError as e:
        held.close()
        fail(e)
    except KeyboardInterrupt as exc:
        held.close()
        interrupted(exc)

    results, failures, job_info = [], [], []
    with held, Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as progress:
        for path in files:
            task = progress.add_task(path.name, total=1.0)
            try:
                done = run_job(
                    sep, path, job, progress=lambda done, total, t=task: progress.update(t, completed=done / total)
                )
                result = done.file
                results.append(result)
                job_info.append(done.to_json())
                if done.timeline is not None:
                    err.print(f"detected in {escape(path.name)}: {escape(', '.join(done.timeline.present))}", highlight=False)
                if done.remix is not None and done.remix.attenuation_db > 0:
                    err.print(
                        f"[yellow]note:[/] the remix of {escape(path.name)} would peak at "
                        f"{done.remix.to_json()['peak_dbfs']:+.1f} dBFS and clip; it was scaled down by "
                        f"{done.remix.attenuation_db:.1f} dB to peak at -1 dBFS (the gains' balance is kept).",
                        highlight=False, soft_wrap=True,
                    )
                err.print(
                    f"[green]done[/] {escape(str(path))} -> {escape(str(Path(next(iter(result.outputs.values()))).parent))} "
                    f"({result.seconds:.1f} s audio in {result.elapsed:.1f} s, {result.realtime_factor:.0f}x real time)",
                    highlight=False,
                )
            except SgnsepError as e:
                failures.append((path, e))
                err.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
            except KeyboardInterrupt as exc:
                interrupted(exc, path)
            finally:
                progress.remove_task(task)

    if len(files) > 1:
        err.print(f"{len(results)} of {len(files)} files separated, {len(failures)} failed.")
        for path, e in failures:
            err.print(f"  failed: {escape(str(path))}: {escape(e.message)}", highlight=False, soft_wrap=True)
    if as_json:
        sys.stdout.write(json.dumps(batch_manifest(sep, job, job_info, failures), indent=2) + "\n")
    if failures:
        raise typer.Exit(exit_code_of(e for _, e in failures))
