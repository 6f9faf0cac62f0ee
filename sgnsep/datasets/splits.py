"""Which split (train, val, test) a file, track or video belongs to, by a stable hash of its name.

Two schemes, kept apart because the rendered corpora and the packaged test sets depend on them bit for bit:
:func:`rank_splits` (files of one class or tracks of a folder ordered by a SHA-1 of their relative path, the
first 10 % to test, the next 10 % to validation) and :func:`hash_fraction` (a video id to a number in [0, 1)
that a dataset's fractions cut).
"""

from __future__ import annotations

import hashlib


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
