"""A tiny SGN trained in seconds on synthetic tone classes, so tests can check real separation.

Three classes that a small model learns quickly: "low" (harmonic notes, 100-200 Hz), "high" (harmonic
notes, 900-1800 Hz) and "hiss" (noise bursts band-passed to 3-5 kHz).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from sgnsep.models.checkpoint import CheckpointMeta, save_checkpoint
from sgnsep.models.config import AudioConfig, SGNConfig
from sgnsep.training.batch import make_batch
from sgnsep.models.sgn import SGN, sgn_loss

CLASSES = ["low", "high", "hiss"]
TINY = SGNConfig(num_classes=3, unet_ngf=8, embed_dim=16, depth=1, num_heads=2, patch_size=8, unet_depth=5)
# A small front end (64 x 64 network input, 1.5 s segments) keeps training in the test suite to seconds;
# it also exercises every code path that must follow the checkpoint's audio config instead of constants.
TINY_AUDIO = AudioConfig(segment_samples=16383, n_fft=510, hop_length=256, warp_bins=64)


def tone(kind: str, seconds: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A few notes (or bursts) of one class, peak-normalised to 0.5."""
    n = int(seconds * sr)
    out = np.zeros(n, dtype=np.float64)
    t = np.arange(n) / sr
    pos = 0
    while pos < n:
        dur = int(rng.uniform(0.2, 0.8) * sr)
        seg = slice(pos, min(n, pos + dur))
        tt = t[seg] - t[pos]
        env = np.minimum(1.0, tt / 0.02) * np.exp(-tt * rng.uniform(0.5, 3.0))
        if kind == "hiss":
            noise = rng.standard_normal(len(tt))
            spec = np.fft.rfft(noise)
            freqs = np.fft.rfftfreq(len(tt), 1 / sr)
            spec[(freqs < 3000) | (freqs > 5000)] = 0
            sig = np.fft.irfft(spec, len(tt))
        else:
            f0 = rng.uniform(100, 200) if kind == "low" else rng.uniform(900, 1800)
            sig = sum(np.sin(2 * math.pi * f0 * h * tt) / h for h in (1, 2, 3) if f0 * h < sr / 2)
        out[seg] += env * sig
        pos += dur + int(rng.uniform(0.0, 0.2) * sr)
    peak = np.abs(out).max()
    return (0.5 * out / peak).astype(np.float32) if peak > 0 else out.astype(np.float32)


def random_pair_batch(batch: int, sr: int, samples: int, rng: np.random.Generator):
    sources, classes = [], []
    for _ in range(batch):
        pick = rng.choice(len(CLASSES), size=2, replace=False)
        classes.append(pick)
        sources.append([tone(CLASSES[c], samples / sr, sr, rng)[:samples] for c in pick])
    return torch.tensor(np.array(sources)), torch.tensor(np.array(classes))


def train_tone_model(folder: Path, *, steps: int = 70, seed: int = 0) -> Path:
    """Train the tiny model with Adam (fast to converge; the paper's SGD recipe is for `sgnsep train`)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    audio = TINY_AUDIO
    model = SGN(TINY, input_size=audio.warp_bins)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        src, cls = random_pair_batch(8, audio.sample_rate, audio.segment_samples, rng)
        b = make_batch(src, cls, TINY.num_classes, audio)
        out = model(b.net_input, b.classes)
        loss = sgn_loss(out, b.target_masks, b.present, TINY, weight=b.weight)
        opt.zero_grad()
        loss.total.backward()
        opt.step()
    meta = CheckpointMeta(
        classes=CLASSES,
        model=TINY,
        audio=audio,
        name="tone-tiny",
        training={"recipe": "tests/tone_model.py", "steps": steps, "seed": seed, "final_loss": float(loss.total.detach())},
    )
    return save_checkpoint(folder, model, meta)
