"""Input levels the network sees: training mixtures against the packaged test sets (why input_level_db exists).

    python benchmarks/input_levels.py

Level = mean power, in dB, of a segment's warped magnitude spectrogram (what ``audio.input_level_db`` sets;
sgnsep.audio.frontend.segment_level_db). Training mixtures are drawn as training draws them (sources divided by N, 200
per corpus, seed 0): the solo corpus data/gm17 (2 sources) and the chorale stems data/chorales-train (2 and 3
sources, 75 % coherent), made by the commands in weights.md. Test mixtures are the packaged chorale sets'
stems summed, as `sgnsep eval` mixes them. Prints median and 10th/90th percentiles.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from sgnsep.audio import frontend
from sgnsep.models.config import AudioConfig
from sgnsep.datasets import load_dataset, sample_mixture

ROOT = Path(__file__).resolve().parents[1]


def level_db(mixture: np.ndarray, audio: AudioConfig) -> float:
    mag = frontend.stft(torch.from_numpy(mixture.astype(np.float32))[None], audio).abs()
    return float(frontend.segment_level_db(frontend.warp(mag, audio)))


def row(name: str, levels: list[float]) -> str:
    p10, p50, p90 = np.percentile(levels, [10, 50, 90])
    return f"| {name} | {len(levels)} | {p50:.1f} | {p10:.1f} | {p90:.1f} |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=200)
    args = ap.parse_args()
    audio = AudioConfig()
    print("| mixtures | count | median dB | 10th percentile | 90th percentile |\n|---|---|---|---|---|")
    for dataset, folder, n, coherent in (("solos", "data/gm17", 2, 0.0), ("stems", "data/chorales-train", 2, 0.75),
                                         ("stems", "data/chorales-train", 3, 0.75)):
        ds = load_dataset(dataset, ROOT / folder, split="train", sample_rate=audio.sample_rate,
                          min_samples=audio.segment_samples)
        rng = np.random.default_rng(0)
        levels = [level_db(sample_mixture(ds, n, audio.segment_samples, rng, coherent=coherent)[0].sum(0) / n, audio)
                  for _ in range(args.draws)]
        print(row(f"training, {folder}, {n} sources / {n}", levels), flush=True)
    for name in ("chorales-2src", "chorales-3src"):
        root = ROOT / "sgnsep" / "data" / "testset" / name
        meta = json.loads((root / "metadata.json").read_text())
        levels = [level_db(sum(sf.read(root / s["path"], dtype="float32")[0] for s in t["stems"].values())
                           [: audio.segment_samples], audio) for t in meta["tracks"]]
        print(row(f"test, {name}, stems summed", levels), flush=True)


if __name__ == "__main__":
    main()
