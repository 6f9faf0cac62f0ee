"""Which split (train, val, test) a file, track, video or piece belongs to, by a stable hash of its name.

Reading a dataset: :func:`rank_splits` orders the files of one class (or the tracks of a folder) by a SHA-1
of their relative path and gives the first 10 % to test, the next 10 % to validation; :func:`hash_fraction`
maps a video id to a number in [0, 1) that a dataset's fractions cut. Rendering a corpus:
:func:`chorale_split` and :func:`piece_split` hash a chorale or a piece (SHA-256) against cumulative
fractions, so the split does not depend on the seed, and corpora made with different seeds and the same
fractions never share a piece across splits; :func:`split_counts` shares a class's clips out among the
splits. The two families stay apart because the rendered corpora and the packaged test sets depend on them
bit for bit.
"""

from __future__ import annotations

import hashlib
import math

from sgnsep.core.errors import UsageError


SPLITS = ("train", "val", "test")


def _hash(relpath: str) -> str:
    return hashlib.sha1(relpath.encode()).hexdigest()


def hash_fraction(key: str) -> float:
    """A stable number in [0, 1) for ``key`` (first 48 bits of its SHA-1): the basis of hash splits."""
    return int(_hash(key)[:12], 16) / float(1 << 48)


def rank_splits(relpaths: list[str], fractions=(0.8, 0.1, 0.1)) -> dict[str, str]:
    """Split one class's files: ordered by hash, test first, then validation, then training."""
    ordered = sorted(relpaths, key=_hash)
    n = len(ordered)
    if n < 3:
        return {p: "train" for p in ordered}
    n_test = max(1, round(fractions[2] * n))
    n_val = max(1, round(fractions[1] * n))
    return {
        p: "test" if i < n_test else "val" if i < n_test + n_val else "train" for i, p in enumerate(ordered)
    }


def resolve_splits(splits) -> dict[str, float]:
    if isinstance(splits, (tuple, list)):
        if len(splits) != 3:
            raise UsageError("splits must be three fractions (train, val, test) or a dict of them.")
        splits = dict(zip(SPLITS, splits, strict=True))
    unknown = set(splits) - set(SPLITS)
    if unknown:
        raise UsageError(f"Unknown split names {sorted(unknown)}; use {', '.join(SPLITS)}.")
    fr = {s: float(splits.get(s, 0.0)) for s in SPLITS}
    if any(v < 0 for v in fr.values()) or abs(sum(fr.values()) - 1.0) > 1e-6:
        raise UsageError(f"Split fractions must be non-negative and sum to 1, got {fr}.")
    return fr


def split_counts(n: int, fractions: dict[str, float]) -> dict[str, int]:
    """Largest-remainder rounding; every positive fraction gets at least one clip when n allows."""
    raw = {s: n * f for s, f in fractions.items()}
    counts = {s: int(math.floor(v)) for s, v in raw.items()}
    for s in sorted(SPLITS, key=lambda s: (-(raw[s] - counts[s]), SPLITS.index(s)))[: n - sum(counts.values())]:
        counts[s] += 1
    positive = [s for s in SPLITS if fractions[s] > 0]
    if n >= len(positive):
        for s in positive:
            if counts[s] == 0:
                donor = max(SPLITS, key=lambda d: counts[d])
                counts[donor] -= 1
                counts[s] += 1
    return counts


def unit_hash(text: str) -> float:
    """A stable number in [0, 1) for ``text`` (first 64 bits of its SHA-256)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2.0**64


def cumulative_split(u: float, fractions: dict[str, float]) -> str:
    """The split whose cumulative share of [0, 1) (train, then val, then test) holds ``u``."""
    acc = 0.0
    for s in SPLITS:
        acc += fractions[s]
        if u < acc:
            return s
    return [s for s in SPLITS if fractions[s] > 0][-1]


def chorale_split(chorale_id: str, fractions: dict[str, float]) -> str:
    """The split of a Bach chorale (music21's id, e.g. ``"bwv66.6"``)."""
    return cumulative_split(unit_hash("chorale:" + chorale_id), fractions)


def piece_split(key: str, fractions: dict[str, float]) -> str:
    """The split of a work key of :func:`sgnsep.synth.score_library.work_key`: a chorale as :func:`chorale_split`
    splits it, anything else by a hash of ``"piece:" + key`` against the same cumulative fractions."""
    if key.startswith("chorale:"):
        return chorale_split(key[len("chorale:") :], fractions)
    return cumulative_split(unit_hash("piece:" + key), fractions)


#: The split fractions of :func:`sgnsep.synth.solos.synthesize_corpus`'s default, which decide the split of
#: every chorale.
DEFAULT_SPLIT_FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}
