"""Separation of music a model has never heard: pieces and a soundfont family held out of training.

    python benchmarks/held_out_music.py --model sgn-gm-small --model runs/x/best --corpora data/held-out

The default model and the training corpora of `sgnsep data music` are rendered from the FluidR3 family
(FluidR3_GM, FluidR3Mono, MuseScore General share samples); TimGM6mb is a family of its own. For each family
this script renders (once; it is kept in CORPORA/<family>-<classes>-<hours>h-seed<seed>/) the val and test pieces of the corpus
split with `sgnsep data music --soundfonts family:F --only-splits val,test`, so that no piece is one a
corpus of the same split fractions trains on, then scores every model with one `sgnsep eval` per family and
part count on the test split's tracks of exactly N stems (2 and 3 by default), beside the ideal binary mask
(oracle-ibm) on the same tracks. It prints a Markdown table of SDRi (mean and standard error over sources)
and of SDRi as a share of the ideal binary mask's, over all tracks and apart for polyphonic pieces and for
folk tunes played in unison (the same notes on two instruments: the hardest case), and writes each
evaluation's JSON and CSV to --out.

The default corpus is string music (violin, viola, cello), the case issue 23's bar is set on; `--classes`
takes any classes of sgnsep.synth.INSTRUMENTS (every model scored must know them).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = {"timgm6mb": "held out of training", "fluidr3": "the training family"}


def render(folder: Path, family: str, args) -> None:
    if (folder / "metadata.json").is_file():
        return
    cmd = [sys.executable, "-m", "sgnsep", "data", "music", "--out", str(folder), "--hours", str(args.hours),
           "--seed", str(args.seed), "--soundfonts", f"family:{family}", "--classes", args.classes,
           "--max-sources", str(max(args.parts)), "--min-seconds", "8", "--max-seconds", "12",
           "--only-splits", "val,test"]
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True)


def track_kinds(folder: Path) -> dict[str, str]:
    """Track -> "polyphonic" (parts of a polyphonic piece) or "unison" (a folk tune played by several
    instruments in unison or octaves, sgnsep.synth.music_corpus: the same notes in one register)."""
    meta = json.loads((folder / "metadata.json").read_text())
    return {t["track_id"]: "unison" if t["group"] == "folk" else "polyphonic" for t in meta["tracks"]}


def scores(report: dict, method: str) -> dict:
    """SDRi per source of ``method`` (the oracle's from its SDR minus the mixture's), in one order."""
    ok = [r for r in report["records"] if r["status"] == "ok"]
    mix = {(r["track"], r["class"]): r["sdr"] for r in ok if r["method"] == "mixture"}
    return {(r["track"], r["class"]): r["sdr"] - mix[(r["track"], r["class"])]
            for r in ok if r["method"] == method and (r["track"], r["class"]) in mix}


def calibration(model: str, folder: Path, parts: int) -> tuple[int, float, float]:
    """Mask calibration of ``model``'s own masks (``--masks independent``) on the test tracks of ``parts``
    stems -> (tracks, mean over sources of the energy claimed minus the energy present in dB, mean over tracks
    of the estimates' summed energy as a share of the mixture's; about 1 when the stems are all that sound)."""
    import soundfile as sf

    sys.path.insert(0, str(ROOT))
    from sgnsep import Separator
    from sgnsep.datasets import music_corpus_tracks

    sep = Separator(model, device="cpu", masks="independent")
    meta = json.loads((folder / "metadata.json").read_text())
    split = music_corpus_tracks(folder)
    claimed, shares = [], []
    for t in meta["tracks"]:
        if split.get(t["track_id"], {}).get("split") != "test" or len(t["stems"]) != parts:
            continue
        stems = {c: sf.read(folder / s["path"], dtype="float32")[0] for c, s in t["stems"].items()}
        mix = sum(stems.values())
        est = sep.separate(mix, sf.info(folder / next(iter(t["stems"].values()))["path"]).samplerate, list(stems))
        for c, ref in stems.items():
            claimed.append(10 * np.log10(np.sum(est[c].astype(np.float64) ** 2) / np.sum(ref.astype(np.float64) ** 2)))
        shares.append(sum(np.sum(e.astype(np.float64) ** 2) for e in est.values()) / np.sum(mix.astype(np.float64) ** 2))
    return len(shares), float(np.mean(claimed)), float(np.mean(shares))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", required=True, help="registered name or checkpoint folder (repeat)")
    ap.add_argument("--corpora", type=Path, required=True, help="folder for the rendered held-out corpora")
    ap.add_argument("--out", type=Path, default=None, help="folder for the eval JSON/CSV (default: CORPORA/results)")
    ap.add_argument("--classes", default="violin,viola,cello")
    ap.add_argument("--parts", default="2,3", help="part counts to score (comma-separated)")
    ap.add_argument("--hours", type=float, default=1.5, help="audio per corpus, summed over stems")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--masks", default="shared", choices=("shared", "independent", "complete"))
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--calibration", action="store_true",
                    help="also measure the energy each model's own masks claim against the energy present")
    args = ap.parse_args()
    args.parts = [int(p) for p in args.parts.split(",")]
    out = args.out or args.corpora / "results"
    out.mkdir(parents=True, exist_ok=True)
    tag = args.classes.replace(",", "-")
    rows = []
    for family in args.families.split(","):
        folder = args.corpora / f"{family}-{tag}-{args.hours:g}h-seed{args.seed}"
        render(folder, family, args)
        for n in args.parts:
            stem = out / f"{folder.name}-{n}parts-{args.masks}"
            cmd = [sys.executable, "-m", "sgnsep", "eval", "--data-dir", str(folder), "--dataset", "stems",
                   "--split", "test", "--num-sources", str(n), "--metrics", "sdr,sir,sar", "--baselines",
                   "mixture,oracle-ibm", "--masks", args.masks, "--device", "cpu", "--out", f"{stem}.json",
                   "--csv", f"{stem}.csv", "--overwrite"]
            for m in args.model:
                cmd += ["--model", m]
            print("+", " ".join(cmd), file=sys.stderr, flush=True)
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            report = json.loads(Path(f"{stem}.json").read_text())
            ibm = scores(report, "oracle-ibm")
            kinds = track_kinds(folder)
            for model in report["models"]:
                got = scores(report, model["method"])
                for kind in ("all", "polyphonic", "unison"):
                    keys = sorted(k for k in got if kind == "all" or kinds[k[0]] == kind)
                    if len(keys) < 2:
                        continue
                    v = np.array([got[k] for k in keys])
                    o = np.array([ibm[k] for k in keys])
                    rows.append((model["name"], family, n, kind, len(v), v.mean(), v.std(ddof=1) / np.sqrt(len(v)),
                                 o.mean(), 100 * v.mean() / o.mean()))
    print(f"\nTest split of `data music --classes {args.classes} --only-splits val,test --hours {args.hours} --seed "
          f"{args.seed}` per family; `--masks {args.masks}`; SDRi in dB (mean +- standard error over sources).\n")
    print("| model | soundfont family | parts | music | sources | SDRi | ideal binary mask SDRi | share of the mask's |")
    print("|---|---|---|---|---|---|---|---|")
    for name, family, n, kind, count, mean, se, ibm_mean, share in rows:
        print(f"| {name} | {family} ({FAMILIES.get(family, 'other')}) | {n} | {kind} | {count} | {mean:.2f} +- "
              f"{se:.2f} | {ibm_mean:.2f} | {share:.0f} % |")
    if args.calibration:
        print("\nMask calibration (each model's own masks, `--masks independent`): energy claimed minus energy "
              "present per source (mean, dB) and the estimates' summed energy over the mixture's (mean per track; "
              "about 1 where the stems are all that sound).\n")
        print("| model | soundfont family | parts | tracks | claimed - present | claimed / mixture |")
        print("|---|---|---|---|---|---|")
        for family in args.families.split(","):
            folder = args.corpora / f"{family}-{tag}-{args.hours:g}h-seed{args.seed}"
            for n in args.parts:
                for m in args.model:
                    count, db, share = calibration(m, folder, n)
                    print(f"| {m} | {family} | {n} | {count} | {db:+.1f} dB | {share:.2f} |", flush=True)
    print("\nProduced by:\n\n```bash\npython benchmarks/held_out_music.py " + " ".join(
        f"--model {m}" for m in args.model) + f" --corpora {args.corpora} --classes {args.classes} --parts "
          f"{','.join(map(str, args.parts))} --hours {args.hours} --seed {args.seed} --masks {args.masks}"
          + (" --calibration" if args.calibration else "") + "\n```")


if __name__ == "__main__":
    main()
