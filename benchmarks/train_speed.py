"""Training throughput: mixtures per second of `sgnsep train` with a model config, on this machine.

    python benchmarks/train_speed.py                                  # the default model's recipe
    python benchmarks/train_speed.py --config configs/sgn-gm-small.json --steps 20 --device cpu

Writes a small solos corpus of harmonic tones (17 classes, so the model has the default's size) into a
temporary folder, then runs the real training loop (sgnsep.training.train: mixing, front end, SGN forward
and backward, optimizer) for --steps steps and reports mixtures per second over the steps after the first
(warm-up). Validation and checkpoints are excluded from the timing. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sgnsep.training import TrainConfig, config_from_dict, train  # noqa: E402


def write_corpus(root: Path, classes: int = 17, clips: int = 6, seconds: float = 8.0, rate: int = 11025) -> None:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * rate)) / rate
    for c in range(classes):
        folder = root / f"class{c:02d}"
        folder.mkdir(parents=True)
        for i in range(clips):
            f0 = 110 * 2 ** ((c + rng.uniform(0, 12)) / 12)
            x = sum(np.sin(2 * np.pi * f0 * (k + 1) * t) / (k + 1) ** (1 + c % 3) for k in range(6))
            x = 0.1 * x * (0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.5, 3) * t))
            sf.write(folder / f"{i}.wav", x.astype(np.float32), rate)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "sgn-gm-small.json")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--batch-size", type=int, default=0, help="default: the config's")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    import torch

    data = json.loads(args.config.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        write_corpus(corpus)
        keep = {k: data[k] for k in ("optimizer", "lr", "weight_decay", "batch_size", "model", "audio", "num_sources") if k in data}
        if args.batch_size:
            keep["batch_size"] = args.batch_size
        cfg = config_from_dict({**keep, "dataset": "solos", "data_dir": str(corpus), "epochs": 1,
                                "steps_per_epoch": args.steps, "checkpoint_every": 10**9, "val_mixtures": 1},
                               where=str(args.config))
        stamps: list[float] = []
        train(cfg, Path(tmp) / "run", device=torch.device(args.device),
              on_step=lambda row: stamps.append(time.perf_counter()))
    timed = np.diff(stamps[:-1]) if len(stamps) > 2 else np.diff(stamps)  # the last step also validates
    per_step = float(np.median(timed))
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}, device {args.device}\n")
    print("| config | model | batch | seconds per step (median) | mixtures per second |\n|---|---|---|---|---|")
    model = ", ".join(f"{k} {v}" for k, v in cfg.model.items()) or "paper defaults"
    print(f"| {args.config.name} | {model} | {cfg.batch_size} | {per_step:.2f} | {cfg.batch_size / per_step:.1f} |")


if __name__ == "__main__":
    main()
