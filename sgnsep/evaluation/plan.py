"""What one evaluation scores: the classes, the mixtures and what the report says about the data, decided before
any model runs. `sgnsep eval` is this, then :func:`sgnsep.evaluation.evaluate.evaluate`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sgnsep.audio import audio_io
from sgnsep.core.errors import UsageError
from sgnsep.evaluation import evaluate as ev

LAYOUTS = ("stems", "solos")


@dataclass
class EvaluationPlan:
    classes: list[str]  # the classes every model knows, in the first model's order
    left_out: list[str]  # classes of the first model that another model lacks (not evaluated)
    dataset: str  # "stems" or "solos"
    examples: Iterator[ev.Example]  # the mixtures, read one at a time
    total: int  # how many examples there will be (stems: tracks in the folder, some may be skipped)
    data_info: dict[str, Any] = field(default_factory=dict)  # the report's "data" section


def plan_evaluation(
    separators: Sequence[Any],
    data_dir: str | Path,
    *,
    dataset: str = "auto",
    sources: str | Sequence[str] | None = None,
    num_sources: int | None = None,
    segments: int = 100,
    seed: int = 0,
    split: str = "test",
) -> EvaluationPlan:
    """The classes, mixtures and data description of evaluating ``separators`` on ``data_dir``.

    ``dataset``: ``"stems"`` (``DIR/<track>/<class>.wav``; every track, or in a corpus of `sgnsep data music` the
    tracks of ``split``; ``num_sources`` keeps the tracks of exactly that many stems), ``"solos"``
    (``DIR/<class>/*.wav``: ``segments`` mixtures of ``num_sources`` (default 2) distinct classes drawn from
    ``seed``, from ``split``) or ``"auto"`` (solos if a subfolder is named after a class the models know).
    ``sources`` limits the evaluation to those classes, which every model must know. Several models are
    compared on the classes they all know (:func:`sgnsep.evaluation.evaluate.common_classes`).
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise UsageError(f"data_dir {data_dir} is not a folder.")
    if dataset not in ("auto", *LAYOUTS):
        raise UsageError(f"Unknown dataset '{dataset}'; use stems, solos or auto.")
    sep = separators[0]
    classes = ev.common_classes(separators) if len(separators) > 1 else sep.classes
    left_out = [c for c in sep.classes if c not in classes]
    wanted = sep.class_names(sources) if sources else None
    for other in separators[1:] if wanted else []:
        other.class_indices(wanted)  # each model must know every class asked for
    if dataset == "auto":
        folders = {p.name for p in audio_io.list_folder(data_dir) if p.is_dir()}
        dataset = "solos" if any(c in folders for c in classes) else "stems"
    info: dict[str, Any] = {"dir": str(data_dir), "dataset": dataset, "sample_rate": sep.sample_rate}
    if dataset == "stems":
        # Read track by track (not all at once): memory stays that of one track.
        examples = ev.stems_examples(data_dir, classes, sep.meta.audio, wanted, split=split, num_sources=num_sources)
        total = sum(p.is_dir() for p in audio_io.list_folder(data_dir))
        from sgnsep.datasets.folders import music_corpus_tracks

        if music_corpus_tracks(data_dir):
            info["split"] = split
        if num_sources is not None:
            info["num_sources"] = num_sources
    else:
        num_sources = 2 if num_sources is None else num_sources
        examples = ev.solos_examples(data_dir, classes, sep.meta.audio, num_sources=num_sources, segments=segments,
                                     seed=seed, split=split, sources=wanted)
        total = segments
        info.update(num_sources=num_sources, seed=seed, split=split, segment_samples=sep.meta.audio.segment_samples)
    return EvaluationPlan(list(classes), left_out, dataset, examples, total, info)
