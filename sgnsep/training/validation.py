"""Validation during training: SDRi and SI-SDRi on fixed mixtures of the corpus's val split (or of a held-out
corpus, ``val_data_dir``), the score a run's best checkpoint is chosen on, and the divergence a run stops at."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from sgnsep.core.errors import SgnsepError, UsageError
from sgnsep.datasets.registry import load_dataset
from sgnsep.datasets.sampling import sample_mixture
from sgnsep.training.batch import make_batch
from sgnsep.models.config import AudioConfig
from sgnsep.training.config import TrainConfig


class TrainingDiverged(SgnsepError):
    exit_code = 7


# --resume reuses the run's saved settings (a --set lr=... given with it is not applied), so say what works.
DIVERGED_HINT = "Start a new run (another --out) with a lower learning rate (--set lr=...)."


def batch_si_sdr(ref: torch.Tensor, est: torch.Tensor) -> torch.Tensor:
    ref = ref - ref.mean(-1, keepdim=True)
    est = est - est.mean(-1, keepdim=True)
    alpha = (est * ref).sum(-1, keepdim=True) / (ref.pow(2).sum(-1, keepdim=True) + 1e-12)
    target = alpha * ref
    return 10 * torch.log10(target.pow(2).sum(-1) / ((est - target).pow(2).sum(-1) + 1e-12) + 1e-12)


@torch.no_grad()
def validate(model: torch.nn.Module, batches, audio: AudioConfig) -> dict[str, float]:
    """Scores on the fixed validation mixtures, with the evaluation code of `sgnsep eval`: mean SDR
    improvement over the mixture (BSS Eval v3, as mir_eval) and mean SI-SDR improvement."""
    from sgnsep.audio import frontend
    from sgnsep.evaluation.metrics import evaluate_sources

    model.eval()
    sdri, si_sdri = [], []
    for b in batches:
        out = model(b.net_input, b.classes)
        masks = frontend.unwarp(torch.sigmoid(out.mask_logits), audio)
        spec = frontend.stft(b.mixture, audio).unsqueeze(1)
        est = frontend.istft(spec * masks, audio, length=b.mixture.shape[-1])
        if not torch.isfinite(est).all():
            raise TrainingDiverged(
                "The model's outputs on the validation mixtures became NaN or infinite (training diverged); "
                "no checkpoint was written for them.",
                hint=DIVERGED_HINT,
            )
        mix = b.mixture.unsqueeze(1).expand_as(b.sources)
        si_sdri.append((batch_si_sdr(b.sources, est) - batch_si_sdr(b.sources, mix)).flatten())
        for refs, ests, mixes in zip(b.sources.double().cpu().numpy(), est.double().cpu().numpy(), mix.double().cpu().numpy()):
            for s_est, s_mix in zip(evaluate_sources(refs, ests, metrics=("sdr",)), evaluate_sources(refs, mixes, metrics=("sdr",))):
                if s_est.sdr is not None and s_mix.sdr is not None:
                    sdri.append(s_est.sdr - s_mix.sdr)
    model.train()
    return {
        "sdri": float(np.mean(sdri)) if sdri else float("nan"),
        "si_sdri": float(torch.cat(si_sdri).mean()),
    }


def validation_batches(val_set, cfg: TrainConfig, num_classes: int, audio: AudioConfig, mask_threshold: float,
                       device, class_index: Sequence[int] | None = None) -> list:
    """The run's fixed validation mixtures: ``cfg.val_mixtures`` of ``cfg.num_sources`` sources, drawn with
    their own seed (``cfg.seed`` + 1,000,003) so that they do not depend on the training position, and the
    same for any checkpoint scored with the same settings (benchmarks/validation_score.py).
    ``class_index[j]``: the model's index of ``val_set.classes[j]`` (None: the same order)."""
    vrng = np.random.default_rng(cfg.seed + 1_000_003)
    to_model = np.arange(num_classes) if class_index is None else np.asarray(class_index, dtype=np.int64)
    batches = []
    for start in range(0, cfg.val_mixtures, 16):
        n = min(16, cfg.val_mixtures - start)
        pairs = [sample_mixture(val_set, cfg.num_sources, audio.segment_samples, vrng, coherent=cfg.coherent)
                 for _ in range(n)]
        batches.append(
            make_batch(
                torch.from_numpy(np.stack([p[0] for p in pairs])),
                torch.from_numpy(np.stack([to_model[p[1]] for p in pairs])),
                num_classes, audio, mask_threshold=mask_threshold,
            ).to(device)
        )
    return batches


def load_validation_corpus(cfg: TrainConfig, classes: Sequence[str], audio: AudioConfig):
    """The "val" split of ``cfg.val_data_dir`` (layout ``cfg.val_dataset`` or ``cfg.dataset``) on the training
    classes it has -> (dataset, class_index), ``class_index[j]`` being the index in ``classes`` of the dataset's
    class j. Raises UsageError when it shares fewer than ``cfg.num_sources`` classes with training."""
    name = cfg.val_dataset or cfg.dataset
    where = f"val_data_dir {cfg.val_data_dir}"
    every = load_dataset(name, cfg.val_data_dir, split="val", sample_rate=audio.sample_rate,
                         min_samples=audio.segment_samples)
    shared = [c for c in classes if c in every.classes and c not in every.empty_classes]
    if len(shared) < cfg.num_sources:
        raise UsageError(
            f"{where}: its val split has {len(shared)} of the training classes ({', '.join(shared) or 'none'}); "
            f"validation mixes {cfg.num_sources}.",
            hint=f"Its classes: {', '.join(every.classes)}. Render it with the training classes "
            "(`sgnsep data music --classes ...`).",
        )
    val_set = load_dataset(name, cfg.val_data_dir, split="val", sample_rate=audio.sample_rate,
                           min_samples=audio.segment_samples, classes=shared)
    return val_set, [list(classes).index(c) for c in val_set.classes]
