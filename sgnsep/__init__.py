"""sgnsep: separate the instruments or sound classes you name, with the Semantic Grouping Network.

    >>> import sgnsep
    >>> result = sgnsep.separate_file("song.wav", "violin,cello", out_dir="stems")   # one stem per class
    >>> timeline = sgnsep.detect("song.wav")                                        # which classes play when
    >>> report = sgnsep.evaluate(["sgn-gm-small"], "my_stems/")                      # SDR/SIR/SAR/SI-SDR
    >>> stems = sgnsep.Separator("sgn-gm-small").separate(audio, 44100, ["violin"])  # arrays in and out

``Separator`` (the model, loaded once, for many files or arrays), :func:`separate_file`, :func:`detect`,
:func:`evaluate`, :func:`train` and :func:`load_model` are the public API; each takes a registered model name,
a checkpoint folder or a Hub id ``owner/name@revision``. Errors are :class:`SgnsepError` subclasses with a
message, a hint and the exit code the command line uses. The packages (``sgnsep.models``, ``.audio``,
``.separation``, ``.analysis``, ``.evaluation``, ``.datasets``, ``.synth``, ``.training``, ``.hub``, ``.cli``)
hold the rest; each package's docstring says what is in it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sgnsep._version import __version__
from sgnsep.core.errors import SgnsepError
from sgnsep.models.registry import DEFAULT_MODEL  # light: no torch

if TYPE_CHECKING:  # the real imports are in the functions: `import sgnsep` (and `sgnsep --help`) stays light
    from sgnsep.analysis.detection import PresenceTimeline
    from sgnsep.evaluation.evaluate import EvalReport
    from sgnsep.models.checkpoint import LoadedCheckpoint
    from sgnsep.separation.separation_job import JobResult
    from sgnsep.separation.separator import Separator
    from sgnsep.training.loop import TrainResult

__all__ = ["__version__", "SgnsepError", "Separator", "separate_file", "detect", "evaluate", "train", "load_model"]



def separate_file(
    path: str | os.PathLike,
    sources: str | Sequence[str],
    *,
    model: str | os.PathLike = DEFAULT_MODEL,
    out_dir: str | os.PathLike = "separated",
    residual: bool = False,
    masks: str = "shared",
    device: str = "auto",
    overwrite: bool = False,
) -> JobResult:
    """Separate one audio file into one stem per class of ``sources`` (names, a comma-separated string, or
    ``"auto"`` for the classes detected in it), written to ``out_dir`` as ``sgnsep separate`` writes them
    (with ``residual``: the rest of the mixture too, so that the stems add up to the input). Returns what was
    written, and with ``"auto"`` the detection timeline."""
    from sgnsep.separation.separation_job import SeparationJob, check_job, run_job
    from sgnsep.separation.separator import Separator

    sep = Separator(model, device=device, masks=masks)
    job = SeparationJob(sources, out_dir=out_dir, residual=residual, overwrite=overwrite)
    check_job(sep, job)
    return run_job(sep, path, job)


def detect(
    path: str | os.PathLike,
    *,
    model: str | os.PathLike = DEFAULT_MODEL,
    threshold: float | None = None,
    min_seconds: float | None = None,
    device: str = "auto",
) -> PresenceTimeline:
    """Which of the model's classes sound in an audio file, and when: presence probabilities per window and the
    classes found (``timeline.present``), as ``sgnsep detect`` reports them. ``threshold`` and ``min_seconds``
    default to the detector's own settings."""
    from sgnsep.analysis.detection import detect_file
    from sgnsep.separation.separator import Separator

    settings = {k: v for k, v in (("threshold", threshold), ("min_seconds", min_seconds)) if v is not None}
    return detect_file(Separator(model, device=device), path, **settings)


def evaluate(
    models: Sequence[str | os.PathLike],
    data_dir: str | os.PathLike,
    *,
    metrics: Sequence[str] = ("sdr", "sir", "sar", "si-sdr"),
    dataset: str = "auto",
    sources: str | Sequence[str] | None = None,
    num_sources: int | None = None,
    segments: int = 100,
    seed: int = 0,
    split: str = "test",
    masks: str = "shared",
    device: str = "auto",
) -> EvalReport:
    """Score one or several models on the same mixtures of a stems or solos folder, beside the mixture and the
    oracle masks, as ``sgnsep eval`` does (see :func:`sgnsep.evaluation.plan.plan_evaluation` for the layouts).
    ``report.summary()`` holds the means; ``report.records`` every source."""
    from sgnsep.evaluation.evaluate import evaluate as run_evaluation
    from sgnsep.evaluation.plan import plan_evaluation
    from sgnsep.separation.separator import Separator

    seps = [Separator(m, device=device, masks=masks) for m in models]
    plan = plan_evaluation(seps, data_dir, dataset=dataset, sources=sources, num_sources=num_sources,
                           segments=segments, seed=seed, split=split)
    return run_evaluation(seps, iter(plan.examples), metrics=list(metrics), data_info=plan.data_info)


def train(
    out_dir: str | os.PathLike,
    *,
    config: str | os.PathLike | None = None,
    overrides: Sequence[str] = (),
    resume: bool = False,
    overwrite: bool = False,
    device: str = "auto",
    max_steps: int | None = None,
) -> TrainResult:
    """Train a model into the run folder ``out_dir`` from a JSON config (default: the paper's recipe) and
    ``key=value`` overrides (e.g. ``"data_dir=my_solos"``, ``"model.embed_dim=64"``), as ``sgnsep train``
    does; ``resume`` continues a run where it stopped. The best checkpoint is ``out_dir/best``."""
    from sgnsep.separation.separator import resolve_device
    from sgnsep.training.config import TrainConfig, load_config_file, parse_overrides
    from sgnsep.training.loop import train as run_training

    cfg = TrainConfig() if config is None else load_config_file(config)
    cfg = parse_overrides(cfg, list(overrides))
    return run_training(cfg, out_dir, resume=resume, overwrite=overwrite, device=resolve_device(device),
                        max_steps=max_steps)


def load_model(model: str | os.PathLike = DEFAULT_MODEL) -> LoadedCheckpoint:
    """The network of a model (a ``torch.nn.Module`` in eval mode) with its metadata (classes, audio
    settings, training record) and folder: for research on the model itself. To separate, use Separator."""
    from sgnsep.models.checkpoint import load_checkpoint
    from sgnsep.models.registry import resolve_model

    return load_checkpoint(resolve_model(model))


def __getattr__(name: str) -> Any:
    # Lazy, so that `import sgnsep` (and the CLI's --help) does not pay for importing torch.
    if name == "Separator":
        from sgnsep.separation.separator import Separator

        return Separator
    raise AttributeError(name)
