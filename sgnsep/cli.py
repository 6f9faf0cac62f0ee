"""The `sgnsep` command line: parse, call the library, render. All behaviour lives in the library.

Exit codes: 0 success; 1 internal error or mixed failures; 2 usage; 3 input audio; 4 output (the folder in use
by another run included); 5 model; 6 device; 7 training diverged; 8 nothing detected (separate --sources
auto); 129 hung up (SIGHUP); 130 interrupted (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sgnsep._version import __version__
from sgnsep.core.errors import SgnsepError, UsageError

app = typer.Typer(
    name="sgnsep",
    help="Separate the instruments or sound classes you name from a recording (Semantic Grouping Network).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
err = Console(stderr=True)
out = Console()
# Paths and messages are user data: escape() them in markup, or "song [live].wav" prints as "song .wav" and
# "[/]" in a name crashes rich.

PACKAGED_TESTSETS = Path(__file__).parent / "data" / "testset"

# Options shared by several commands.
ModelOpt = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        help="Registered model name, local checkpoint folder, or Hub id owner/name\\[@revision].",
    ),
]
DeviceOpt = Annotated[str, typer.Option("--device", "-d", help="auto, cpu, cuda, cuda:N or mps.")]
ModelsOpt = Annotated[
    Optional[list[str]],
    typer.Option(
        "--model",
        "-m",
        help="Registered model name, local checkpoint folder, or Hub id owner/name\\[@revision]. Repeat it to "
        "compare several models on the same mixtures.",
    ),
]


def _default_model() -> str:
    from sgnsep.models.registry import DEFAULT_MODEL

    return os.environ.get("SGNSEP_MODEL", DEFAULT_MODEL)


def _fail(error: SgnsepError) -> None:
    err.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
    raise typer.Exit(error.exit_code)


class _WarningsToConsole(logging.Handler):
    """The library's logged warnings (e.g. dataset files skipped as unreadable), one line each on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        err.print(f"[yellow]warning:[/] {escape(record.getMessage())}", highlight=False, soft_wrap=True)


def _show_library_warnings() -> None:
    logger = logging.getLogger("sgnsep")
    if not any(isinstance(h, _WarningsToConsole) for h in logger.handlers):
        logger.addHandler(_WarningsToConsole(logging.WARNING))


_reported = False  # the interrupt message has been printed (it is printed once)


def _interrupted(exc: KeyboardInterrupt, path: Path | None = None) -> None:
    """A stopping signal: remove what is left of the partial outputs, say so once, exit 130 (SIGINT,
    SIGTERM) or 129 (SIGHUP). Further signals are ignored meanwhile (sgnsep/interrupts.py)."""
    global _reported
    from sgnsep.core.atomic_write import discard_partials
    from sgnsep.core.interrupts import Interrupted, ignore_further

    ignore_further()
    stop = exc if isinstance(exc, Interrupted) else Interrupted()
    discard_partials()  # each writer's cleanup has run; this catches one an interrupt kept from starting
    if not _reported:
        _reported = True
        where = f" while processing {escape(str(path))}" if path else ""
        try:
            err.print(f"[bold red]{stop.word}[/]{where}; its partial outputs were removed.", highlight=False,
                      soft_wrap=True)
        except OSError:  # SIGHUP: the terminal may be gone; the exit code still tells
            pass
    raise typer.Exit(stop.exit_code)


def _version_callback(value: bool):
    if value:
        out.print(f"sgnsep {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        Optional[bool], typer.Option("--version", callback=_version_callback, is_eager=True, help="Show the version.")
    ] = None,
):
    """Separate the instruments or sound classes you name from a recording."""


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


MasksOpt = Annotated[
    str,
    typer.Option(
        "--masks",
        help="shared: where the classes' masks add up to more than 1 in a bin, scale them down to share it "
             "(stems never claim the same energy twice); independent: each mask as the model gives it; "
             "complete: when the classes asked for are all that sound, each bin shared out among them so the "
             "stems add up to the mixture.",
    ),
]


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
    from sgnsep.separation.separation_job import SeparationJob, check_job, distinct_outputs, run_job
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
            model or _default_model(),
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
        _fail(e)
    except KeyboardInterrupt as exc:
        held.close()
        _interrupted(exc)

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
                _interrupted(exc, path)
            finally:
                progress.remove_task(task)

    if len(files) > 1:
        err.print(f"{len(results)} of {len(files)} files separated, {len(failures)} failed.")
        for path, e in failures:
            err.print(f"  failed: {escape(str(path))}: {escape(e.message)}", highlight=False, soft_wrap=True)
    if as_json:
        manifest = {
            "sgnsep_version": __version__,
            "model": {"name": sep.name, "spec": sep.model_spec, "folder": str(sep.folder), "sha256": sep.sha256,
                      "masks": sep.masks},
            "classes": "auto" if job.auto else [c.strip() for c in sources.split(",")],
            "device": str(sep.device),
            "files": job_info,
            "failures": [{"input": str(p), "error": str(e), "exit_code": e.exit_code} for p, e in failures],
        }
        sys.stdout.write(json.dumps(manifest, indent=2) + "\n")
    if failures:
        codes = {e.exit_code for _, e in failures}
        raise typer.Exit(codes.pop() if len(codes) == 1 else 1)


