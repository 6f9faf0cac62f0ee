"""Which of a model's classes sound in a recording, and when: the presence head over time.

SGN's presence head (eq. 7, ``p_i = sigmoid(FC(g_i))``) is trained to say, for one segment of the model's
input (256 STFT frames, about 5.9 s for the default model), whether class i is in that segment's mixture.
Detection slides that segment over a file at a hop (default 1 s) and keeps every window's ``p_i``: a
timeline of probabilities, one row per window, one column per class the model knows. Only the transformer
and the grouping run (not the U-Net), so detection costs a fraction of a separation.

Windows start at 0, hop, 2 hop, ...; the last one is moved back to end with the file, so that every window
is a full segment of real audio. A file shorter than one segment is one window, zero-padded as separation
pads it. The file is read in blocks (``block_seconds``), so memory does not grow with its length.

Whole-file decision: a class is *present* when its probability is at least ``threshold`` (default 0.5) in
windows that together cover at least ``min_seconds`` of the file (default 0: one window is enough). Raise
either to ignore brief false alarms; ``min_seconds`` longer than a file means nothing is present in it.
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from sgnsep.audio import frontend
from sgnsep.core.errors import NothingDetectedError, UsageError
from sgnsep.audio.resampled_mono import ResampledMono

DEFAULT_HOP_SECONDS = 1.0
DEFAULT_THRESHOLD = 0.5
DEFAULT_MIN_SECONDS = 0.0


@dataclass
class SegmentOutputs:
    """What the model says about a batch of segments: embeddings g (B, C, D) and presence p (B, C) in [0, 1]."""

    embeddings: np.ndarray
    presence: np.ndarray


def embed_segments(separator, segments: np.ndarray) -> SegmentOutputs:
    """segments (B, segment_samples) mono at the model rate -> the class embeddings and presence of each.

    The network input is built as for separation (STFT, log-frequency warp, log magnitude); only the token
    encoder, the grouping and the presence head run.
    """
    audio = separator.meta.audio
    wave = torch.from_numpy(np.ascontiguousarray(segments, dtype=np.float32)).to(separator.device)
    with torch.inference_mode():
        mag = frontend.stft(wave, audio).abs()  # (B, F, T)
        net_in = frontend.network_input(frontend.warp(mag, audio), audio)
        g, _, presence_logits, _ = separator.model.embed(net_in)
        return SegmentOutputs(g.float().cpu().numpy(), torch.sigmoid(presence_logits).float().cpu().numpy())


def window_starts(total: int, segment: int, hop: int) -> list[int]:
    """Start samples of the detection windows over ``total`` samples (see the module docstring)."""
    if total <= segment:
        return [0]
    starts = list(range(0, total - segment + 1, hop))
    if starts[-1] + segment < total:
        starts.append(total - segment)
    return starts


# A hop longer than the file gives one window anyway; the cap keeps hop * sample rate a finite integer.
MAX_HOP_SECONDS = 24 * 3600.0


def check_settings(hop_seconds: float, threshold: float, min_seconds: float) -> None:
    if not (math.isfinite(hop_seconds) and 0 < hop_seconds <= MAX_HOP_SECONDS):
        raise UsageError(f"--hop must be a positive number of seconds up to {MAX_HOP_SECONDS:g}, got {hop_seconds}.")
    if not (0.0 < threshold < 1.0):
        raise UsageError(f"--threshold must be a probability strictly between 0 and 1, got {threshold}.")
    if not (math.isfinite(min_seconds) and min_seconds >= 0):
        raise UsageError(f"--min-seconds must be 0 or more, got {min_seconds}.")


def _merge(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[list[float]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [(a, b) for a, b in merged]


@dataclass
class PresenceTimeline:
    """Presence probabilities of every class over time, for one recording.

    starts, ends (W,) seconds of each window; probabilities (W, C) in [0, 1], columns in ``classes`` order.
    """

    input: str
    classes: list[str]
    starts: np.ndarray
    ends: np.ndarray
    probabilities: np.ndarray
    duration: float
    window_seconds: float
    hop_seconds: float
    threshold: float = DEFAULT_THRESHOLD
    min_seconds: float = DEFAULT_MIN_SECONDS
    model: dict[str, Any] = field(default_factory=dict)

    def spans(self, name: str) -> list[tuple[float, float]]:
        """Merged time spans (seconds) of the windows in which ``name`` is detected."""
        col = self.probabilities[:, self.classes.index(name)]
        hits = col >= self.threshold
        return _merge([(float(a), float(b)) for a, b, h in zip(self.starts, self.ends, hits) if h])

    def detected_seconds(self, name: str) -> float:
        return float(sum(b - a for a, b in self.spans(name)))

    def is_present(self, name: str) -> bool:
        spans = self.spans(name)
        return bool(spans) and sum(b - a for a, b in spans) >= self.min_seconds

    @property
    def present(self) -> list[str]:
        """Classes present in the whole recording, in the model's class order."""
        return [c for c in self.classes if self.is_present(c)]

    def require_present(self) -> list[str]:
        """The present classes; :class:`NothingDetectedError` if there are none."""
        present = self.present
        if not present:
            col = self.probabilities.max(axis=0)
            best = int(col.argmax())
            raise NothingDetectedError(
                f"{self.input}: no class detected at --threshold {self.threshold:g}"
                + (f" over --min-seconds {self.min_seconds:g}" if self.min_seconds else "")
                + f" (highest: {self.classes[best]}, {col[best]:.2f}); nothing was written.",
                hint="Lower --threshold, or name the classes with --sources.",
            )
        return present

    def summary(self) -> list[dict[str, Any]]:
        """One row per class: present, max and mean probability, detected seconds and spans."""
        rows = []
        for i, name in enumerate(self.classes):
            col = self.probabilities[:, i]
            spans = self.spans(name)
            rows.append({
                "class": name,
                "present": self.is_present(name),
                "max": float(col.max()),
                "mean": float(col.mean()),
                "windows_detected": int((col >= self.threshold).sum()),
                "detected_seconds": round(float(sum(b - a for a, b in spans)), 3),
                "spans": [[round(a, 3), round(b, 3)] for a, b in spans],
            })
        return rows

    def to_json(self) -> dict[str, Any]:
        return {
            "input": self.input,
            "model": self.model,
            "duration": round(self.duration, 6),
            "window_seconds": round(self.window_seconds, 6),
            "hop_seconds": self.hop_seconds,
            "threshold": self.threshold,
            "min_seconds": self.min_seconds,
            "classes": list(self.classes),
            "present": self.present,
            "summary": self.summary(),
            "windows": [
                {
                    "start": round(float(a), 6),
                    "end": round(float(b), 6),
                    "probabilities": {c: round(float(p), 6) for c, p in zip(self.classes, row)},
                }
                for a, b, row in zip(self.starts, self.ends, self.probabilities)
            ],
        }

    def to_csv(self) -> str:
        """One row per window: start, end (seconds) and one probability column per class."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["start", "end", *self.classes])
        for a, b, row in zip(self.starts, self.ends, self.probabilities):
            w.writerow([f"{a:.3f}", f"{b:.3f}", *(f"{p:.4f}" for p in row)])
        return buf.getvalue()


def detect(
    separator,
    source: ResampledMono,
    *,
    hop_seconds: float = DEFAULT_HOP_SECONDS,
    threshold: float = DEFAULT_THRESHOLD,
    min_seconds: float = DEFAULT_MIN_SECONDS,
    batch_size: int = 16,
    block_seconds: float = 60.0,
    progress: Callable[[int, int], None] | None = None,
) -> PresenceTimeline:
    """Presence timeline of ``source`` (a :class:`ResampledMono` at the separator's model rate)."""
    check_settings(hop_seconds, threshold, min_seconds)
    audio = separator.meta.audio
    rate, segment = audio.sample_rate, audio.segment_samples
    # Windows closer than one STFT frame see the same frames: finer hops only multiply the work (--hop 1e-6
    # would make one window per sample).
    min_hop = audio.hop_length / rate
    if hop_seconds < min_hop:
        raise UsageError(
            f"--hop {hop_seconds:g} s is finer than the model's time resolution (one STFT frame, {min_hop:.4f} s).",
            hint=f"Use --hop {math.ceil(min_hop * 1e4) / 1e4:g} or more (default {DEFAULT_HOP_SECONDS:g}).",
        )
    hop = max(1, round(hop_seconds * rate))
    starts = window_starts(source.total, segment, hop)
    per_block = max(1, int(block_seconds * rate) // hop)  # windows read from one block of the file
    rows = []
    for b0 in range(0, len(starts), per_block):
        group = starts[b0 : b0 + per_block]
        block = source.read(group[0], group[-1] + segment)
        for j in range(0, len(group), batch_size):
            segs = np.stack([block[s - group[0] : s - group[0] + segment] for s in group[j : j + batch_size]])
            rows.append(embed_segments(separator, segs).presence)
        if progress is not None:
            progress(b0 + len(group), len(starts))
    start_s = np.array(starts, dtype=np.float64) / rate
    return PresenceTimeline(
        input=source.name,
        classes=list(separator.classes),
        starts=start_s,
        ends=np.minimum(start_s + segment / rate, source.seconds),
        probabilities=np.concatenate(rows).astype(np.float64),
        duration=source.seconds,
        window_seconds=segment / rate,
        hop_seconds=hop / rate,
        threshold=threshold,
        min_seconds=min_seconds,
        model={"name": separator.name, "sha256": separator.sha256},
    )


def detect_file(separator, path: str | os.PathLike, **settings) -> PresenceTimeline:
    """Presence timeline of an audio file, read in blocks (settings as :func:`detect`)."""
    return detect(separator, ResampledMono.from_file(path, separator.sample_rate), **settings)


def detect_array(separator, audio: np.ndarray, sample_rate: int, **settings) -> PresenceTimeline:
    """Presence timeline of an in-memory signal, (samples,) or (channels, samples) at ``sample_rate``."""
    from sgnsep.audio.resample import rate_problem

    problem = rate_problem(int(sample_rate), separator.sample_rate)
    if problem:
        raise UsageError(f"The audio cannot be analysed: {problem}.", hint="Resample it to e.g. 44100 Hz first.")
    return detect(separator, ResampledMono.from_array(audio, sample_rate, separator.sample_rate), **settings)
