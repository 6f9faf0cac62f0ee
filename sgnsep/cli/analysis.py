"""`sgnsep detect` (which classes sound when, as a timeline) and `sgnsep embed` (a map of clips' class embeddings)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sgnsep._version import __version__
from sgnsep.cli.common import DeviceOpt, ModelOpt, app, default_model, err, fail, interrupted, out, show_library_warnings
from sgnsep.core.errors import SgnsepError, UsageError


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
        sep = Separator(model or default_model(), device=device)
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
        fail(e)
    except KeyboardInterrupt as exc:
        interrupted(exc, file)
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

    show_library_warnings()
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
        sep = Separator(model or default_model(), device=device)
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
        fail(e)
    except KeyboardInterrupt as exc:
        interrupted(exc)
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