DETECT_HELP = """Which of the model's classes sound in a recording, and when (the presence head of the paper's eq. 7).

[bold]Examples[/]

  sgnsep detect song.wav

  sgnsep detect song.wav --json presence.json --csv presence.csv --plot presence.png

  sgnsep detect song.wav --threshold 0.7 --min-seconds 5 --json - | jq .present

Each window is one model segment (about 5.9 s for the default model), one every --hop seconds. A class is
present in the file when its probability reaches --threshold in windows that cover at least --min-seconds
(0: one window is enough). `sgnsep separate FILE --sources auto` separates exactly the classes present.
--json and --csv take a file name, or - for stdout (the table then goes to stderr).
"""


_SPARK = " \u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588"


def _sparkline(values, threshold: float, width: int = 40) -> str:
    """Probabilities as block characters, at most ``width`` cells (each the max of its windows); cells at or
    above the threshold in green."""
    import numpy as np

    cells = np.array_split(np.asarray(values), min(width, len(values)))
    text = ""
    for cell in cells:
        p = float(cell.max())
        ch = _SPARK[min(len(_SPARK) - 1, int(round(p * (len(_SPARK) - 1))))]
        text += f"[green]{ch}[/]" if p >= threshold else f"[dim]{ch}[/]"
    return text


def _clock(seconds: float) -> str:
    m, s = divmod(seconds, 60.0)
    return f"{int(m)}:{s:04.1f}"


def _render_detection(timeline, console: Console) -> None:
    rows = sorted(timeline.summary(), key=lambda r: (not r["present"], -r["max"]))
    cols = {c: i for i, c in enumerate(timeline.classes)}
    table = Table(
        title=f"{escape(Path(timeline.input).name)}: presence of {len(timeline.classes)} classes "
              f"({timeline.window_seconds:.1f} s windows every {timeline.hop_seconds:g} s over {_clock(timeline.duration)})",
    )
    for name, justify in (("class", "left"), ("present", "center"), ("max", "right"), ("mean", "right"),
                          ("detected", "right"), ("timeline", "left"),
                          ("where", "left")):
        table.add_column(name, justify=justify)
    for r in rows:
        spans = r["spans"]
        where = ", ".join(f"{_clock(a)}-{_clock(b)}" for a, b in spans[:3]) + (" ..." if len(spans) > 3 else "")
        table.add_row(
            escape(r["class"]), "[green]yes[/]" if r["present"] else "-", f"{r['max']:.2f}", f"{r['mean']:.2f}",
            f"{r['detected_seconds']:.1f} s", _sparkline(timeline.probabilities[:, cols[r["class"]]], timeline.threshold),
            escape(where),
        )
    console.print(table)
    present = timeline.present
    rule = f"threshold {timeline.threshold:g}" + (f", at least {timeline.min_seconds:g} s" if timeline.min_seconds else "")
    if present:
        console.print(f"Present ({rule}): {escape(', '.join(present))}", highlight=False)
    else:
        console.print(f"No class is present ({rule}).", highlight=False)


@app.command(help=DETECT_HELP)
def detect(
    file: Annotated[Path, typer.Argument(help="An audio file (wav, flac, ogg, mp3, ...).", readable=False)],
    model: ModelOpt = "",
    threshold: Annotated[float, typer.Option("--threshold", help="Presence probability a class must reach.")] = 0.5,
    min_seconds: Annotated[
        float, typer.Option("--min-seconds", help="Seconds a class must be detected over to be present (0: one window).")
    ] = 0.0,
    hop: Annotated[float, typer.Option("--hop", help="Seconds between window starts.")] = 1.0,
    json_out: Annotated[Optional[str], typer.Option("--json", help="Write the timeline as JSON to this file (- for stdout).")] = None,
    csv_out: Annotated[Optional[str], typer.Option("--csv", help="Write one row per window as CSV to this file (- for stdout).")] = None,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Write a PNG of the spectrogram and the presence over time (needs sgnsep\\[plot]).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing --json/--csv/--plot files.")] = False,
    device: DeviceOpt = "auto",
    batch_size: Annotated[int, typer.Option("--batch-size", help="Windows per network batch.")] = 16,
):
    from rich.progress import BarColumn, Progress, TextColumn

    from sgnsep.analysis import detection
    from sgnsep.core.atomic_write import refuse_existing, write_text_atomic
    from sgnsep.separation.separator import Separator

    try:
        detection.check_settings(hop, threshold, min_seconds)
        if batch_size < 1:
            raise UsageError(f"--batch-size must be at least 1, got {batch_size}.")
        if json_out == "-" and csv_out == "-":
            raise UsageError("--json - and --csv - both ask for stdout; send one of them to a file.")
        files = {k: (None if v in (None, "-") else Path(v)) for k, v in (("json", json_out), ("csv", csv_out))}
        refuse_existing([files["json"], files["csv"], plot], overwrite)
        if plot is not None:
            from sgnsep.plots.plotting import require_matplotlib

            require_matplotlib()
        from sgnsep.audio.audio_io import probe

        probe(file)  # a missing or unreadable file fails before the model loads
        sep = Separator(model or _default_model(), device=device)
        with Progress(TextColumn("{task.description}"), BarColumn(), console=err, transient=True,
                      disable=not err.is_terminal) as progress:
            task = progress.add_task(f"detecting in {file.name}", total=1.0)
            timeline = detection.detect_file(
                sep, file, hop_seconds=hop, threshold=threshold, min_seconds=min_seconds, batch_size=batch_size,
                progress=lambda done, total: progress.update(task, completed=done / total),
            )
        json_text = json.dumps({"sgnsep_version": __version__, **timeline.to_json()}, indent=1) + "\n"
        if files["json"] is not None:
            write_text_atomic(files["json"], json_text)
        if files["csv"] is not None:
            write_text_atomic(files["csv"], timeline.to_csv())
        if plot is not None:
            from sgnsep.plots.plotting import presence_figure
            from sgnsep.audio.resampled_mono import ResampledMono

            presence_figure(timeline, ResampledMono.from_file(file, sep.sample_rate), plot, sep.meta.audio)
    except SgnsepError as e:
        _fail(e)
    except KeyboardInterrupt as exc:
        _interrupted(exc, file)
    to_stdout = "-" in (json_out, csv_out)
    _render_detection(timeline, err if to_stdout else out)
    if json_out == "-":
        sys.stdout.write(json_text)
    if csv_out == "-":
        sys.stdout.write(timeline.to_csv())
    for what, target in (("timeline", files["json"]), ("windows", files["csv"]), ("figure", plot)):
        if target is not None:
            err.print(f"[green]wrote[/] {what} {escape(str(target))}", highlight=False)


