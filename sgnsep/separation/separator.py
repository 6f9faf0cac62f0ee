"""The public Python API: load a model once, then separate arrays, tensors or files.

>>> from sgnsep import Separator
>>> sep = Separator()                                   # the packaged default model, on the best device
>>> stems = sep.separate(audio, 44100, ["violin", "cello"], residual=True)   # audio (channels, samples)
>>> sep.separate_file("song.wav", ["violin"], out_dir="separated")

The CLI (`sgnsep separate`) is a thin wrapper over :meth:`Separator.separate_file`.
"""

from __future__ import annotations

import difflib
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from sgnsep.audio import audio_io, resample
from sgnsep.core.atomic_write import PARTIAL_EXTRA, NewOutputs
from sgnsep.models.checkpoint import load_checkpoint
from sgnsep.core.errors import DeviceError, InputAudioError, OutputError, UsageError
from sgnsep.core.interrupts import uninterrupted
from sgnsep.models.unet import use_channels_last
from sgnsep.models.registry import DEFAULT_MODEL, resolve_model
from sgnsep.separation import chunk_plan, overlap_add

RESIDUAL = "residual"
MASK_MODES = ("shared", "independent", "complete")
DEFAULT_TEMPLATE = "{model}/{track}/{source}.{ext}"


def resolve_device(spec: str) -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; an explicit device that is not there is an error."""
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "cuda" or spec.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise DeviceError(
                f"--device {spec} was asked for, but CUDA is not available on this machine.",
                hint="Use --device cpu (or auto).",
            )
        index = spec.split(":", 1)[1] if ":" in spec else "0"
        if not index.isdigit() or int(index) >= torch.cuda.device_count():
            raise DeviceError(
                f"--device {spec}: there are {torch.cuda.device_count()} CUDA devices (cuda:0 .. "
                f"cuda:{torch.cuda.device_count() - 1}).",
            )
        return torch.device(f"cuda:{index}")
    if spec == "mps":
        if getattr(torch.backends, "mps", None) is None or not torch.backends.mps.is_available():
            raise DeviceError("--device mps was asked for, but MPS is not available.", hint="Use --device cpu.")
        return torch.device("mps")
    raise UsageError(f"Unknown device '{spec}'; use auto, cpu, cuda, cuda:N or mps.")


# Longest name of one path component most file systems take (NAME_MAX, in bytes). An output's temporary sibling
# ".<name>.<pid>-<host>-<random>.partial" (sgnsep/atomic_write.py) is PARTIAL_EXTRA bytes longer than its name.
NAME_MAX = 255
_UNSAFE_CHARS = re.compile(r"[/\\\x00-\x1f\x7f]")


def safe_name(text: str) -> str:
    """One path component made from a name that comes from outside: a model's ``name``, a class, an input's
    file name. Those are data, not paths: a model named ``../../x`` or ``/etc``, a class ``a/b`` or an input
    ``...wav`` (whose track name is ``..``) must not steer an output out of ``--out``. Separators and control
    characters become ``_``; a leading dot too (``.``, ``..`` and hidden files, which would also look like the
    temporary ``.*.partial`` files); an empty name is ``_``."""
    name = _UNSAFE_CHARS.sub("_", str(text)).strip()
    if name.startswith("."):
        name = "_" + name.lstrip(".")
    return name or "_"


def confined_output(out_dir: Path, rel: str, template: str) -> Path:
    """``out_dir / rel``, checked before anything is written: ``rel`` (the formatted ``--name`` template) must
    name a file below ``out_dir``, resolve inside it (no ``..``, no absolute path, no symbolic link out of it),
    and fit the file system's name length with room for its temporary sibling."""
    rel_path = Path(rel)
    if rel_path.is_absolute() or ".." in rel_path.parts:
        raise UsageError(
            f"The --name template '{template}' puts outputs outside --out {out_dir} ({rel}).",
            hint="Use a relative template without '..', e.g. --name '{model}/{track}/{source}.{ext}'; choose the "
            "folder with --out.",
        )
    if not rel.strip() or rel.endswith(("/", os.sep)) or rel_path.name in ("", "."):
        raise UsageError(
            f"The --name template '{template}' gives no file name ('{rel}').",
            hint="End it with a file name, e.g. --name '{model}/{track}/{source}.{ext}'.",
        )
    for i, part in enumerate(rel_path.parts):
        limit = NAME_MAX - (PARTIAL_EXTRA if i == len(rel_path.parts) - 1 else 0)
        if len(os.fsencode(part)) > limit:
            raise OutputError(
                f"The output name '{part[:40]}...' ({len(os.fsencode(part))} bytes) is longer than the file system "
                f"allows ({limit} bytes for this part of the path).",
                hint="Shorten the input's file name or the --name template (e.g. leave out {parent}).",
            )
    target = out_dir / rel_path
    base = out_dir.resolve()
    if not target.resolve().is_relative_to(base):
        raise OutputError(
            f"{target} would be written to {target.resolve()}, outside --out {out_dir} (through a symbolic link).",
            hint="Remove the link from the output folder, or choose another --out.",
        )
    return target


