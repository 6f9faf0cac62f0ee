"""`sgnsep eval`: one or several models scored on the same mixtures, beside the mixture and the oracle masks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from sgnsep.core.errors import SgnsepError, UsageError
from sgnsep.cli.common import DeviceOpt, MasksOpt, ModelsOpt, app, default_model, err, fail, interrupted, out


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

    from sgnsep.core.atomic_write import refuse_existing
    from sgnsep.evaluation import evaluate as ev
    from sgnsep.evaluation.evaluate import PACKAGED_TESTSETS
    from sgnsep.evaluation.plan import LAYOUTS, plan_evaluation
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
        if dataset not in ("auto", *LAYOUTS):
            raise UsageError(f"Unknown --dataset '{dataset}'; use stems, solos or auto.")
        seps = [Separator(m, device=device, masks=masks) for m in ([m for m in model or [] if m] or [default_model()])]
        plan = plan_evaluation(seps, data_dir, dataset=dataset, sources=sources, num_sources=num_sources,
                               segments=segments, seed=seed, split=split)
        if plan.left_out:
            err.print(f"Evaluating on the {len(plan.classes)} classes every model knows; left out: "
                      f"{escape(', '.join(plan.left_out))}.", highlight=False)
        with Progress(console=err, transient=True, disable=not err.is_terminal) as progress:
            task = progress.add_task("evaluating", total=plan.total)
            report = ev.evaluate(
                seps, iter(plan.examples), metrics=metric_list, baselines=base_list, data_info=plan.data_info,
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
        fail(e)
    except KeyboardInterrupt as exc:
        interrupted(exc)
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