EMBED_HELP = """Picture the model's class embeddings over a folder of labelled clips (the paper's figure 3).

Does each class form its own group?

[bold]Examples[/]

  sgnsep embed data/gm17 --out embeddings.png

  sgnsep embed my_solos --method tsne --csv points.csv --max-clips-per-class 50

  sgnsep embed sgnsep/data/testset/chorales-2src --layout stems

For a clip of class k the point is the embedding g_k the model computes from it (its class token after the
transformer and grouping), averaged over up to --windows-per-clip segments. PCA needs nothing more; t-SNE
needs scikit-learn (pip install 'sgnsep\\[embed]'). The table gives each class's leave-one-out nearest-centroid
accuracy in the full embedding space. Layouts: solos DIR/<class>/*.wav, or stems DIR/<track>/<class>.wav.
"""


@app.command(help=EMBED_HELP)
def embed(
    folder: Annotated[Path, typer.Argument(help="Folder of clips: DIR/<class>/*.wav (or stems DIR/<track>/<class>.wav).", readable=False)],
    model: ModelOpt = "",
    out_png: Annotated[Path, typer.Option("--out", "-o", help="PNG to write.")] = Path("embeddings.png"),
    csv_out: Annotated[Optional[Path], typer.Option("--csv", help="Also write the 2-D points (path, class, x, y) as CSV.")] = None,
    method: Annotated[str, typer.Option("--method", help="pca (default) or tsne (needs scikit-learn).")] = "pca",
    layout: Annotated[str, typer.Option("--layout", help="solos, stems or auto.")] = "auto",
    windows_per_clip: Annotated[int, typer.Option("--windows-per-clip", help="Segments averaged per clip.")] = 4,
    max_clips: Annotated[int, typer.Option("--max-clips-per-class", help="Use at most this many clips per class (0: all).")] = 0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of t-SNE.")] = 0,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing --out/--csv files.")] = False,
    device: DeviceOpt = "auto",
):
    from rich.progress import BarColumn, Progress, TextColumn

    from sgnsep.analysis import embedding
    from sgnsep.core.atomic_write import refuse_existing, write_text_atomic
    from sgnsep.plots.plotting import embedding_figure, require_matplotlib
    from sgnsep.separation.separator import Separator

    _show_library_warnings()
    try:
        method = method.strip().lower()
        if method not in embedding.METHODS:
            raise UsageError(f"Unknown --method '{method}'; use pca or tsne.")
        if max_clips < 0:
            raise UsageError(f"--max-clips-per-class must be 0 (all) or more, got {max_clips}.")
        if out_png.suffix.lower() != ".png":
            raise UsageError(f"--out {out_png}: the picture is a PNG; name it *.png.")
        refuse_existing([out_png, csv_out], overwrite)
        require_matplotlib()
        if method == "tsne":
            embedding.require_sklearn()
        if not folder.is_dir():
            raise UsageError(f"{folder} is not a folder.", hint="Pass a folder of clips, DIR/<class>/*.wav.")
        sep = Separator(model or _default_model(), device=device)
        with Progress(TextColumn("{task.description}"), BarColumn(), console=err, transient=True,
                      disable=not err.is_terminal) as progress:
            task = progress.add_task("embedding clips", total=1.0)
            result = embedding.embedding_map(
                sep, folder, method=method, layout=layout, windows_per_clip=windows_per_clip,
                max_per_class=max_clips or None, seed=seed,
                progress=lambda done, total: progress.update(task, completed=done / total),
            )
        if result.skipped:
            err.print(f"[yellow]note:[/] skipped {len(result.skipped)} folder(s)/stem(s) of classes the model does not "
                      f"know: {escape(', '.join(result.skipped[:8]))}{' ...' if len(result.skipped) > 8 else ''}",
                      highlight=False, soft_wrap=True)
        title = (f"{sep.name}: class embeddings g of {len(result.clips)} clips in {folder.name} "
                 f"({'PCA' if method == 'pca' else 't-SNE'})")
        embedding_figure(result.points, result.labels, out_png, title=title,
                         axis_labels=embedding.axis_labels(result.vectors, method))
        if csv_out is not None:
            write_text_atomic(csv_out, result.to_csv())
    except SgnsepError as e:
        _fail(e)
    except KeyboardInterrupt as exc:
        _interrupted(exc)
    table = Table(title=f"{escape(sep.name)}: class embeddings of {len(result.clips)} clips ({result.layout} layout)")
    for col, justify in (("class", "left"), ("clips", "right"), ("nearest-centroid accuracy", "right")):
        table.add_column(col, justify=justify)
    counts = {c: result.labels.count(c) for c in result.accuracy}
    for name, acc in result.accuracy.items():
        table.add_row(escape(name), str(counts[name]), "-" if acc is None else f"{acc:.0%}")
    out.print(table)
    scored = [a for a in result.accuracy.values() if a is not None]
    if scored:
        out.print(f"Mean nearest-centroid accuracy {sum(scored) / len(scored):.0%} (leave-one-out, in the full "
                  "embedding space; 100% means every clip is closest to its own class).", highlight=False)
    err.print(f"[green]wrote[/] {escape(str(out_png))}" + (f" and {escape(str(csv_out))}" if csv_out else ""),
              highlight=False)


