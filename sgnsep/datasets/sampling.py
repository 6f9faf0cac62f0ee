"""Mix-and-separate examples drawn from a dataset: N distinct classes, one clip and one random window
each (solos), or N stems of one track (stems), with the levels and hard pairs of
:mod:`sgnsep.datasets.mixture_draws`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sgnsep.datasets import mixture_draws
from sgnsep.core.errors import SgnsepError, UsageError
from sgnsep.datasets.clips import ClipDataset


def sample_mixture(
    dataset: ClipDataset,
    num_sources: int,
    samples: int,
    rng: np.random.Generator,
    *,
    min_rms: float = 1e-3,
    coherent: float = 0.0,
    level_range_db: float = 0.0,
    hard_pairs: float = 0.0,
    hard_pair_classes: Sequence[str] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """N distinct classes, one random clip and offset each -> (sources (N, samples), classes (N,)).

    With probability ``coherent`` the N sources are instead N stems of one track (:attr:`ClipDataset.tracks`)
    at one shared offset: music whose parts share harmony and rhythm, which random pairs of solos never do
    (their harmonics rarely collide). Falls back to independent draws when no track has N stems.

    ``level_range_db`` > 0 gives the sources relative levels up to that many dB apart from the first one's
    (sgnsep.datasets.mixture_draws.relative_gains; the sources returned carry their gains). ``hard_pairs`` is the
    probability that a mixture of two or more holds a hard pair: two classes of ``hard_pair_classes``
    (``"a/b"`` strings; empty: sgnsep.datasets.mixture_draws.DEFAULT_HARD_PAIRS) or, for coherent draws, two stems in
    the same register. With both at 0 nothing more is drawn from ``rng`` (the mixtures of earlier versions).

    A window that is (nearly) silent is redrawn a few times, since a silent source makes an empty target.
    Only the window is read (from memory for cached clips, with a seek for lazy ones). The draws depend on
    ``rng`` alone: the same generator state gives the same mixture. Classes without clips in this split are
    never drawn. A read that fails (a file damaged after the dataset was opened) counts as a silent window and
    is recorded in ``dataset.read_errors``.
    """
    k = len(dataset.classes)
    available = [c for c in range(k) if dataset.by_class.get(c)]
    if num_sources > len(available):
        if len(available) == k:
            raise UsageError(f"Cannot mix {num_sources} distinct classes from {k}.")
        raise UsageError(
            f"Cannot mix {num_sources} distinct classes: only {len(available)} of the {k} classes have clips"
            f" in this split.",
            hint="Lower the number of sources or add recordings of more classes.",
        )
    pairs = mixture_draws.parse_pairs(hard_pair_classes) if hard_pairs > 0 else ()
    if coherent > 0 and rng.random() < coherent:
        hard = bool(pairs) and num_sources >= 2 and rng.random() < hard_pairs
        mixed = _sample_track(dataset, num_sources, samples, rng, min_rms, pairs=pairs if hard else None)
        if mixed is not None:
            return _with_levels(mixed, level_range_db, rng)
    classes = None
    if pairs and num_sources >= 2 and rng.random() < hard_pairs:
        classes = mixture_draws.hard_classes(available, dataset.classes, pairs, num_sources, rng)
    if classes is None:
        if len(available) == k:
            classes = rng.choice(k, size=num_sources, replace=False)
        else:
            classes = np.asarray(available)[rng.choice(len(available), size=num_sources, replace=False)]
    sources = np.zeros((num_sources, samples), dtype=np.float32)
    errors = getattr(dataset, "read_errors", None)
    for i, c in enumerate(classes):
        pool = dataset.by_class[int(c)]
        window = np.zeros(samples, dtype=np.float32)
        for _ in range(8):
            clip = pool[rng.integers(len(pool))]
            length = len(clip)
            start = int(rng.integers(length - samples + 1)) if length >= samples else 0
            try:
                window = clip.read(start, start + samples)
            except SgnsepError as exc:
                if errors is not None:
                    errors[str(clip.path)] = exc.message
                window = np.zeros(samples, dtype=np.float32)
                continue
            if len(window) < samples:
                window = np.pad(window, (0, samples - len(window)))
            if np.sqrt(np.mean(window**2)) >= min_rms:
                break
        sources[i] = window
    return _with_levels((sources, classes.astype(np.int64)), level_range_db, rng)


def _with_levels(mixed: tuple[np.ndarray, np.ndarray], level_range_db: float, rng: np.random.Generator):
    if level_range_db <= 0:
        return mixed
    sources, classes = mixed
    return sources * mixture_draws.relative_gains(len(sources), level_range_db, rng)[:, None], classes


def _sample_track(
    dataset: ClipDataset, num_sources: int, samples: int, rng: np.random.Generator, min_rms: float,
    pairs: Sequence[tuple[str, str]] | None = None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """N stems of one random track at one offset (redrawn a few times while a stem is silent there); with
    ``pairs``, of a track holding a hard pair or two stems in one register, that pair among the N."""
    tracks = [t for t in dataset.tracks if len(t) >= num_sources]
    if not tracks:
        return None
    hard = []
    if pairs:
        memo = dataset.__dict__.setdefault("_hard_tracks", {})
        key = (num_sources, tuple(pairs))
        if key not in memo:
            memo[key] = [(t, c) for t in tracks
                         if (c := mixture_draws.hard_pairs_in(t, dataset.classes, pairs, dataset.registers))]
        hard = memo[key]
    errors = getattr(dataset, "read_errors", None)
    for _ in range(8):
        if hard:
            track, candidates = hard[rng.integers(len(hard))]
            picked = mixture_draws.pick_with_pair(track, candidates[int(rng.integers(len(candidates)))],
                                                  num_sources, rng)
        else:
            track = tracks[rng.integers(len(tracks))]
            picked = [track[int(i)] for i in rng.choice(len(track), size=num_sources, replace=False)]
        length = min(len(c) for c in picked)
        start = int(rng.integers(length - samples + 1)) if length >= samples else 0
        sources = np.zeros((num_sources, samples), dtype=np.float32)
        try:
            for i, clip in enumerate(picked):
                window = clip.read(start, start + samples)
                sources[i, : len(window)] = window[:samples]
        except SgnsepError as exc:
            if errors is not None:
                errors[str(clip.path)] = exc.message
            continue
        if np.sqrt(np.mean(sources**2, axis=1)).min() >= min_rms:
            return sources, np.array([c.cls for c in picked], dtype=np.int64)
    return None