@dataclass
class FileResult:
    """What :meth:`Separator.separate_file` did for one input."""

    input: str
    outputs: dict[str, str]
    sample_rate: int
    channels: int
    seconds: float
    elapsed: float
    sources: list[str] = field(default_factory=list)

    @property
    def realtime_factor(self) -> float:
        return self.seconds / self.elapsed if self.elapsed > 0 else float("inf")


def _class_key(name: str) -> str:
    """A class name as matched against what users type: case, spaces, hyphens and underscores do not count."""
    return name.strip().lower().replace(" ", "_").replace("-", "_")


class Separator:
    """Separates the classes a user names from audio, with one loaded SGN checkpoint.

    model: a registered name (default: the packaged model), a local checkpoint folder, or a Hub id
    ``owner/name[@revision]``. overlap: fraction of a segment shared with its neighbour (0 <= overlap < 1).
    chunk_seconds: audio processed at once; memory is bounded by it, not by the file's length.
    batch_size: segments run through the network at once.
    masks: ``shared`` (default): where the requested classes' masks add up to more than 1 in a
    time-frequency bin, each is scaled down by that sum, so no two stems claim the same energy and the
    residual (mixture minus stems) is a non-negative share of every bin; one class alone is unchanged.
    ``independent``: each class's mask as the model gives it (eq. 10 alone, the paper's protocol).
    ``complete``: for a recording in which the classes asked for are all that sound (a duo, a trio), every
    bin is shared out among them in proportion to their masks, so the stems add up to the mixture and the
    residual is empty; one class alone gets the whole mixture.
    """

    def __init__(
        self,
        model: str | os.PathLike = DEFAULT_MODEL,
        *,
        device: str = "auto",
        overlap: float = 0.25,
        chunk_seconds: float = 10.0,
        batch_size: int = 4,
        cache_dir: str | None = None,
        masks: str = "shared",
    ):
        if masks not in MASK_MODES:
            raise UsageError(f"--masks must be one of {', '.join(MASK_MODES)}, got '{masks}'.")
        if not 0.0 <= overlap < 1.0:
            raise UsageError(f"--overlap must be in [0, 1), got {overlap}.")
        if not chunk_seconds > 0 or not np.isfinite(chunk_seconds):
            raise UsageError(f"--chunk-seconds must be a positive number, got {chunk_seconds}.")
        if batch_size < 1:
            raise UsageError(f"--batch-size must be at least 1, got {batch_size}.")
        self.device = resolve_device(device)
        self.model_spec = str(model)
        folder = resolve_model(model, cache_dir=cache_dir)
        loaded = load_checkpoint(folder)
        self.meta = loaded.meta
        self.folder = loaded.folder
        self.sha256 = loaded.sha256
        self.model = loaded.model.to(self.device).eval()
        if self.device.type == "cpu":
            use_channels_last(self.model)  # faster U-Net on CPU, same results (sgnsep/models/sgn.py)
        self.overlap = overlap
        self.chunk_seconds = chunk_seconds
        self.batch_size = batch_size
        self.masks = masks

    # --- what the model knows ---------------------------------------------------------------------

    @property
    def classes(self) -> list[str]:
        return list(self.meta.classes)

    @property
    def name(self) -> str:
        return self.meta.name or self.folder.name

    @property
    def sample_rate(self) -> int:
        return self.meta.audio.sample_rate

    def class_indices(self, sources: str | Sequence[str]) -> list[int]:
        """Validate requested class names (a list or a comma-separated string) and map them to indices."""
        names = [s.strip() for s in sources.split(",")] if isinstance(sources, str) else [str(s).strip() for s in sources]
        if not names or any(not n for n in names):
            raise UsageError(
                "The class list is empty or has an empty entry.",
                hint=f"Name classes separated by commas, e.g. --sources {','.join(self.classes[:2])}.",
            )
        seen = set()
        dupes = [n for n in names if n in seen or seen.add(n)]
        if dupes:
            raise UsageError(f"Class '{dupes[0]}' is asked for twice; name each class once.")
        exact = {c.lower(): i for i, c in enumerate(self.classes)}
        loose: dict[str, list[int]] = {}  # "Low Tone", "low-tone" and "low_tone" all find class "low-tone"
        for i, c in enumerate(self.classes):
            loose.setdefault(_class_key(c), []).append(i)
        out = []
        for n in names:
            if n.lower() in exact:
                out.append(exact[n.lower()])
                continue
            found = loose.get(_class_key(n), [])
            if len(found) > 1:
                raise UsageError(
                    f"'{n}' could mean any of the classes {', '.join(repr(self.classes[i]) for i in found)} "
                    f"of model '{self.name}'.", hint="Write the class name exactly as the model has it.",
                )
            if not found:
                close = difflib.get_close_matches(_class_key(n), list(loose), n=1, cutoff=0.5)
                hint = f" Did you mean '{self.classes[loose[close[0]][0]]}'?" if close else ""
                raise UsageError(
                    f"Model '{self.name}' has no class '{n}'.{hint}",
                    hint=f"Its classes: {', '.join(self.classes)}.",
                )
            out.append(found[0])
        again = [i for i, idx in enumerate(out) if idx in out[:i]]  # "low,LOW": one class, twice
        if again:
            raise UsageError(f"Class '{self.classes[out[again[0]]]}' is asked for twice; name each class once.")
        return out

    def class_names(self, sources: str | Sequence[str]) -> list[str]:
        """Validated, canonical class names (see :meth:`class_indices`)."""
        return [self.classes[i] for i in self.class_indices(sources)]

    # --- core -------------------------------------------------------------------------------------

    def _mask_fn(self, class_idx: list[int]) -> overlap_add.MaskFn:
        classes = torch.tensor(class_idx, device=self.device)
        mode = self.masks

        @torch.inference_mode()
        def fn(net_in: torch.Tensor) -> torch.Tensor:
            masks = torch.sigmoid(self.model(net_in, classes).mask_logits)  # (B, N, H, T)
            # Everything after this (unwarping, blending segments, mapping onto the input's STFT) takes
            # convex combinations of bins, so sums of at most 1 (shared) or of exactly 1 (complete) hold on
            # the input's grid too.
            if mode == "shared":
                masks = masks / masks.sum(dim=1, keepdim=True).clamp_min(1.0)  # sums above 1 cut back to 1
            elif mode == "complete":
                total = masks.sum(dim=1, keepdim=True)
                # A bin every mask leaves at exactly 0 (sigmoid underflow) is split evenly.
                masks = torch.where(total > 0, masks / total.clamp_min(torch.finfo(masks.dtype).tiny),
                                    1.0 / masks.shape[1])
            return masks

        return fn

    def _stream(
        self,
        read: Callable[[int, int], np.ndarray],
        total: int,
        channels: int,
        sample_rate: int,
        class_idx: list[int],
        progress: Callable[[int, int], None] | None = None,
        what: str = "The audio",
        out: np.ndarray | None = None,
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Yield (stems (N, channels, L), mixture (channels, L), residual (channels, L)) chunk after chunk,
        in order; the residual is the mixture minus the stems.

        With ``out`` (N, channels, total) float32, every chunk's stems are written straight into it and the
        yielded stems are views of it. Without, the stems and the residual are views of buffers reused for
        every chunk: use them before asking for the next chunk.
        """
        plan = chunk_plan.make_plan(
            sample_rate, total, self.meta.audio, overlap=self.overlap, chunk_seconds=self.chunk_seconds
        )
        mask_fn = self._mask_fn(class_idx)
        if out is None:
            # Laid out (N, samples, channels) and handed on as (N, channels, samples) views: each stem's block
            # is then interleaved as sound files store it, and writing it needs no transposed copy.
            interleaved = np.empty((len(class_idx), min(plan.chunk_in, total), channels), dtype=np.float32)
            out = interleaved.transpose(0, 2, 1)
            residual_buffer = np.empty((min(plan.chunk_in, total), channels), dtype=np.float32).T  # likewise
            reuse = True
        else:
            reuse = False
        # Very short inputs are zero-padded for processing (the STFTs' reflect padding needs a few
        # windows of signal); the padding never reaches the outputs.
        min_len = max(plan.n_fft_in, int(np.ceil(self.meta.audio.n_fft * sample_rate / self.sample_rate))) + 1
        segment_masks: dict[int, torch.Tensor] = {}  # masks of segments shared by neighbouring chunks: each is computed once
        for read_start, read_stop, keep_start, keep_stop in plan.chunks():
            block = read(read_start, read_stop)
            mixture = block[:, keep_start - read_start : keep_stop - read_start]
            tensor = torch.from_numpy(block).to(self.device, torch.float32)
            if tensor.shape[-1] < min_len:
                tensor = torch.nn.functional.pad(tensor, (0, min_len - tensor.shape[-1]))
            stems = out[..., : keep_stop - keep_start] if reuse else out[..., keep_start:keep_stop]
            on_device = torch.from_numpy(stems) if overlap_add.host_memory(self.device) else None
            result = overlap_add.separate_chunk(
                tensor, read_start, plan, mask_fn, len(class_idx), (keep_start, keep_stop), self.batch_size,
                out=on_device, segment_masks=segment_masks,
            )
            if on_device is None:
                stems[...] = result.cpu().numpy()
            into = residual_buffer[:, : mixture.shape[-1]] if reuse else None
            residual = np.subtract(mixture, stems.sum(axis=0), out=into)
            if not np.isfinite(residual).all():
                # Finite input near float32's limit overflows in the STFTs (or in the residual). A NaN or
                # infinite stem makes its sum and so the residual non-finite too: one check covers both.
                raise InputAudioError(
                    f"{what}: its samples are too large to process (peak {np.abs(block).max():.3g}; audio is "
                    "expected within about -1..1).",
                    hint="Normalise it (re-export it at a sensible level) first.",
                )
            yield stems, mixture, residual
            if progress is not None:
                progress(keep_stop, total)

    def separate(
        self,
        audio: np.ndarray | torch.Tensor,
        sample_rate: int,
        sources: str | Sequence[str],
        *,
        residual: bool = False,
    ) -> dict[str, np.ndarray]:
        """Separate an in-memory signal. audio (samples,) or (channels, samples) at ``sample_rate``.

        Returns {class: array shaped like the input}, plus "residual" (input minus the stems) if asked.
        """
        class_idx = self.class_indices(sources)
        names = [self.classes[i] for i in class_idx]
        array = audio.detach().cpu().numpy() if isinstance(audio, torch.Tensor) else np.asarray(audio)
        mono_input = array.ndim == 1
        array = np.atleast_2d(array).astype(np.float32, copy=False)
        if array.ndim != 2 or array.shape[-1] == 0:
            raise UsageError(f"audio must be (samples,) or (channels, samples) with samples > 0; got {array.shape}.")
        if not np.isfinite(array).all():
            raise UsageError("audio holds NaN or infinite values.")
        if not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
            raise UsageError(f"sample_rate must be a positive integer, got {sample_rate!r}.")
        problem = resample.rate_problem(int(sample_rate), self.sample_rate)
        if problem:
            raise UsageError(f"The audio cannot be separated: {problem}.", hint="Resample it to e.g. 44100 Hz first.")
        stems = np.empty((len(class_idx), *array.shape), dtype=np.float32)
        for _ in self._stream(
            lambda a, b: array[:, a:b], array.shape[-1], array.shape[0], int(sample_rate), class_idx, out=stems
        ):
            pass  # each chunk's stems are written into `stems` in place
        out = {name: stems[i] for i, name in enumerate(names)}
        if residual:
            out[RESIDUAL] = array - stems.sum(axis=0)
        if mono_input:
            out = {k: v[0] for k, v in out.items()}
        return out

    def output_paths(
        self,
        path: Path,
        names: list[str],
        out_dir: Path,
        template: str = DEFAULT_TEMPLATE,
        ext: str = "wav",
    ) -> dict[str, Path]:
        """Where each of ``names`` goes for the input ``path``: ``out_dir`` / the template, every field a
        :func:`safe_name` and the result confirmed inside ``out_dir`` (:func:`confined_output`)."""
        outputs = {}
        fields = {
            "model": safe_name(self.name), "track": safe_name(path.stem),
            "parent": safe_name(path.resolve().parent.name), "ext": ext,
        }
        for name in names:
            try:
                rel = template.format(**fields, source=safe_name(name))
            except (KeyError, IndexError, ValueError, AttributeError) as exc:
                raise UsageError(
                    f"Bad --name template '{template}' ({exc}).",
                    hint="Use the fields {model}, {track}, {parent}, {source} and {ext}.",
                ) from None
            outputs[name] = confined_output(Path(out_dir), rel, template)
        if len(set(outputs.values())) != len(outputs):
            raise UsageError(f"The --name template '{template}' gives several stems the same file name; use {{source}}.")
        return outputs

    def separate_file(
        self,
        path: str | os.PathLike,
        sources: str | Sequence[str],
        *,
        out_dir: str | os.PathLike = "separated",
        template: str = DEFAULT_TEMPLATE,
        ext: str = "wav",
        bit_depth: int | str | None = None,
        residual: bool = False,
        overwrite: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> FileResult:
        """Separate one file, streaming it in chunks; each output is written under a temporary name and
        renamed into place only once complete. Existing outputs are an error unless ``overwrite``."""
        started = time.perf_counter()
        path = Path(path)
        class_idx = self.class_indices(sources)
        names = [self.classes[i] for i in class_idx]
        ext = ext.lower().lstrip(".")  # "--ext .WAV" names files low.wav, not low..WAV
        fmt, subtype = audio_io.resolve_format(ext, bit_depth or audio_io.default_bit_depth(ext))
        info = audio_io.probe(path)
        problem = resample.rate_problem(info.sample_rate, self.sample_rate)
        if problem:
            raise InputAudioError(
                f"{path}: {problem}.", hint="Resample it to a usual rate (e.g. 44100 or 48000 Hz) first."
            )
        targets = self.output_paths(path, names + ([RESIDUAL] if residual else []), Path(out_dir), template, ext)
        if path.resolve() in {t.resolve() for t in targets.values()}:
            raise OutputError(f"{path}: an output would overwrite the input itself.", hint="Choose another --out.")
        existing = [str(t) for t in targets.values() if t.exists()]
        if existing and not overwrite:
            raise OutputError(
                f"{path}: {len(existing)} output(s) already exist, e.g. {existing[0]}.",
                hint="Pass --overwrite to replace them, or choose another --out.",
            )
        created = NewOutputs()  # folders made for this file, removed again (if left empty) when it fails
        writers: dict[str, audio_io.AtomicAudioWriter] = {}
        try:
            for target in targets.values():
                try:
                    created.folder(target.parent)
                except OSError as exc:
                    raise OutputError(
                        f"Cannot create the output folder {target.parent} ({exc.strerror}).",
                        hint="Choose another folder with --out.",
                    ) from None
            for name, target in targets.items():
                # registered before its temporary file exists, so the cleanup below always knows of that file
                writers[name] = audio_io.AtomicAudioWriter(target, info.sample_rate, info.channels, fmt, subtype)
                writers[name].open()
            reader = lambda a, b: audio_io.read_block(path, a, b)  # noqa: E731
            for stems, mixture, rest in self._stream(
                reader, info.frames, info.channels, info.sample_rate, class_idx, progress, str(path)
            ):
                for i, name in enumerate(names):
                    writers[name].write(stems[i])
                if residual:
                    writers[RESIDUAL].write(rest)
            for writer in writers.values():
                writer.commit()
        except BaseException:
            # No half set of stems: temporary files go, and so do stems already renamed into place by this call.
            with uninterrupted():  # not stopped half-way by a signal
                for writer in writers.values():
                    try:
                        if writer.committed:
                            writer.path.unlink(missing_ok=True)
                        else:
                            writer.abort()
                    except OSError:  # one that cannot go must not keep the others
                        pass
                created.remove()
            raise
        return FileResult(
            input=str(path),
            outputs={k: str(v) for k, v in targets.items()},
            sample_rate=info.sample_rate,
            channels=info.channels,
            seconds=info.seconds,
            elapsed=time.perf_counter() - started,
            sources=names,
        )