@app.command(help="List the registered models: classes, sample rate, size and where the weights come from.")
def models(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
):
    from sgnsep.models.registry import describe_models

    rows = describe_models()
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table(title="sgnsep models")
    for col in ("name", "classes", "rate", "size", "source"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["name"] + (" (default)" if r["default"] else ""),
            ", ".join(r["classes"]) if r["classes"] else "fetched on first use",
            f"{r['sample_rate']} Hz" if r["sample_rate"] else "-",
            f"{r['size_mb']} MB" if r["size_mb"] else "-",
            r["source"],
        )
    out.print(table)
    out.print("Any checkpoint folder or Hub id works too: --model ./runs/x or --model owner/name@revision.")


EVAL_HELP = """Score a model with SDR/SIR/SAR (BSS Eval v3, as mir_eval) and SI-SDR, next to the unprocessed
mixture and the oracle masks on the same mixtures.

[bold]Examples[/]

  sgnsep eval --metrics sdr,sir,sar

  sgnsep eval --data-dir examples/stems --metrics sdr,si-sdr

  sgnsep eval --model runs/x/best --data-dir data/gm17 --dataset solos --num-sources 3 --segments 200 --out r.json --csv r.csv

  sgnsep eval --model runs/sgn/best --model runs/cunet/best --model runs/unet/best

Several --model options are scored side by side on identical mixtures (the baselines once), on the classes
all of them know; they must share a sample rate.

Layouts: stems (DIR/<track>/<class>.wav, optional mixture.wav; every track, or in a corpus of `sgnsep data
music` the tracks of --split) or solos (DIR/<class>/*.wav: mixtures of N distinct classes drawn from --seed,
each scaled by 1/N, 65535-sample segments, from the test split).
"""


@app.command("eval", help=EVAL_HELP)
def eval_command(
    model: ModelsOpt = None,
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir", help="Stems or solos folder.", readable=False)] = None,
    dataset: Annotated[str, typer.Option("--dataset", help="stems, solos, or auto (detect).")] = "auto",
    metrics: Annotated[str, typer.Option("--metrics", help="Comma-separated: sdr, sir, sar, si-sdr.")] = "sdr,sir,sar,si-sdr",
    sources: Annotated[str, typer.Option("--sources", "-s", help="Only these classes (comma-separated).")] = "",
    num_sources: Annotated[Optional[int], typer.Option("--num-sources", help="Sources per mixture (solos: default 2); stems: only tracks of exactly this many stems, all evaluated (default: every track).")] = None,
    segments: Annotated[int, typer.Option("--segments", help="Mixtures to draw (solos).")] = 100,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the mixtures (solos).")] = 0,
    split: Annotated[str, typer.Option("--split", help="Split to draw from (solos; stems written by `sgnsep data music`, whose tracks have splits).")] = "test",
    baselines: Annotated[str, typer.Option("--baselines", help="mixture, oracle-ibm, oracle-irm, or none.")] = "mixture,oracle-ibm,oracle-irm",
    out_json: Annotated[Optional[Path], typer.Option("--out", help="Write all results as JSON.")] = None,
    out_csv: Annotated[Optional[Path], typer.Option("--csv", help="Write per-track results as CSV.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing --out/--csv files.")] = False,
    device: DeviceOpt = "auto",
    masks: MasksOpt = "shared",
    plot: Annotated[
        Optional[Path],
        typer.Option("--plot", help="Write a PNG chart of the per-class scores next to the baselines (needs sgnsep\\[plot])."),
    ] = None,
):
    from rich.progress import Progress

    from sgnsep.audio import audio_io
    from sgnsep.core.atomic_write import refuse_existing
    from sgnsep.evaluation import evaluate as ev
    from sgnsep.separation.separator import Separator

    try:
        metric_list = [m.strip().lower() for m in metrics.split(",") if m.strip()]
        base_list = [] if baselines.strip().lower() == "none" else [b.strip() for b in baselines.split(",") if b.strip()]
        refuse_existing((out_json, out_csv, plot), overwrite)
        if plot is not None:
            from sgnsep.plots.plotting import require_matplotlib

            require_matplotlib()  # before the evaluation, not after it
        if data_dir is None:
            data_dir = PACKAGED_TESTSETS / "chorales-2src"
            err.print(
                f"No --data-dir: evaluating on the test set that ships with sgnsep, {data_dir.name} (20 Bach "
                "chorale excerpts, two voices on two instruments, never used for training). Also available: "
                f"--data-dir {PACKAGED_TESTSETS / 'chorales-3src'}; or point --data-dir at your own stems "
                "(DIR/<track>/<class>.wav) or solos (DIR/<class>/*.wav).",
                highlight=False,
            )
        if not data_dir.is_dir():
            raise UsageError(f"--data-dir {data_dir} is not a folder.")
        seps = [Separator(m, device=device, masks=masks) for m in ([m for m in model or [] if m] or [_default_model()])]
        sep = seps[0]
        classes = ev.common_classes(seps) if len(seps) > 1 else sep.classes
        if len(classes) < len(sep.classes):
            left_out = [c for c in sep.classes if c not in classes]
            err.print(f"Evaluating on the {len(classes)} classes every model knows; left out: {escape(', '.join(left_out))}.",
                      highlight=False)
        wanted = sep.class_names(sources) if sources else None
        for s in seps[1:] if wanted else []:
            s.class_indices(wanted)  # each model must know every class asked for
        if dataset == "auto":
            folders = {p.name for p in audio_io.list_folder(data_dir) if p.is_dir()}
            dataset = "solos" if any(c in folders for c in classes) else "stems"
        if dataset == "stems":
            # Read track by track (not all at once): memory stays that of one track.
            examples = ev.stems_examples(data_dir, classes, sep.meta.audio, wanted, split=split,
                                         num_sources=num_sources)
        elif dataset == "solos":
            num_sources = 2 if num_sources is None else num_sources
            examples = ev.solos_examples(
                data_dir, classes, sep.meta.audio, num_sources=num_sources, segments=segments,
                seed=seed, split=split, sources=wanted,
            )
        else:
            raise UsageError(f"Unknown --dataset '{dataset}'; use stems, solos or auto.")
        total = sum(p.is_dir() for p in audio_io.list_folder(data_dir)) if dataset == "stems" else segments
        info = {"dir": str(data_dir), "dataset": dataset, "sample_rate": sep.sample_rate}
        if dataset == "solos":
            info.update(num_sources=num_sources, seed=seed, split=split, segment_samples=sep.meta.audio.segment_samples)
        else:
            from sgnsep.datasets.folders import music_corpus_tracks

            if music_corpus_tracks(data_dir):
                info["split"] = split
            if num_sources is not None:
                info["num_sources"] = num_sources
        with Progress(console=err, transient=True, disable=not err.is_terminal) as progress:
            task = progress.add_task("evaluating", total=total)
            report = ev.evaluate(
                seps, iter(examples), metrics=metric_list, baselines=base_list, data_info=info,
                progress=lambda n: progress.update(task, completed=n),
            )
        if out_json is not None:
            ev.write_json(report, out_json)
        if out_csv is not None:
            ev.write_csv(report, out_csv)
        if plot is not None:
            from sgnsep.plots.plotting import eval_figure

            eval_figure(report, plot)
            err.print(f"[green]wrote[/] chart {escape(str(plot))}", highlight=False)
    except SgnsepError as e:
        _fail(e)
    except KeyboardInterrupt as exc:
        _interrupted(exc)
    _render_eval(report)


