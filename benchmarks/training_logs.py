"""Summarise the training logs of several runs side by side: validation scores and the diagnostics columns.

    python benchmarks/training_logs.py runs/compare-600/sgn runs/compare-600/sgn-paper
    python benchmarks/training_logs.py runs/screen/* --last 50 --out summary.md

For each run folder (a `sgnsep train --out` folder holding log.csv): validation SDRi / SI-SDRi at its last
validation and at its best, and over the diagnostics rows of its last ``--last`` steps (the columns of
sgnsep/training/diagnostics.py): the mean mask-logit std, the grouping's mass on the classes present, and
how much more gradient the auxiliary losses (class-token CE + presence BCE, eq. 7) send than the mask loss
(eq. 8) into the patch embedding + transformer and into the grouping's query/key.
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
from pathlib import Path


def _float(value: str | None) -> float | None:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _ratio(rows: list[dict], groups: tuple[str, ...]) -> float | None:
    """Mean over rows of |aux gradient| / |mask-loss gradient| summed over ``groups`` (norms combined as L2)."""
    ratios = []
    for r in rows:
        rec = [_float(r.get(f"grad_rec_{g}")) for g in groups]
        aux = [_float(r.get(f"grad_{t}_{g}")) for t in ("class_token", "presence") for g in groups]
        if any(v is None for v in rec + aux):
            continue
        rec_norm = math.sqrt(sum(v * v for v in rec))
        aux_norm = math.sqrt(sum(v * v for v in aux))
        if rec_norm > 0:
            ratios.append(aux_norm / rec_norm)
    return statistics.fmean(ratios) if ratios else None


def summarise(run: Path, last: int) -> dict:
    with open(run / "log.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    val = [(int(r["step"]), _float(r["val_sdri"]), _float(r["val_si_sdri"])) for r in rows if _float(r.get("val_sdri")) is not None]
    final_step = int(rows[-1]["step"]) if rows else 0
    diag = [r for r in rows if _float(r.get("mask_logit_std")) is not None and int(r["step"]) > final_step - last]

    def mean(col: str) -> float | None:
        values = [_float(r.get(col)) for r in diag]
        values = [v for v in values if v is not None]
        return statistics.fmean(values) if values else None

    best = max(val, key=lambda v: v[1]) if val else None
    return {
        "run": run.name, "steps": final_step,
        "last_val": val[-1] if val else None, "best_val": best,
        "logit_std": mean("mask_logit_std"), "mass": mean("group_mass_present"),
        "aux_encoder": _ratio(diag, ("patch_embed", "transformer")), "aux_qk": _ratio(diag, ("grouping_qk",)),
    }


def fmt(v: float | None, spec: str = ".2f") -> str:
    return "-" if v is None else format(v, spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="Run folders (each with log.csv).")
    ap.add_argument("--last", type=int, default=50, help="Average the diagnostics over the last this many steps.")
    ap.add_argument("--out", type=Path, help="Also write the Markdown table here.")
    args = ap.parse_args()
    head = ("| run | steps | val SDRi (SI-SDRi), last | best val SDRi (step) | mask-logit std | grouping mass on present "
            "| aux / mask gradient, patch embed + transformer | aux / mask gradient, grouping q/k |")
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for run in args.runs:
        if not (run / "log.csv").is_file():
            continue
        s = summarise(run, args.last)
        last = s["last_val"]
        best = s["best_val"]
        lines.append(
            f"| {s['run']} | {s['steps']} | {fmt(last and last[1])} ({fmt(last and last[2])}) | "
            f"{fmt(best and best[1])} ({best[0] if best else '-'}) | {fmt(s['logit_std'])} | {fmt(s['mass'], '.3f')} | "
            f"{fmt(s['aux_encoder'], '.1f')} | {fmt(s['aux_qk'], '.1f')} |"
        )
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
