"""Score checkpoints on the validation mixtures a training config draws (the numbers training logs as val_sdri).

    python benchmarks/validation_score.py --config configs/sgn-gm-small-chorales-stage5.json \
        runs/sgn-gm-small-stage4/best runs/sgn-gm-small-stage5/best

The mixtures depend only on the config's dataset, seed, coherent fraction, number of sources and
val_mixtures (sgnsep.training.validation_batches), so checkpoints from different runs are compared on exactly
the mixtures one of those runs validated on; each is scored with its own front end (input level) and mask
threshold, by the same code as training's validation. With the config's val_data_dir (a held-out corpus) the
mixtures are that corpus's, as training chose its checkpoint on them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from sgnsep.models.checkpoint import load_checkpoint
from sgnsep.datasets import load_dataset
from sgnsep.models.registry import resolve_model
from sgnsep.training import config_from_dict, load_validation_corpus, validate, validation_batches


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, required=True, help="training config JSON whose validation mixtures to use")
    ap.add_argument("models", nargs="+", help="checkpoint folders or registered names")
    args = ap.parse_args()
    data = json.loads(args.config.read_text())
    data.pop("init_from", None)  # the checkpoints scored are given on the command line
    cfg = config_from_dict(data, where=str(args.config))
    torch.set_num_threads(cfg.threads or torch.get_num_threads())
    where = f" from {cfg.val_data_dir}" if cfg.val_data_dir else ""
    print(f"validation mixtures{where} of {args.config} (seed {cfg.seed}, {cfg.val_mixtures} mixtures of "
          f"{cfg.num_sources} sources, {cfg.coherent:.0%} coherent)\n\n| checkpoint | val SDRi | val SI-SDRi |\n|---|---|---|")
    for name in args.models:
        ck = load_checkpoint(resolve_model(name))
        audio = ck.meta.audio
        if cfg.val_data_dir:
            val_set, index = load_validation_corpus(cfg, list(ck.meta.classes), audio)
        else:
            val_set, index = load_dataset(cfg.dataset, cfg.data_dir or None, split="val", sample_rate=audio.sample_rate,
                                          min_samples=audio.segment_samples, classes=list(ck.meta.classes)), None
        batches = validation_batches(val_set, cfg, len(ck.meta.classes), audio, ck.meta.model.mask_threshold, "cpu",
                                     class_index=index)
        with torch.no_grad():
            scores = validate(ck.model, batches, audio)
        print(f"| {name} | {scores['sdri']:.2f} | {scores['si_sdri']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
