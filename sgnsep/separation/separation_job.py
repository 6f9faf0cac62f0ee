"""One input file through ``sgnsep separate``: which classes, the stems, and the optional remix and figure.

Steps, all or nothing for the file:

1. the classes: those named, or with ``sources="auto"`` those :mod:`sgnsep.analysis.detection` finds present (none
   present raises :class:`NothingDetectedError` before anything is written);
2. every output path (stems, residual, ``remix``, ``separation.png``) is checked first: an existing one is
   an error unless ``overwrite``, so no time is spent on a file whose outputs would be refused;
3. the stems (:meth:`Separator.separate_file`), then the remix (:mod:`sgnsep.separation.remix`) and the figure
   (:mod:`sgnsep.plots.plotting`). If a later step fails or is interrupted, the files this job wrote and the
   folders it created are removed again: never a remix without its stems or stems without the figure asked
   for.

The remix and the figure are named through the same ``--name`` template as the stems, with ``{source}`` set
to ``remix`` and ``separation`` (and ``{ext}`` to ``png`` for the figure): by default
``OUT/<model>/<track>/remix.wav`` and ``OUT/<model>/<track>/separation.png``, next to the stems.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from sgnsep.core.errors import OutputError, UsageError
from sgnsep.core.interrupts import uninterrupted
from sgnsep.separation.separator import DEFAULT_TEMPLATE, RESIDUAL, FileResult

AUTO = "auto"
FIGURE = "separation"


@dataclass
class SeparationJob:
    """What to do with each file (the options of ``sgnsep separate``)."""

    sources: str | Sequence[str]  # class names, or "auto"
    out_dir: str | os.PathLike = "separated"
    template: str = DEFAULT_TEMPLATE
    ext: str = "wav"
    bit_depth: int | str | None = None
    residual: bool = False
    overwrite: bool = False
    gains_db: dict[str, float] | None = None  # {class as written: dB}: write a remix
    plot: bool = False
    detection: dict = field(default_factory=dict)  # settings of detection.detect for "auto", e.g. threshold

    @property
    def auto(self) -> bool:
        return isinstance(self.sources, str) and self.sources.strip().lower() == AUTO


@dataclass
class JobResult:
    file: FileResult
    timeline: object | None = None  # detection.PresenceTimeline with sources="auto"
    remix: object | None = None  # remix.RemixResult with gains
    figure: str | None = None

    def to_json(self) -> dict:
        f = self.file
        out = {
            "input": f.input,
            "sources": f.sources,
            "outputs": f.outputs,
            "sample_rate": f.sample_rate,
            "channels": f.channels,
            "seconds": f.seconds,
            "elapsed": f.elapsed,
            "realtime_factor": f.realtime_factor,
        }
        if self.timeline is not None:
            t = self.timeline
            out["detection"] = {
                "present": t.present,
                "threshold": t.threshold,
                "min_seconds": t.min_seconds,
                "hop_seconds": t.hop_seconds,
                "window_seconds": round(t.window_seconds, 6),
                "probabilities": {
                    r["class"]: {"max": round(r["max"], 4), "mean": round(r["mean"], 4),
                                 "detected_seconds": r["detected_seconds"]}
                    for r in t.summary()
                },
            }
        if self.remix is not None:
            out["remix"] = self.remix.to_json()
        if self.figure is not None:
            out["figure"] = self.figure
        return out


def check_job(separator, job: SeparationJob) -> None:
    """Everything about the job that can be checked before touching a file (classes, gains, settings)."""
    names = None
    if job.auto:
        from sgnsep.analysis import detection

        detection.check_settings(**{
            "hop_seconds": detection.DEFAULT_HOP_SECONDS, "threshold": detection.DEFAULT_THRESHOLD,
            "min_seconds": detection.DEFAULT_MIN_SECONDS, **job.detection,
        })
    else:
        names = separator.class_names(job.sources)
        if job.detection:
            raise UsageError(
                f"{', '.join('--' + k.replace('_', '-') for k in job.detection)} only apply with --sources auto.",
                hint="Drop them, or pass --sources auto.",
            )
    if job.gains_db:
        if names is None:
            separator.class_names(list(job.gains_db))  # unknown classes fail now, not after detection
        else:
            _gain_classes(separator, job.gains_db, names, None)
    if job.plot:
        from sgnsep.plots.plotting import require_matplotlib

        require_matplotlib()


def _gain_classes(separator, gains_db: dict[str, float], names: list[str], input_name: str | None) -> dict[str, float]:
    """Gains keyed by the model's class names; each must be one of the classes being separated."""
    canonical = dict(zip(separator.class_names(list(gains_db)), gains_db.values()))
    stray = [c for c in canonical if c not in names]
    if stray:
        if input_name is None:
            raise UsageError(
                f"--gain names {', '.join(stray)}, which is not among the --sources ({', '.join(names)}).",
                hint="Give gains only to classes you separate, or add them to --sources.",
            )
        raise UsageError(
            f"{input_name}: --gain names {', '.join(stray)}, which was not detected (detected: {', '.join(names)}).",
            hint="Drop it from --gain, or name the classes with --sources instead of auto.",
        )
    return canonical