def _render_eval(report) -> None:
    summary = report.summary()
    keys = list(report.metrics) + (["sdri"] if "sdr" in report.metrics else [])
    models = [m["method"] for m in report.models]
    what = ", ".join(models) if len(models) > 1 else str(report.model["name"])
    where = (f"on {escape(str(report.data.get('dir')))} ({report.data.get('mixtures')} mixtures, "
             f"{report.data.get('dataset')}, {report.data.get('sample_rate')} Hz)")
    table = Table(title=f"{escape(what)} {where}: mean ± std (median), dB")
    table.add_column("method")
    table.add_column("class")
    for k in keys:
        table.add_column(k.upper(), justify="right")
    for method in report.methods:
        groups = summary.get(method, {})
        names = ["overall"] + sorted(k for k in groups if k not in ("overall", "silent"))
        for i, name in enumerate(names):
            stats = groups.get(name, {})
            cells = [
                f"{stats[k]['mean']:.2f} ± {stats[k]['std']:.2f} ({stats[k]['median']:.2f})" if k in stats else "-"
                for k in keys
            ]
            table.add_row(escape(method) if i == 0 else "", escape(name), *cells, end_section=(i == len(names) - 1))
        if "silent" in groups:
            out.print(f"{escape(method)}: silent cases excluded from means: {groups['silent']}", highlight=False)
    out.print(table)
    if len(models) > 1:  # the comparison at a glance: one row per model, then the baselines
        side = Table(title="Side by side: mean over every source, dB")
        side.add_column("method")
        for k in keys:
            side.add_column(k.upper(), justify="right")
        for method in report.methods:
            overall = summary.get(method, {}).get("overall", {})
            side.add_row(escape(method), *(f"{overall[k]['mean']:.2f}" if k in overall else "-" for k in keys),
                         end_section=(method == models[-1]))
        out.print(side)
    out.print(f"Evaluated in {report.seconds:.1f} s. SDRi is the model's SDR minus the mixture's on the same source.")


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
    from sgnsep.training.config import TrainConfig, config_from_dict, parse_overrides
    from sgnsep.training.loop import train as run_training
    from sgnsep.training.run_folder import check_run_folder

    _show_library_warnings()
    held = ExitStack()
    try:
        if max_steps is not None and max_steps < 1:
            raise UsageError(f"--max-steps must be at least 1, got {max_steps}.")
        from sgnsep.datasets.catalog import data_root
        from sgnsep.datasets.registry import DATASETS

        render_synth = dataset == "synth"
        if render_synth:
            # The offline corpus: rendered once into the default data folder (below), then trained on as solos.
            data_dir = data_dir or data_root() / "synth"
            dataset = "solos"
        elif dataset not in DATASETS:
            raise UsageError(f"Unknown --dataset '{dataset}'; choose from synth, {', '.join(DATASETS)}.")
        cfg = TrainConfig()
        if config is not None:
            try:
                data = json.loads(config.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise UsageError(f"--config {config}: cannot read it as JSON ({exc}).") from None
            except RecursionError:
                raise UsageError(f"--config {config}: the JSON is nested too deeply to be a training config.") from None
            cfg = config_from_dict(data, where=str(config))
        given = [f"dataset={json.dumps(dataset)}"] if (config is None or dataset != "solos" or data_dir) else []
        if data_dir is not None:
            given.append(f"data_dir={json.dumps(str(data_dir))}")
        if init_from is not None:
            given.append(f"init_from={json.dumps(init_from)}")
        cfg = parse_overrides(cfg, given + (overrides or []))
        distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
        if int(os.environ.get("RANK", "0")) == 0:  # the lead process holds the run folder (train() again, reentrant)
            held.enter_context(folder_lock.hold(out_dir, option="--out", what="run folder"))
            check_run_folder(out_dir, resume=resume, overwrite=overwrite)  # now, not after rendering a corpus
        if render_synth and not (data_dir / "metadata.json").is_file():
            # Held while rendering: another `train --dataset synth` or `data synth` is refused (or, for the
            # processes of one torchrun, waits and then finds the corpus rendered).
            with folder_lock.hold(data_dir, option="--data-dir", what="corpus folder", wait=distributed):
                if not (data_dir / "metadata.json").is_file():
                    err.print(f"Rendering the offline instrument corpus into {escape(str(data_dir))} (once; "
                              "about a minute)...")
                    from sgnsep.synth import solos

                    solos.synthesize_corpus(data_dir, clips_per_class=40, clip_seconds=10.0, seed=0)
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
        _fail(e)
    except KeyboardInterrupt as exc:
        _interrupted(exc)
    finally:
        held.close()  # the run folder's lock (and the folder itself if it was made for it and is empty)
    err.print(
        f"[green]trained[/] {result.steps} steps in {result.seconds:.0f} s; best validation SDRi "
        f"{result.best_val_sdri:.2f} dB. Checkpoints: {escape(str(out_dir / 'best'))} and {escape(str(out_dir / 'last'))}.",
        highlight=False,
    )


data_app = typer.Typer(help="Make datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")


def _synth_extra_missing(command: str, exc: ImportError) -> UsageError:
    return UsageError(f"`sgnsep data {command}` needs the synth extra ({exc.name} is missing).",
                      hint="pip install --no-deps tinysoundfont && pip install 'sgnsep[synth]'")


@data_app.command("synth", help="Render an offline corpus of solo instrument clips from General MIDI soundfonts.")
def data_synth(
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Output folder (solos layout).")],
    classes: Annotated[str, typer.Option("--classes", help="Comma-separated classes (default: all).")] = "",
    soundfonts: Annotated[str, typer.Option("--soundfonts", help="Comma-separated soundfont keys or paths (default: all found).")] = "",
    clips_per_class: Annotated[int, typer.Option("--clips-per-class")] = 40,
    clip_seconds: Annotated[float, typer.Option("--clip-seconds")] = 10.0,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    overwrite: Annotated[
        bool,
        typer.Option("--overwrite", help="Render into a folder that holds a corpus or other files: replaces the "
                                         "previous corpus and files of the names it writes, keeps all others."),
    ] = False,
):
    try:
        from sgnsep.synth import solos
    except ImportError as exc:
        _fail(_synth_extra_missing("synth", exc))
    try:
        manifest = solos.synthesize_corpus(
            out_dir,
            classes=[c.strip() for c in classes.split(",")] if classes else None,
            soundfonts=[s.strip() for s in soundfonts.split(",")] if soundfonts else None,
            clips_per_class=clips_per_class, clip_seconds=clip_seconds, seed=seed, overwrite=overwrite,
        )
    except SgnsepError as e:
        _fail(e)
    except ImportError as exc:
        _fail(_synth_extra_missing("synth", exc))
    except KeyboardInterrupt as exc:
        _interrupted(exc, out_dir)
    n = len(manifest.get("clips", []))
    err.print(f"[green]wrote[/] {n} clips to {escape(str(out_dir))} (metadata in {escape(str(out_dir / 'metadata.json'))}).", highlight=False)


@data_app.command(
    "chorales",
    help="Render Bach chorales played by several instruments, one stem per voice (stems layout): coherent "
    "multi-instrument music for training (--split train, with `train --dataset stems --set coherent=...`) or "
    "evaluation (--split test, with `sgnsep eval`).",
)
def data_chorales(
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="New or empty output folder (stems layout).")],
    split: Annotated[str, typer.Option("--split", help="Chorales of this split of the corpus: train, val or test.")] = "train",
    tracks: Annotated[int, typer.Option("--tracks", help="Tracks to render (a chorale is reused with new instruments once all are used).")] = 100,
    voices: Annotated[int, typer.Option("--voices", help="Voices (stems) per track, 1..4.")] = 4,
    seconds: Annotated[float, typer.Option("--seconds", help="Track length.")] = 10.0,
    classes: Annotated[str, typer.Option("--classes", help="Comma-separated classes (default: all).")] = "",
    soundfonts: Annotated[str, typer.Option("--soundfonts", help="Comma-separated soundfont keys or paths (default: all found).")] = "",
    sample_rate: Annotated[int, typer.Option("--sample-rate")] = 11025,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    overwrite: Annotated[
        bool,
        typer.Option("--overwrite", help="Replace a chorale set rendered into --out before (only its files; a "
                                         "folder that holds other files is still refused)."),
    ] = False,
):
    try:
        from sgnsep.synth import chorale_stems
    except ImportError as exc:
        _fail(_synth_extra_missing("chorales", exc))
    try:
        if not 1 <= voices <= 4:
            raise UsageError(f"--voices must be between 1 and 4 (a chorale has four voices), got {voices}.")
        manifest = chorale_stems.render_chorale_stems(
            out_dir, tracks=tracks, num_sources=voices, seconds=seconds, sample_rate=sample_rate, seed=seed,
            classes=[c.strip() for c in classes.split(",")] if classes else None,
            soundfonts=[s.strip() for s in soundfonts.split(",")] if soundfonts else None,
            split=split, overwrite=overwrite,
        )
    except SgnsepError as e:
        _fail(e)
    except ImportError as exc:
        _fail(_synth_extra_missing("chorales", exc))
    except KeyboardInterrupt as exc:
        _interrupted(exc, out_dir)
    n = len(manifest.get("tracks", []))
    err.print(f"[green]wrote[/] {n} tracks to {escape(str(out_dir))} (metadata in {escape(str(out_dir / 'metadata.json'))}).", highlight=False)


