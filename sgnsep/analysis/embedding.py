"""Class embeddings over a folder of clips: do the model's classes form separate groups? (paper figure 3)

For a clip of class k the point is the model's embedding ``g_k`` (eq. 6: class token k after the transformer
and the category-aware grouping over the clip's patches), averaged over up to ``windows_per_clip`` segments
spread evenly over the clip: one D-dimensional point per clip. The points are drawn in 2-D by PCA (numpy,
the default) or t-SNE (scikit-learn, the ``embed`` extra).

How well the classes are separated is also measured in the full D dimensions, where the projection cannot
mislead: the leave-one-out nearest-centroid accuracy of each class (a clip counts as right when it is closer
to its class's centroid, computed without it, than to any other class's centroid).

Layouts: solos ``DIR/<class>/**/*.wav`` (as ``sgnsep data synth`` writes) or stems ``DIR/<track>/<class>.wav``
(as the packaged test sets); ``auto`` picks solos when a subfolder is named after one of the model's classes.
Folders or stems of classes the model does not know are skipped and reported.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from sgnsep.audio import audio_io
from sgnsep.analysis.detection import embed_segments
from sgnsep.core.errors import InputAudioError, UsageError
from sgnsep.audio.resampled_mono import ResampledMono

log = logging.getLogger(__name__)

METHODS = ("pca", "tsne")
LAYOUTS = ("auto", "solos", "stems")
TSNE_INSTALL_HINT = "pip install 'sgnsep[embed]'"


@dataclass
class LabelledClip:
    """An audio file and the model class its folder or stem name says it holds."""

    label: str  # the model's class name
    path: Path


@dataclass
class ClipSearch:
    clips: list[LabelledClip]
    layout: str
    skipped: list[str] = field(default_factory=list)  # names of folders/stems of classes the model lacks


def find_clips(
    root: Path,
    model_classes: Sequence[str],
    *,
    layout: str = "auto",
    max_per_class: int | None = None,
) -> ClipSearch:
    """The labelled clips under ``root`` (see the module docstring for the layouts), sorted by class and path.

    ``max_per_class`` keeps the first clips of each class (in path order).
    """
    root = Path(root)
    if not root.is_dir():
        raise UsageError(f"{root} is not a folder.", hint="Pass a folder of clips, DIR/<class>/*.wav.")
    if layout not in LAYOUTS:
        raise UsageError(f"Unknown --layout '{layout}'; use {', '.join(LAYOUTS)}.")
    known = {c.lower(): c for c in model_classes}
    folders = [p for p in audio_io.list_folder(root) if p.is_dir()]
    if layout == "auto":
        layout = "solos" if any(p.name.lower() in known for p in folders) else "stems"
    by_class: dict[str, list[Path]] = {}
    skipped: set[str] = set()
    for folder in folders:
        if layout == "solos":
            if folder.name.lower() not in known:
                skipped.add(folder.name)
                continue
            files = [p for p in audio_io.walk_files(folder) if p.suffix.lower() in audio_io.AUDIO_EXTENSIONS]
            by_class.setdefault(known[folder.name.lower()], []).extend(files)
        else:
            for p in audio_io.list_folder(folder):
                if not (p.is_file() and p.suffix.lower() in audio_io.AUDIO_EXTENSIONS) or p.stem.lower() == "mixture":
                    continue
                if p.stem.lower() in known:
                    by_class.setdefault(known[p.stem.lower()], []).append(p)
                else:
                    skipped.add(p.stem)
    clips = [
        LabelledClip(label, path)
        for label in sorted(by_class)
        for path in by_class[label][: max_per_class if max_per_class else None]
    ]
    if not clips:
        shape = "DIR/<class>/*.wav" if layout == "solos" else "DIR/<track>/<class>.wav"
        raise UsageError(
            f"{root}: no clips of the model's classes found ({layout} layout, {shape}).",
            hint=f"Name folders (or stems) after the model's classes: {', '.join(model_classes)}.",
        )
    return ClipSearch(clips, layout, sorted(skipped))


def _window_starts(total: int, segment: int, count: int) -> list[int]:
    if total <= segment:
        return [0]
    return sorted({int(round(s)) for s in np.linspace(0, total - segment, max(1, count))})


def clip_embeddings(
    separator,
    clips: Sequence[LabelledClip],
    *,
    windows_per_clip: int = 4,
    batch_size: int = 16,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[LabelledClip], np.ndarray]:
    """(clips kept, embeddings (N, D)): g of each clip's own class, averaged over its windows.

    Unreadable clips are skipped with a logged warning; if none is left that is an error.
    """
    if windows_per_clip < 1:
        raise UsageError(f"--windows-per-clip must be at least 1, got {windows_per_clip}.")
    audio = separator.meta.audio
    segment = audio.segment_samples
    index = {c: i for i, c in enumerate(separator.classes)}
    kept, vectors = [], []
    for n, clip in enumerate(clips, 1):
        try:
            source = ResampledMono.from_file(clip.path, audio.sample_rate)
            windows = [source.read(s, s + segment) for s in _window_starts(source.total, segment, windows_per_clip)]
        except InputAudioError as exc:
            log.warning("skipped %s", exc)
            continue
        g = np.concatenate([
            embed_segments(separator, np.stack(windows[j : j + batch_size])).embeddings
            for j in range(0, len(windows), batch_size)
        ])  # (windows, C, D)
        vectors.append(g[:, index[clip.label]].mean(axis=0))
        kept.append(clip)
        if progress is not None:
            progress(n, len(clips))
    if not kept:
        raise InputAudioError("None of the clips could be read.", hint="Check the files (wav, flac, ogg, mp3).")
    return kept, np.stack(vectors)


def require_sklearn() -> None:
    """t-SNE comes from scikit-learn, an optional extra; explain how to install it if it is missing."""
    try:
        import sklearn.manifold  # noqa: F401
    except ImportError:
        raise UsageError(
            "--method tsne needs scikit-learn, which is not installed.",
            hint=f"Install it with: {TSNE_INSTALL_HINT} (or use --method pca, which needs nothing more).",
        ) from None


def project(vectors: np.ndarray, method: str = "pca", *, seed: int = 0) -> np.ndarray:
    """(N, D) -> (N, 2) by PCA (numpy SVD) or t-SNE (scikit-learn)."""
    if method not in METHODS:
        raise UsageError(f"Unknown --method '{method}'; use {' or '.join(METHODS)}.")
    x = np.asarray(vectors, dtype=np.float64)
    if method == "tsne":
        require_sklearn()
        from sklearn.manifold import TSNE

        if len(x) < 4:
            raise UsageError(f"t-SNE needs at least 4 clips; found {len(x)}.", hint="Use --method pca or add clips.")
        perplexity = float(min(30.0, (len(x) - 1) / 3))
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
    centred = x - x.mean(axis=0)
    if len(x) < 2:
        return np.zeros((len(x), 2))
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    points = centred @ vt[:2].T
    # Sign of each component fixed (largest loading positive) so the picture does not flip between runs.
    signs = np.sign(vt[:2][np.arange(len(vt[:2])), np.abs(vt[:2]).argmax(axis=1)])
    points = points * np.where(signs == 0, 1.0, signs)
    if points.shape[1] < 2:
        points = np.pad(points, ((0, 0), (0, 2 - points.shape[1])))
    return points


def axis_labels(vectors: np.ndarray, method: str) -> tuple[str, str]:
    """Axis names of the picture; for PCA with the share of the variance each component holds."""
    if method != "pca" or len(vectors) < 2:
        return ("t-SNE 1", "t-SNE 2") if method == "tsne" else ("component 1", "component 2")
    centred = np.asarray(vectors, dtype=np.float64) - np.mean(vectors, axis=0)
    power = np.linalg.svd(centred, compute_uv=False) ** 2
    share = power / max(float(power.sum()), 1e-30)
    return tuple(f"PC {i + 1} ({share[i]:.0%} of the variance)" if i < len(share) else f"PC {i + 1}" for i in range(2))


def nearest_centroid_accuracy(vectors: np.ndarray, labels: Sequence[str]) -> dict[str, float | None]:
    """Leave-one-out nearest-centroid accuracy per class (None for a class with a single clip)."""
    labels = np.asarray(labels)
    names = sorted(set(labels.tolist()))
    sums = {c: vectors[labels == c].sum(axis=0) for c in names}
    counts = {c: int((labels == c).sum()) for c in names}
    out: dict[str, float | None] = {}
    for c in names:
        if counts[c] < 2:
            out[c] = None
            continue
        right = 0
        for v in vectors[labels == c]:
            dists = {}
            for other in names:
                if other == c:
                    centroid = (sums[c] - v) / (counts[c] - 1)
                else:
                    centroid = sums[other] / counts[other]
                dists[other] = float(np.sum((v - centroid) ** 2))
            right += min(dists, key=dists.get) == c
        out[c] = right / counts[c]
    return out


@dataclass
class EmbeddingMap:
    """Embeddings of a folder of clips and their 2-D projection."""

    clips: list[LabelledClip]
    vectors: np.ndarray  # (N, D)
    points: np.ndarray  # (N, 2)
    method: str
    layout: str
    accuracy: dict[str, float | None]
    skipped: list[str] = field(default_factory=list)

    @property
    def labels(self) -> list[str]:
        return [c.label for c in self.clips]

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["path", "class", "x", "y"])
        for clip, (x, y) in zip(self.clips, self.points):
            w.writerow([str(clip.path), clip.label, f"{x:.6g}", f"{y:.6g}"])
        return buf.getvalue()


def embedding_map(
    separator,
    root: Path,
    *,
    method: str = "pca",
    layout: str = "auto",
    windows_per_clip: int = 4,
    max_per_class: int | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> EmbeddingMap:
    """Find the clips under ``root``, embed them and project them (see the module docstring)."""
    if method not in METHODS:
        raise UsageError(f"Unknown --method '{method}'; use {' or '.join(METHODS)}.")
    if method == "tsne":
        require_sklearn()  # before minutes of embedding, not after
    found = find_clips(root, separator.classes, layout=layout, max_per_class=max_per_class)
    clips, vectors = clip_embeddings(separator, found.clips, windows_per_clip=windows_per_clip, progress=progress)
    points = project(vectors, method, seed=seed)
    labels = [c.label for c in clips]
    return EmbeddingMap(clips, vectors, points, method, found.layout, nearest_centroid_accuracy(vectors, labels),
                        found.skipped)
