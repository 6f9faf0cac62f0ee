"""Measure a model's separation quality on the packaged held-out test sets (the numbers in weights.md).

    python benchmarks/quality.py --model sgn-gm-small --out benchmarks/results

Runs `sgnsep eval` (the same code) on chorales-2src and chorales-3src with SDR/SIR/SAR/SI-SDR and the
mixture and oracle baselines, writes <out>/<model>-<set>.json and .csv, and prints a Markdown summary
(overall and per class) to paste into weights.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

SETS = ("chorales-2src", "chorales-3src")
ROOT = Path(__file__).resolve().parents[1]


def bar_line(report: dict) -> str:
    """The model's mean SDRi with its standard error (over sources, and over mixtures: a mixture's sources are
    not independent), and as a share of the oracle binary mask's SDR improvement (issue 5's quality bar)."""
    import numpy as np

    records = [r for r in report["records"] if r["status"] == "ok"]
    model = [r for r in records if r["method"] == "model" and r.get("sdri") is not None]
    mix = {(r["track"], r["class"]): r["sdr"] for r in records if r["method"] == "mixture"}
    ibm = [r["sdr"] - mix[(r["track"], r["class"])] for r in records if r["method"] == "oracle-ibm"]
    sdri = np.array([r["sdri"] for r in model])
    tracks = {}
    for r in model:
        tracks.setdefault(r["track"], []).append(r["sdri"])
    per_track = np.array([np.mean(v) for v in tracks.values()])
    share = f"{100 * sdri.mean() / np.mean(ibm):.1f} % of the oracle binary mask's {np.mean(ibm):.2f} dB" if ibm else "no oracle"
    return (f"\nmodel SDRi {sdri.mean():.2f} dB, standard error {sdri.std(ddof=1) / np.sqrt(len(sdri)):.2f} dB over "
            f"{len(sdri)} sources, {per_track.std(ddof=1) / np.sqrt(len(per_track)):.2f} dB over {len(per_track)} "
            f"mixtures; {share}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="sgn-gm-small")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--masks", default="shared", choices=("shared", "independent"),
                    help="how overlapping class masks are combined (sgnsep eval --masks)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    tag = Path(args.model).name if Path(args.model).exists() else args.model.replace("/", "_")
    if args.masks != "shared":
        tag += f"-{args.masks}"
    for name in SETS:
        out_json, out_csv = args.out / f"{tag}-{name}.json", args.out / f"{tag}-{name}.csv"
        cmd = [sys.executable, "-m", "sgnsep", "eval", "--model", args.model, "--data-dir",
               str(ROOT / "sgnsep" / "data" / "testset" / name), "--metrics", "sdr,sir,sar,si-sdr",
               "--out", str(out_json), "--csv", str(out_csv), "--overwrite", "--device", "cpu", "--masks", args.masks]
        subprocess.run(cmd, check=True)
        summary = json.loads(out_json.read_text())["summary"]
        print(f"\n### {name}\n")
        print("| method | SDR | SIR | SAR | SI-SDR | SDRi |\n|---|---|---|---|---|---|")
        for method, groups in summary.items():
            o = groups["overall"]
            cells = [f"{o[k]['mean']:.2f}" if k in o else "-" for k in ("sdr", "sir", "sar", "si-sdr", "sdri")]
            print(f"| {method} | " + " | ".join(cells) + " |")
        print(bar_line(json.loads(out_json.read_text())))
        print("\n| class (model) | n | SDR | SIR | SAR | SI-SDR | SDRi | oracle-IBM SDR |\n|---|---|---|---|---|---|---|---|")
        for cls, stats in sorted(summary["model"].items()):
            if cls in ("overall", "silent"):
                continue
            ibm = summary.get("oracle-ibm", {}).get(cls, {}).get("sdr", {}).get("mean")
            cells = [f"{stats[k]['mean']:.2f}" if k in stats else "-" for k in ("sdr", "sir", "sar", "si-sdr", "sdri")]
            print(f"| {cls} | {stats['sdr']['n']} | " + " | ".join(cells) + f" | {ibm:.2f} |" if ibm is not None else " | - |")


if __name__ == "__main__":
    main()