def distinct_outputs(separator, files: list[Path], job: SeparationJob) -> list[Path]:
    """The files of one ``separate`` call, each once, checked to write disjoint outputs.

    The same file named twice (or through a folder and by name) is separated once. Two different inputs
    whose outputs the --name template maps to the same paths (``a/song.wav`` and ``b/song.wav``, or
    ``song.wav`` and ``song.flac``, with the default template) are an error before any work: otherwise the
    second would fail on the first's outputs, or with ``--overwrite`` silently replace them.
    """
    unique: dict[Path, Path] = {}
    for f in files:
        unique.setdefault(Path(f).resolve(), Path(f))
    names = list(separator.classes) if job.auto else separator.class_names(job.sources)
    names += [RESIDUAL] if job.residual else []
    if job.gains_db:
        from sgnsep.separation.remix import REMIX

        names.append(REMIX)
    ext = job.ext.lower().lstrip(".")
    owner: dict[Path, Path] = {}
    for f in unique.values():
        outputs = list(separator.output_paths(f, names, Path(job.out_dir), job.template, ext).values())
        if job.plot:
            outputs += separator.output_paths(f, [FIGURE], Path(job.out_dir), job.template, "png").values()
        for out in outputs:
            key = out.resolve()
            if key in owner:
                hint = (
                    "Add {parent} to --name to tell them apart (e.g. --name '{model}/{parent}/{track}/{source}.{ext}'), "
                    "or separate them in separate runs with different --out folders."
                    if "{parent}" not in job.template
                    else "Separate them in separate runs with different --out folders."
                )
                raise UsageError(
                    f"{owner[key]} and {f} would both be written to {out} (the --name template "
                    f"'{job.template}' gives them the same outputs).",
                    hint=hint,
                )
            owner[key] = f
    return list(unique.values())


def run_job(
    separator,
    path: str | os.PathLike,
    job: SeparationJob,
    progress: Callable[[int, int], None] | None = None,
) -> JobResult:
    """Separate one file as ``job`` says (see the module docstring)."""
    started = time.perf_counter()
    path = Path(path)
    timeline = None
    if job.auto:
        from sgnsep.analysis import detection

        timeline = detection.detect_file(separator, path, **job.detection)
        names = timeline.require_present()
    else:
        names = separator.class_names(job.sources)
    gains = _gain_classes(separator, job.gains_db, names, str(path) if job.auto else None) if job.gains_db else None

    ext = job.ext.lower().lstrip(".")
    out_dir = Path(job.out_dir)
    stems = separator.output_paths(path, names + ([RESIDUAL] if job.residual else []), out_dir, job.template, ext)
    extras: dict[str, Path] = {}
    if gains is not None:
        from sgnsep.separation.remix import REMIX

        extras.update(separator.output_paths(path, [REMIX], out_dir, job.template, ext))
    if job.plot:
        extras.update(separator.output_paths(path, [FIGURE], out_dir, job.template, "png"))
    clash = [str(p) for p in extras.values() if p in set(stems.values())]
    if clash:
        raise UsageError(
            f"{path}: the --name template '{job.template}' gives a stem and the remix or figure the same file "
            f"({clash[0]}).", hint="Use {source} in --name.",
        )
    existing = [str(p) for p in extras.values() if p.exists()]
    if existing and not job.overwrite:
        raise OutputError(
            f"{path}: {len(existing)} output(s) already exist, e.g. {existing[0]}.",
            hint="Pass --overwrite to replace them, or choose another --out.",
        )
    # Folders this job creates, removed again if it fails after the stems are written.
    new_folders = {
        d for p in [*stems.values(), *extras.values()] for d in (p.parent, *p.parent.parents) if not d.exists()
    }

    result = separator.separate_file(
        path, names, out_dir=out_dir, template=job.template, ext=ext, bit_depth=job.bit_depth,
        residual=job.residual, overwrite=job.overwrite, progress=progress,
    )
    written: list[Path] = []
    try:
        remix = figure = None
        if gains is not None:
            from sgnsep.separation.remix import REMIX, write_remix

            target = extras[REMIX]
            remix = write_remix(path, {n: result.outputs[n] for n in names}, gains, target, ext=ext,
                                bit_depth=job.bit_depth)
            written.append(target)  # only once complete: a failed write leaves nothing of ours there
            result.outputs[REMIX] = str(target)
        if job.plot:
            from sgnsep.plots.plotting import separation_figure

            target = extras[FIGURE]
            figure = str(separation_figure(path, {n: result.outputs[n] for n in names}, target, separator.meta.audio,
                                           title=f"{path.name} ({separator.name})"))
            written.append(target)
            result.outputs[FIGURE] = figure
    except BaseException:
        # All or nothing for this file: the stems go too (they were written by this call).
        with uninterrupted():  # not stopped half-way by a signal
            for p in {*written, *(Path(result.outputs[n]) for n in stems)}:
                try:
                    p.unlink(missing_ok=True)
                except OSError:  # cleaning up must not hide why the job failed
                    pass
            for folder in sorted(new_folders, key=lambda d: len(d.parts), reverse=True):
                try:
                    folder.rmdir()  # only if left empty
                except OSError:
                    pass
        raise
    result.elapsed = time.perf_counter() - started  # detection, remix and figure included
    return JobResult(result, timeline, remix, figure)


def batch_manifest(
    sep, job: SeparationJob, files: Sequence[dict], failures: Sequence[tuple[Path, Exception]]
) -> dict:
    """What `sgnsep separate --json` prints for a batch: the sgnsep version, the model (name, spec, folder,
    weights' sha256, masks), the classes asked for ("auto" or the names as given), the device, one entry per
    separated file (:meth:`JobResult.to_json`) and one per failed file (input, error, exit code)."""
    from sgnsep._version import __version__

    return {
        "sgnsep_version": __version__,
        "model": {"name": sep.name, "spec": sep.model_spec, "folder": str(sep.folder), "sha256": sep.sha256,
                  "masks": sep.masks},
        "classes": AUTO if job.auto else ([c.strip() for c in job.sources.split(",")] if isinstance(job.sources, str)
                                          else list(job.sources)),
        "device": str(sep.device),
        "files": list(files),
        "failures": [{"input": str(p), "error": str(e), "exit_code": e.exit_code} for p, e in failures],
    }