@data_app.command(
    "music",
    help="Render a training corpus of performed multi-part music from music21's corpus (stems layout): 1..4 "
    "parts of a piece per track on instruments in their ranges, with dynamics, vibrato, rubato, rooms, EQ and "
    "noise, from every allowed soundfont and preset; splits by piece; metadata.json describes every stem. "
    "Train on it with `train --dataset stems --data-dir DIR --set coherent=...`.",
)
def data_music(
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="New or empty output folder (stems layout).")],
    hours: Annotated[float, typer.Option("--hours", help="Hours of audio to render, summed over stems.")] = 1.0,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    soundfonts: Annotated[str, typer.Option("--soundfonts", help="Comma-separated soundfont keys, family:NAME (fluidr3, timgm6mb) or paths (default: all found).")] = "",
    classes: Annotated[str, typer.Option("--classes", help="Comma-separated classes (default: all).")] = "",
    min_seconds: Annotated[float, typer.Option("--min-seconds", help="Shortest track.")] = 10.0,
    max_seconds: Annotated[float, typer.Option("--max-seconds", help="Longest track.")] = 30.0,
    max_sources: Annotated[int, typer.Option("--max-sources", help="Most stems per track, 1..4.")] = 4,
    sample_rate: Annotated[int, typer.Option("--sample-rate")] = 11025,
    score_cache: Annotated[Optional[Path], typer.Option("--score-cache", help="Folder for the parsed note lists (default: $SGNSEP_SCORE_CACHE or ~/.cache/sgnsep/scores).")] = None,
    mixtures: Annotated[bool, typer.Option("--mixtures", help="Also write each track's mixture.wav (the exact sum of its stems, float).")] = False,
    only_splits: Annotated[str, typer.Option("--only-splits", help="Render only pieces of these splits (comma-separated: train, val, test); a piece's split does not change, so `--soundfonts family:timgm6mb --only-splits val,test` makes held-out validation and test music for a corpus of the other family.")] = "",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a music corpus already in --out.")] = False,
):
    try:
        from sgnsep.synth import music_corpus
    except ImportError as exc:
        _fail(_synth_extra_missing("music", exc))
    shown = [0]

    def progress(done: float, total: float) -> None:  # a line per tenth, so a long run shows it is alive
        tenth = int(10 * done / total)
        if tenth > shown[0]:
            shown[0] = tenth
            err.print(f"  {done / 3600:.2f} of {total / 3600:.2f} h rendered", highlight=False)

    try:
        manifest = music_corpus.build_music_corpus(
            out_dir, hours=hours, seed=seed, track_seconds=(min_seconds, max_seconds), max_sources=max_sources,
            sample_rate=sample_rate, mixtures=mixtures, overwrite=overwrite, progress=progress,
            only_splits=[x.strip() for x in only_splits.split(",")] if only_splits else None,
            soundfonts=[x.strip() for x in soundfonts.split(",")] if soundfonts else None,
            classes=[c.strip() for c in classes.split(",")] if classes else None,
            score_cache=score_cache if score_cache is not None else True,
        )
    except SgnsepError as e:
        _fail(e)
    except ImportError as exc:
        _fail(_synth_extra_missing("music", exc))
    except KeyboardInterrupt as exc:
        _interrupted(exc, out_dir)
    t = manifest["totals"]
    fams = ", ".join(f"{f} {v / 3600:.2f} h" for f, v in t["family_seconds"].items())
    err.print(
        f"[green]wrote[/] {t['tracks']} tracks, {t['stems']} stems ({t['stem_hours']:.2f} h of stems, "
        f"{t['track_hours']:.2f} h of tracks; {fams}; train/val/test tracks "
        f"{t['split_tracks']['train']}/{t['split_tracks']['val']}/{t['split_tracks']['test']}) to "
        f"{escape(str(out_dir))} in {manifest['timing']['wall_seconds']:.0f} s (metadata in "
        f"{escape(str(out_dir / 'metadata.json'))}).",
        highlight=False,
    )


