"""Known models: a typed registry of names, where their weights come from, and which one is the default.

A model named here is looked for first inside the installed package (``sgnsep/pretrained/<name>``, so the
default works offline), then on the Hugging Face Hub at ``repo_id@revision``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sgnsep.core.errors import ModelError, SgnsepError

PACKAGED_DIR = Path(__file__).parent.parent / "pretrained"


@dataclass(frozen=True)
class ModelEntry:
    name: str
    repo_id: str
    revision: str
    description: str

    @property
    def packaged_folder(self) -> Path:
        return PACKAGED_DIR / self.name


REGISTRY: dict[str, ModelEntry] = {
    entry.name: entry
    for entry in [
        ModelEntry(
            name="sgn-gm-small",
            repo_id="sgnsep/sgn-gm-small",
            revision="main",
            description="Small SGN trained on the soundfont instrument corpus (17 classes); ships with sgnsep.",
        ),
    ]
}
DEFAULT_MODEL = "sgn-gm-small"


def describe_models() -> list[dict]:
    """One row per registered model, as `sgnsep models --json` prints it: ``name``, ``default``, ``source``
    ("packaged (<folder>)" or "hub <repo>@<revision>"), ``description``, and for a packaged model its
    ``classes``, ``sample_rate`` and ``size_mb`` (None for a model fetched on first use). A packaged model
    whose config cannot be read is listed with the reason appended to its description."""
    from sgnsep.models.checkpoint import WEIGHTS_NAME, read_meta

    rows = []
    for entry in REGISTRY.values():
        folder = entry.packaged_folder
        packaged = (folder / WEIGHTS_NAME).is_file()
        row = {
            "name": entry.name,
            "default": entry.name == DEFAULT_MODEL,
            "source": f"packaged ({folder})" if packaged else f"hub {entry.repo_id}@{entry.revision}",
            "description": entry.description,
            "classes": None,
            "sample_rate": None,
            "size_mb": None,
        }
        if packaged:
            try:
                meta = read_meta(folder)
                row["classes"] = meta.classes
                row["sample_rate"] = meta.audio.sample_rate
                row["size_mb"] = round((folder / WEIGHTS_NAME).stat().st_size / 1e6, 2)
            except SgnsepError as e:
                row["description"] += f" (unreadable: {e.message})"
        rows.append(row)
    return rows


def resolve_model(spec: str | Path, *, cache_dir: str | None = None) -> Path:
    """A registered name, a local checkpoint folder, or a Hub id ``owner/name[@revision]`` -> local folder."""
    from sgnsep.hub.download import download_checkpoint
    from sgnsep.hub.repo_id import looks_like_repo_id, parse_repo_id

    text = str(spec)
    if text in REGISTRY:
        entry = REGISTRY[text]
        if (entry.packaged_folder / "model.safetensors").is_file():
            return entry.packaged_folder
        return download_checkpoint(entry.repo_id, entry.revision, cache_dir=cache_dir)
    path = Path(text).expanduser()
    if path.exists():
        if path.is_file():
            raise ModelError(
                f"--model {text} is a file; a model is a folder holding config.json and model.safetensors.",
                hint=f"Pass the folder: --model {path.parent}",
            )
        return path
    if looks_like_repo_id(text):
        repo_id, revision = parse_repo_id(text)
        return download_checkpoint(repo_id, revision, cache_dir=cache_dir)
    raise ModelError(
        f"Model '{text}' is neither a registered name, an existing folder, nor a Hub id owner/name[@revision].",
        hint=f"Registered models: {', '.join(REGISTRY)}. See `sgnsep models`.",
    )
