"""`sgnsep eval`: the paper's evaluation protocol, on datasets and on any folder of stems.

Everything is evaluated at the model's sample rate on mono signals, as the paper does (section IV-A:
mir_eval's BSS Eval v3 on the 11025 Hz waveforms, no permutation since each estimate belongs to its class,
plus SI-SDR). Each result is read between a floor and a ceiling computed on the same mixtures:

- ``mixture``: the unprocessed mixture used as every estimate (SDRi is measured against it);
- ``oracle-ibm``: the ideal binary mask of SGN's own training target, ``|S_i| > 0.5 |X|`` (section III-C),
  on the model's STFT with the mixture phase: the best a perfect SGN could do;
- ``oracle-irm``: the ideal ratio mask ``|S_i| / sum_j |S_j|`` on the same STFT.

Silent references or estimates are reported as PES/EPS (Conditioned U-Net paper) and left out of the means.

Several models (``evaluate([sep_a, sep_b], ...)``, `sgnsep eval --model A --model B`) are scored on the
same mixtures in one run, with the baselines computed once; each model is then a method named after it.
They must work at the same sample rate, and are evaluated on the classes all of them know
(:func:`common_classes`).
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

from sgnsep.audio import audio_io, frontend, resample
from sgnsep.core.atomic_write import write_text_atomic
from sgnsep.models.config import AudioConfig
from sgnsep.core.errors import InputAudioError, UsageError
from sgnsep.evaluation.metrics import evaluate_sources

METRICS = ("sdr", "sir", "sar", "si-sdr")
BASELINES = ("mixture", "oracle-ibm", "oracle-irm")


#: The test sets that ship with the package (`sgnsep eval` scores chorales-2src when no --data-dir is given).
PACKAGED_TESTSETS = Path(__file__).parent.parent / "data" / "testset"

@dataclass
class Example:
    """One mixture to evaluate: mono references at the model rate, in the order of ``classes``."""

    track: str
    classes: list[str]
    references: np.ndarray  # (N, S)
    mixture: np.ndarray  # (S,)


def _to_model_rate(data: np.ndarray, rate: int, target: int) -> np.ndarray:
    mono = torch.from_numpy(np.ascontiguousarray(data.mean(axis=0, keepdims=True), dtype=np.float32))
    return resample.resample(mono, rate, target)[0].numpy()


def _load_at_model_rate(path: Path, target: int) -> np.ndarray:

    data, rate = audio_io.read_audio(path)
    problem = resample.rate_problem(rate, target)
    if problem:
        raise InputAudioError(f"{path}: {problem}.", hint="Resample it to a usual rate (e.g. 44100 Hz) first.")
    return _to_model_rate(data, rate, target)


def stems_examples(
    root: Path,
    model_classes: Sequence[str],
    audio: AudioConfig,
    sources: Sequence[str] | None = None,
    *,
    split: str | None = None,
    num_sources: int | None = None,
) -> Iterator[Example]:
    """Folder of stems: ``root/<track>/<class>.<ext>`` and optionally ``root/<track>/mixture.<ext>``.

    Stems of classes the model does not know are skipped (they still belong to the mixture if it is given;
    otherwise the mixture is the sum of every stem in the folder). ``split``: in a corpus written by `sgnsep
    data music` (its metadata.json gives each track's split), only the tracks of that split; other folders
    have no splits and every track is used. ``num_sources``: only the tracks of exactly that many stems, all
    of them evaluated (so the mixture holds nothing else).
    """
    from sgnsep.datasets.folders import music_corpus_tracks
    from sgnsep.datasets.splits import SPLITS

    tracks = [p for p in audio_io.list_folder(root) if p.is_dir()]
    if not tracks:
        raise UsageError(f"{root}: no track folders found.", hint="The stems layout is DIR/<track>/<class>.wav.")
    if split is not None and split not in SPLITS:
        raise UsageError(f"Unknown split '{split}'; use one of {', '.join(SPLITS)}.")
    if num_sources is not None and num_sources < 1:
        raise UsageError(f"num_sources must be at least 1, got {num_sources}.")
    corpus = music_corpus_tracks(root) if split is not None else {}
    if corpus:
        tracks = [t for t in tracks if corpus.get(t.name, {}).get("split") == split]
    known = {c.lower(): c for c in model_classes}
    wanted = {s.lower() for s in sources} if sources else None
    for track in tracks:
        files = {p.stem.lower(): p for p in audio_io.list_folder(track) if p.suffix.lower() in audio_io.AUDIO_EXTENSIONS}
        mixture_path = files.pop("mixture", None)
        if not files:
            continue
        if num_sources is not None and (
            len(files) != num_sources or any(k not in known or (wanted is not None and k not in wanted) for k in files)
        ):
            continue
        loaded = {}
        for name, path in files.items():
            loaded[name] = _load_at_model_rate(path, audio.sample_rate)
        lengths = {len(v) for v in loaded.values()}
        if mixture_path is not None:
            mixture = _load_at_model_rate(mixture_path, audio.sample_rate)
            lengths.add(len(mixture))
        if max(lengths) - min(lengths) > 2:  # resampling rounding may differ by a sample
            raise InputAudioError(
                f"{track}: the stems (and mixture) have different lengths.",
                hint="Every file of a track must cover the same time span.",
            )
        n = min(lengths)
        if n < audio.n_fft:  # the STFTs of the oracle masks need a few windows of signal
            raise InputAudioError(
                f"{track}: the stems are too short to evaluate ({n} samples at {audio.sample_rate} Hz; "
                f"at least {audio.n_fft} are needed).",
                hint="Use excerpts of a second or more.",
            )
        loaded = {k: v[:n] for k, v in loaded.items()}
        mixture = mixture[:n] if mixture_path is not None else sum(loaded.values())
        names = [k for k in loaded if k in known and (wanted is None or k in wanted)]
        if not names:
            continue
        yield Example(track.name, [known[k] for k in names], np.stack([loaded[k] for k in names]), mixture)


def solos_examples(
    root: Path,
    model_classes: Sequence[str],
    audio: AudioConfig,
    *,
    num_sources: int = 2,
    segments: int = 100,
    seed: int = 0,
    split: str = "test",
    sources: Sequence[str] | None = None,
) -> Iterator[Example]:
    """Solo recordings ``root/<class>/*.wav`` mixed as in the paper: N distinct classes, each scaled by 1/N,
    65535-sample segments, drawn deterministically from ``seed``."""
    from sgnsep.datasets.folders import SolosDataset
    from sgnsep.datasets.sampling import sample_mixture

    folders = {p.name for p in audio_io.list_folder(root) if p.is_dir()}
    classes = [c for c in model_classes if c in folders and (not sources or c in sources)]
    if len(classes) < num_sources:
        raise UsageError(
            f"{root}: only {len(classes)} of the model's classes have folders here; need {num_sources}.",
            hint=f"The model's classes: {', '.join(model_classes)}.",
        )
    dataset = SolosDataset(root, split=split, sample_rate=audio.sample_rate, min_samples=audio.segment_samples, classes=classes)
    rng = np.random.default_rng(seed)
    for i in range(segments):
        refs, idx = sample_mixture(dataset, num_sources, audio.segment_samples, rng)
        refs = refs / num_sources
        yield Example(f"mix{i:04d}", [dataset.classes[j] for j in idx], refs, refs.sum(axis=0))


def oracle_estimates(example: Example, audio: AudioConfig, kind: str) -> np.ndarray:
    refs = torch.from_numpy(example.references).double()
    mix = torch.from_numpy(example.mixture).double()
    spec_mix = frontend.stft(mix, audio)
    mags = frontend.stft(refs, audio).abs()
    if kind == "oracle-ibm":
        masks = (mags > 0.5 * spec_mix.abs()).double()
    else:
        masks = mags / mags.sum(dim=0, keepdim=True).clamp_min(1e-12)
    return frontend.istft(masks * spec_mix, audio, length=mix.shape[-1]).float().numpy()


@dataclass
class EvalReport:
    model: dict[str, Any]
    data: dict[str, Any]
    metrics: list[str]
    methods: list[str]
    records: list[dict[str, Any]] = field(default_factory=list)  # one per (track, class, method)
    seconds: float = 0.0
    # Every model evaluated, with the method name its records carry ("model" when there is one; ``model``
    # above is then that model, and with several it is the first).
    models: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
        """{method: {class or "overall": {metric: {mean, median, std, n}}}}, plus sdri for the model."""
        out: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
        for method in self.methods:
            rows = [r for r in self.records if r["method"] == method and r["status"] == "ok"]
            groups = {"overall": rows}
            for cls in sorted({r["class"] for r in rows}):
                groups[cls] = [r for r in rows if r["class"] == cls]
            out[method] = {}
            keys = list(self.metrics) + (["sdri"] if any("sdri" in r for r in rows) else [])
            for name, group in groups.items():
                stats = {}
                for m in keys:
                    vals = np.array([r[m] for r in group if r.get(m) is not None], dtype=np.float64)
                    if vals.size:
                        stats[m] = {
                            "mean": float(vals.mean()),
                            "median": float(np.median(vals)),
                            "std": float(vals.std()),
                            "n": int(vals.size),
                        }
                out[method][name] = stats
            silent = [r for r in self.records if r["method"] == method and r["status"] != "ok"]
            if silent:
                out[method]["silent"] = {
                    s: {"n": sum(r["status"] == s for r in silent)} for s in sorted({r["status"] for r in silent})
                }
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model, "data": self.data, "metrics": self.metrics, "methods": self.methods,
            "summary": self.summary(), "records": self.records, "seconds": self.seconds, "models": self.models,
        }


def model_labels(separators: Sequence[Any]) -> list[str]:
    """The method name of each model in a report: "model" when there is one (the report's historical
    schema), else each model's name, made unique (its --model spec where names repeat, then #2, #3, ...)."""
    if len(separators) == 1:
        return ["model"]
    names = [s.name for s in separators]
    labels: list[str] = []
    for sep, name in zip(separators, names):
        base = name if names.count(name) == 1 else sep.model_spec
        label, k = base, 2
        while label in labels or label in BASELINES or label == "model":
            label, k = f"{base}#{k}", k + 1
        labels.append(label)
    return labels


def common_classes(separators: Sequence[Any]) -> list[str]:
    """The classes every model knows, in the first model's order and spelling.

    Models are compared on identical signals at their sample rate (the paper's protocol), so they must share
    it; classes only some of them know are left out rather than refused, so that a model trained on more
    classes can still be compared with one trained on fewer.
    """
    rates = {s.sample_rate for s in separators}
    if len(rates) > 1:
        listed = ", ".join(f"{s.name} {s.sample_rate} Hz" for s in separators)
        raise UsageError(
            f"The models work at different sample rates ({listed}); they can only be compared at one.",
            hint="Compare models trained with the same audio.sample_rate.",
        )
    others = [{c.lower() for c in s.classes} for s in separators[1:]]
    common = [c for c in separators[0].classes if all(c.lower() in known for known in others)]
    if not common:
        raise UsageError(
            "The models have no class in common, so there is nothing to compare them on.",
            hint="; ".join(f"{s.name}: {', '.join(s.classes)}" for s in separators) + ".",
        )
    return common


def _model_info(separator) -> dict[str, Any]:
    return {
        "name": separator.name, "folder": str(separator.folder), "sha256": separator.sha256, "masks": separator.masks,
        "architecture": separator.meta.architecture,
    }


def evaluate(
    separator,  # a Separator, or a list of them to compare on the same mixtures
    examples: Iterator[Example],
    *,
    metrics: Sequence[str] = ("sdr", "sir", "sar"),
    baselines: Sequence[str] = BASELINES,
    data_info: dict[str, Any] | None = None,
    progress: Callable[[int], None] | None = None,
) -> EvalReport:
    """Run the model(s) and the baselines on the same mixtures and score them all."""
    started = time.perf_counter()
    bad = [m for m in metrics if m not in METRICS]
    if bad or not metrics:
        raise UsageError(f"Unknown metric(s) {', '.join(bad) or '(none)'}; choose from {', '.join(METRICS)}.")
    bad = [b for b in baselines if b not in BASELINES]
    if bad:
        raise UsageError(f"Unknown baseline(s) {', '.join(bad)}; choose from {', '.join(BASELINES)}.")
    separators = list(separator) if isinstance(separator, (list, tuple)) else [separator]
    if not separators:
        raise UsageError("No model to evaluate.")
    if len(separators) > 1:
        common_classes(separators)  # same sample rate, some class in common
    labels = model_labels(separators)
    separator = separators[0]
    audio = separator.meta.audio
    methods = [*labels, *baselines]
    report = EvalReport(
        model=_model_info(separator), data=data_info or {}, metrics=list(metrics), methods=methods,
        models=[{"method": label, **_model_info(s)} for label, s in zip(labels, separators)],
    )
    for count, ex in enumerate(examples, 1):
        estimates = {
            label: np.stack(list(sep.separate(ex.mixture, audio.sample_rate, ex.classes).values()))
            for label, sep in zip(labels, separators)
        }
        for b in baselines:
            if b == "mixture":
                estimates[b] = None  # scored below, once
            else:
                estimates[b] = oracle_estimates(ex, audio, b)
        # The mixture's scores give SDRi; they are computed once, whether or not "mixture" is shown.
        mixture_est = np.repeat(ex.mixture[None], len(ex.classes), axis=0)
        scored = {"mixture": evaluate_sources(ex.references, mixture_est, metrics=tuple(metrics) if "mixture" in estimates else ("sdr",))}
        for method, est in estimates.items():
            if method not in scored:
                scored[method] = evaluate_sources(ex.references, est, metrics=tuple(metrics))
        for method in estimates:
            for cls, s, base in zip(ex.classes, scored[method], scored["mixture"]):
                rec = {"track": ex.track, "class": cls, "method": method, "status": s.status}
                for m in metrics:
                    rec[m] = getattr(s, m.replace("-", "_"))
                if s.status != "ok":
                    rec["pes"], rec["eps"] = s.pes, s.eps
                if method in labels and "sdr" in metrics and s.sdr is not None and base.sdr is not None:
                    rec["sdri"] = s.sdr - base.sdr
                report.records.append(rec)
        if progress:
            progress(count)
    report.data["mixtures"] = len({r["track"] for r in report.records})
    if not report.records:
        raise UsageError(
            f"Nothing to evaluate in {report.data.get('dir', 'the data')}: no track holds a class the model knows.",
            hint=f"Name the stems after the model's classes: {', '.join(separator.classes)}.",
        )
    report.seconds = time.perf_counter() - started
    return report


def write_csv(report: EvalReport, path: Path) -> None:
    import io

    cols = ["track", "class", "method", "status", *report.metrics, "sdri", "pes", "eps"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    w.writeheader()
    for r in report.records:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in cols})
    write_text_atomic(path, buf.getvalue())


def write_json(report: EvalReport, path: Path) -> None:
    write_text_atomic(path, json.dumps(report.to_json(), indent=1, allow_nan=False) + "\n")
