"""How well a model's presence head finds the instruments of a recording (the numbers in docs/cli.md, "detect").

    python benchmarks/detection_quality.py --model sgn-gm-small

On each track of the packaged test sets (chorales-2src, chorales-3src: the stems summed into the mixture),
runs the same detection as `sgnsep detect` / `--sources auto` (1 s hop, threshold 0.5, min-seconds 0) and
counts the instruments found, those missed and the false alarms; "top-k" counts the instruments among the k
classes with the highest peak probability when k, the number of instruments, is known.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from sgnsep import Separator
from sgnsep.audio import audio_io
from sgnsep.analysis.detection import detect_array

ROOT = Path(__file__).resolve().parents[1]
SETS = ("chorales-2src", "chorales-3src")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="sgn-gm-small")
    ap.add_argument("--threshold", type=float, default=0.5)
    args = ap.parse_args()
    sep = Separator(args.model, device="cpu")
    print("| test set | instruments | found | missed | false alarms | top-k right |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in SETS:
        root = ROOT / "sgnsep" / "data" / "testset" / name
        found = missed = false = top = total = 0
        for track in sorted(p for p in root.iterdir() if p.is_dir()):
            stems = {p.stem: audio_io.read_audio(p) for p in sorted(track.iterdir()) if p.suffix == ".flac"}
            rate = next(iter(stems.values()))[1]
            timeline = detect_array(sep, sum(x for x, _ in stems.values()), rate, threshold=args.threshold)
            truth, present = set(stems), set(timeline.present)
            found, missed, false = found + len(truth & present), missed + len(truth - present), false + len(present - truth)
            best = np.argsort(-timeline.probabilities.max(axis=0))[: len(truth)]
            top += len(truth & {timeline.classes[i] for i in best})
            total += len(truth)
        print(f"| {name} | {total} | {found} | {missed} | {false} | {top} |")


if __name__ == "__main__":
    main()