@app.command(help="Fetch a model from the Hugging Face Hub into the local cache, for offline use later.\n\n"
             "[bold]Example[/]\n\n  sgnsep pull owner/name@v1 && HF_HUB_OFFLINE=1 sgnsep separate song.wav -s violin -m owner/name@v1")
def pull(
    repo: Annotated[str, typer.Argument(help="Hub id owner/name[@revision], or a registered model name.")],
):
    from sgnsep.hub.download import download_checkpoint
    from sgnsep.hub.repo_id import parse_repo_id
    from sgnsep.models.checkpoint import read_meta
    from sgnsep.models.registry import REGISTRY

    _show_library_warnings()  # e.g. that a damaged cached file is being downloaded again
    try:
        if repo in REGISTRY:
            repo_id, revision = REGISTRY[repo].repo_id, REGISTRY[repo].revision
        else:
            repo_id, revision = parse_repo_id(repo)
        folder = download_checkpoint(repo_id, revision)
        meta = read_meta(folder)
    except SgnsepError as e:
        _fail(e)
    err.print(f"[green]cached[/] {repo_id}@{revision or 'main'} in {escape(str(folder))} ({len(meta.classes)} classes).", highlight=False)
    sys.stdout.write(f"{folder}\n")


PUSH_HELP = (
    "Publish a trained checkpoint folder to the Hugging Face Hub, with a generated model card.\n\n"
    "[bold]Examples[/]\n\n"
    "  sgnsep push --model runs/x/best --repo owner/name\n\n"
    "  sgnsep push --model runs/x/best --repo owner/name --revision candidate --private --message \"2000 steps\"\n\n"
    "One commit holds config.json, model.safetensors (checked to load strictly first) and a README.md model card "
    "(classes, audio settings, size, training summary, recorded scores, usage). The repo, and a branch other than "
    "main, are created when missing.\n\n"
    "The token comes from --token, else HF_TOKEN, else `hf auth login`; HF_ENDPOINT points at another Hub. Then "
    "anyone with access can run: sgnsep separate song.wav --sources violin --model owner/name"
)


