"""Checkpoints: a folder (or Hub repo) with ``config.json`` and ``model.safetensors``.

``config.json`` holds the model config, the class names, the audio settings, the sgnsep version that wrote
it, and summaries of training and evaluation. Weights are safetensors: nothing is ever unpickled.
Loading is strict: missing, unexpected or mis-shaped tensors are named in the error.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from sgnsep._version import __version__
from sgnsep.core.atomic_write import write_bytes_atomic
from sgnsep.core.bounds import MAX_PARAMETERS, check_audio
from sgnsep.models.config import AudioConfig, SGNConfig, dataclass_from_dict, saved_sgn_config, to_dict
from sgnsep.core.errors import ModelError, SgnsepError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT = "sgnsep-checkpoint"
FORMAT_VERSION = 1


@dataclass
class CheckpointMeta:
    """Everything in config.json besides the weights."""

    classes: list[str]
    model: SGNConfig
    audio: AudioConfig = field(default_factory=AudioConfig)
    architecture: str = "sgn"
    name: str = ""
    sgnsep_version: str = __version__
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "architecture": self.architecture,
            "sgnsep_version": self.sgnsep_version,
            "classes": list(self.classes),
            "model": to_dict(self.model),
            "audio": to_dict(self.audio),
            "training": self.training,
            "metrics": self.metrics,
        }

    @classmethod
    def from_json(cls, data: Any, *, where: str) -> "CheckpointMeta":
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ModelError(
                f"{where} is not an sgnsep checkpoint config (no \"format\": \"{FORMAT}\").",
                hint="Point --model at a folder written by `sgnsep train` or fetched with `sgnsep pull`.",
            )
        if data.get("format_version") != FORMAT_VERSION:
            raise ModelError(
                f"{where} has checkpoint format version {data.get('format_version')!r}; "
                f"this sgnsep reads version {FORMAT_VERSION}.",
                hint="Upgrade sgnsep (`pip install -U sgnsep`).",
            )
        classes = data.get("classes")
        if not isinstance(classes, list) or not classes or not all(isinstance(c, str) and c for c in classes):
            raise ModelError(f"{where}: \"classes\" must be a non-empty list of class names.")
        if len(set(classes)) != len(classes):
            raise ModelError(f"{where}: \"classes\" contains duplicates.")
        model = saved_sgn_config(data.get("model", {}), where=f"{where} \"model\"")
        if model.num_classes != len(classes):
            raise ModelError(
                f"{where}: model.num_classes is {model.num_classes} but {len(classes)} class names are listed."
            )
        audio = dataclass_from_dict(AudioConfig, data.get("audio", {}), where=f"{where} \"audio\"")
        architecture = check_architecture(data.get("architecture", "sgn"), where=where)
        name = data.get("name", "")
        if not isinstance(name, str):
            raise ModelError(f"{where}: \"name\" must be a string, got {type(name).__name__}.")
        for key in ("training", "metrics"):
            if not isinstance(data.get(key) or {}, dict):
                raise ModelError(f"{where}: \"{key}\" must be a JSON object, got {type(data[key]).__name__}.")
        # Settings that only fail together fail here, before the real network is allocated (sgnsep/bounds.py).
        dry_run(architecture, model, audio, where=where, error=ModelError)
        return cls(
            classes=classes,
            model=model,
            audio=audio,
            architecture=architecture,
            name=name,
            sgnsep_version=data.get("sgnsep_version", "unknown"),
            training=data.get("training", {}) or {},
            metrics=data.get("metrics", {}) or {},
        )


def save_checkpoint(folder: str | os.PathLike, model: torch.nn.Module, meta: CheckpointMeta) -> Path:
    """Write ``folder/config.json`` and ``folder/model.safetensors`` atomically (temp file + rename)."""
    from safetensors.torch import save

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    write_bytes_atomic(folder / WEIGHTS_NAME, save(state, metadata={"format": "pt"}), durable=True)
    config = json.dumps(meta.to_json(), indent=2, sort_keys=False) + "\n"
    write_bytes_atomic(folder / CONFIG_NAME, config.encode(), durable=True)
    return folder


def read_meta(folder: Path) -> CheckpointMeta:
    config_path = folder / CONFIG_NAME
    if not config_path.is_file():
        raise ModelError(
            f"Model folder {folder} has no {CONFIG_NAME}.",
            hint=f"A checkpoint folder holds {CONFIG_NAME} and {WEIGHTS_NAME}, as `sgnsep train` writes them.",
        )
    try:
        text = config_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelError(
            f"Cannot read {config_path} ({exc.strerror or exc}).",
            hint="Fix its permissions (it must be readable by you), or re-download the model.",
        ) from None
    except UnicodeDecodeError as exc:
        raise ModelError(f"{config_path} is not valid JSON ({exc}).", hint="Re-download or re-train the model.") from None
    try:
        data = json.loads(text)
    except ValueError as exc:  # JSONDecodeError, or an integer of more than 4300 digits (Python's limit)
        raise ModelError(f"{config_path} is not valid JSON ({exc}).", hint="Re-download or re-train the model.") from None
    except RecursionError:  # a hostile file of deeply nested brackets
        raise ModelError(f"{config_path} is nested too deeply to be a checkpoint config.",
                         hint="Re-download or re-train the model.") from None
    return CheckpointMeta.from_json(data, where=str(config_path))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise ModelError(
            f"Model weights {path} are missing.",
            hint=f"A checkpoint folder holds {CONFIG_NAME} and {WEIGHTS_NAME}; re-download or re-train it.",
        )
    try:
        with open(path, "rb"):  # the real reason (permission denied) before safetensors' own message
            pass
    except OSError as exc:
        raise ModelError(
            f"Cannot read the model weights {path} ({exc.strerror or exc}).",
            hint="Fix its permissions (it must be readable by you), or re-download the model.",
        ) from None
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelError(
            f"{path} is not a readable safetensors file ({exc}).",
            hint="The file may be truncated or not safetensors (sgnsep never loads pickle files); "
            "re-download or re-train the model.",
        ) from None


# The networks a checkpoint can hold: SGN (sgnsep/models/sgn.py) and the paper's baselines (sgnsep/baselines.py).
# All take the same input and config and share the output contract, so everything downstream is the same.
ARCHITECTURES = ("sgn", "cunet", "unet")


def check_architecture(architecture: Any, *, where: str) -> str:
    if architecture not in ARCHITECTURES:
        raise ModelError(
            f"{where}: unknown architecture {architecture!r}; this sgnsep knows "
            f"{', '.join(repr(a) for a in ARCHITECTURES)}.",
            hint="Set architecture to one of them, or upgrade sgnsep if a newer one wrote this.",
        )
    return architecture


def build_network(architecture: str, cfg: SGNConfig, input_size: int) -> torch.nn.Module:
    """A freshly initialised network of ``architecture`` for the model config ``cfg``."""
    from sgnsep.models.baselines import ClassHeadUNet, ConditionedUNet
    from sgnsep.models.sgn import SGN

    networks = {"sgn": SGN, "cunet": ConditionedUNet, "unet": ClassHeadUNet}
    return networks[check_architecture(architecture, where="model config")](cfg, input_size=input_size)


def dry_run(architecture: str, model_cfg, audio, *, where: str, error: type[SgnsepError]) -> int:
    """Build the network on the ``meta`` device and run one forward pass on a segment's shape: the settings
    that only fail together (a U-Net too deep for the input, a patch larger than the spectrogram) fail here,
    in one line, before any memory is allocated. Returns the number of weights (at most
    :data:`sgnsep.core.bounds.MAX_PARAMETERS`)."""
    check_audio(audio, where=where, error=error)
    try:
        with torch.device("meta"):
            net = build_network(architecture, model_cfg, audio.warp_bins)
            count = sum(p.numel() for p in net.parameters())
            if count > MAX_PARAMETERS:
                raise error(
                    f"{where}: the model settings give a network of {count:,} weights (at most "
                    f"{MAX_PARAMETERS:,}); check unet_ngf, embed_dim, depth and mlp_ratio."
                )
            x = torch.empty(1, 1, audio.warp_bins, audio.segment_frames)
            net(x, torch.zeros(1, 1, dtype=torch.long))
    except SgnsepError:
        raise
    except (RuntimeError, ValueError, ZeroDivisionError, OverflowError, MemoryError, AssertionError) as exc:
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise error(
            f"{where}: the model and audio settings do not fit together ({reason}).",
            hint="Check patch_size, unet_depth and warp_bins against segment_samples / hop_length.",
        ) from None
    return count


def build_model(meta: CheckpointMeta) -> torch.nn.Module:
    return build_network(meta.architecture, meta.model, meta.audio.warp_bins)


def strict_load(model: torch.nn.Module, state: dict[str, torch.Tensor], *, where: str) -> None:
    """Load ``state`` into ``model``, failing with the names of missing, unexpected and mis-shaped keys."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = sorted(
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in set(expected) & set(state)
        if tuple(state[k].shape) != tuple(expected[k].shape)
    )
    if missing or unexpected or shapes:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", shapes)):
            if keys:
                shown = ", ".join(keys[:5]) + (f" (+{len(keys) - 5} more)" if len(keys) > 5 else "")
                parts.append(f"{len(keys)} {label}: {shown}")
        raise ModelError(
            f"The weights in {where} do not match its config.json: " + "; ".join(parts) + ".",
            hint="The config and the weights come from different models; re-download or re-train the model.",
        )
    model.load_state_dict(state, strict=True)


@dataclass
class LoadedCheckpoint:
    model: torch.nn.Module
    meta: CheckpointMeta
    folder: Path
    sha256: str


def load_checkpoint(folder: str | os.PathLike) -> LoadedCheckpoint:
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelError(f"Model folder {folder} does not exist.")
    meta = read_meta(folder)
    weights = folder / WEIGHTS_NAME
    state = load_state_dict(weights)
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        # Found here, the weights are named; found later, the NaN stems would be blamed on the input file.
        raise ModelError(
            f"The weights in {weights} hold NaN or infinite values ({len(bad)} tensor(s), e.g. {bad[0]}).",
            hint="The model is broken (a diverged training run?); re-download it or use another checkpoint.",
        )
    model = build_model(meta)
    strict_load(model, state, where=str(folder))
    model.eval()
    return LoadedCheckpoint(model=model, meta=meta, folder=folder, sha256=file_sha256(weights))