@app.command(help=PUSH_HELP)
def push(
    model: Annotated[
        Path,
        typer.Option("--model", "-m", help="Checkpoint folder (config.json + model.safetensors), e.g. runs/x/best.",
                     readable=False),
    ],
    repo: Annotated[str, typer.Option("--repo", "-r", help="Hub repo id owner/name\\[@branch]; created if missing.")],
    revision: Annotated[
        Optional[str], typer.Option("--revision", help="Branch to commit to (default main); created if missing.")
    ] = None,
    private: Annotated[
        bool, typer.Option("--private", help="Create the repo as private (if it does not exist).")
    ] = False,
    message: Annotated[Optional[str], typer.Option("--message", help="Commit message.")] = None,
    token: Annotated[
        Optional[str],
        typer.Option("--token", help="Hugging Face token with write access (default: HF_TOKEN or `hf auth login`)."),
    ] = None,
):
    from rich.markup import escape

    from sgnsep.hub.push import push_checkpoint

    try:
        err.print(f"Checking {escape(str(model))} and pushing it to {escape(repo)}...", highlight=False,
                  soft_wrap=True)
        result = push_checkpoint(model, repo, revision=revision, private=private, token=token, message=message)
    except SgnsepError as e:
        _fail(e)
    except KeyboardInterrupt as exc:
        _interrupted(exc)
    spec = result.repo_id if result.revision == "main" else f"{result.repo_id}@{result.revision}"
    if result.changed:
        err.print(
            f"[green]pushed[/] {escape(str(model))} to {escape(result.repo_url)} (branch {escape(result.revision)}, "
            f"commit {result.commit_id[:12]}: {', '.join(result.files)}).",
            highlight=False,
            soft_wrap=True,
        )
    else:
        err.print(
            f"[green]up to date[/] {escape(result.repo_url)} (branch {escape(result.revision)}) already holds these "
            f"files (commit {result.commit_id[:12]}); no new commit was made.",
            highlight=False,
            soft_wrap=True,
        )
    from sgnsep.hub.card import sources_argument

    sources = sources_argument(result.classes[:2]) if result.classes else "CLASSES"  # quoted: names may hold $(...)
    err.print(f"Use it with: sgnsep separate song.wav --sources {escape(sources)} --model {escape(spec)}",
              highlight=False, soft_wrap=True)
    sys.stdout.write(f"{result.commit_url}\n")


def main() -> None:
    """Console-script entry point: user errors as one line, Ctrl-C/SIGTERM as exit 130 and SIGHUP as 129 (each
    with one message, after the partial outputs are removed), no tracebacks."""
    from sgnsep.core import interrupts

    interrupts.install()
    try:
        try:
            app(standalone_mode=True)  # Typer maps a stray KeyboardInterrupt to exit 130 itself
        finally:
            interrupts.ignore_further()  # the work is over: a signal now must not become a traceback
    except SystemExit as e:
        if interrupts.caught() is not None and not _reported:  # stopped outside the commands' own handlers
            _exit_interrupted(interrupts.Interrupted(interrupts.caught()))
        raise
    except KeyboardInterrupt as exc:  # a signal between the command's end and the lines above
        _exit_interrupted(exc)
    except SgnsepError as e:
        err.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        sys.exit(e.exit_code)
    except Exception as exc:  # a bug: short message unless debugging
        if os.environ.get("SGNSEP_DEBUG"):
            raise
        err.print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {escape(str(exc))}. "
            "Rerun with SGNSEP_DEBUG=1 for a traceback and report it.",
            highlight=False,
        )
        sys.exit(1)


def _exit_interrupted(exc: KeyboardInterrupt) -> None:
    try:
        _interrupted(exc)
    except typer.Exit as e:
        sys.exit(e.exit_code)


if __name__ == "__main__":
    main()
