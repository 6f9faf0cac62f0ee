"""Hugging Face model cards (the ``README.md`` of a Hub repo) for sgnsep checkpoints.

:func:`model_card` writes one from a checkpoint's ``config.json`` alone (:class:`sgnsep.models.checkpoint.CheckpointMeta`):
YAML front matter that the Hub indexes (``library_name: sgnsep``, tags, licence), then what the model is, its
classes, audio settings, size, how it was trained, the scores recorded in the checkpoint, how to use it and its
limits. Nothing is invented: a section whose facts the checkpoint does not record says so.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import fields

from sgnsep.audio import frontend
from sgnsep.hub.card_markdown import (
    cell_value, check_card_metadata, describe_value, inline_code, is_number, json_block, markdown_table, summary_block,
)
from sgnsep.models.checkpoint import CheckpointMeta
from sgnsep.models.config import SGNConfig


#: Licence written into the card when the checkpoint records none (sgnsep itself is MIT).
DEFAULT_LICENSE = "mit"


#: Hub tags of every sgnsep checkpoint (SGN's; the baselines' replace the last by ARCHITECTURE_TAGS').
TAGS: tuple[str, ...] = ("audio-source-separation", "sgn")


ARCHITECTURE_TAGS = {"sgn": "sgn", "unet": "unet", "cunet": "conditioned-unet"}


PAPER = 'Shentong Mo and Yapeng Tian, "Semantic Grouping Network for Audio Source Separation"'


CUNET_PAPER = ('Olga Slizovskaia, Gloria Haro and Emilia Gomez, "Conditioned Source Separation for Music '
               'Instrument Performances"')


# Model settings each architecture uses (sgnsep/models/sgn.py, sgnsep/baselines.py); the card lists only these.
_LOSS_FIELDS = ("weighted_mask_loss", "mask_threshold")


_ARCHITECTURE_FIELDS = {
    "sgn": ("embed_dim", "depth", "num_heads", "patch_size", "mlp_ratio", "dropout", "unet_ngf", "unet_depth",
            "class_tokens", "grouping", "hard_grouping", "gumbel_tau", "grouping_scale", *_LOSS_FIELDS,
            "class_token_loss_weight", "presence_loss_weight"),
    "unet": ("unet_ngf", "unet_depth", *_LOSS_FIELDS),
    "cunet": ("unet_ngf", "unet_depth", "cunet_film_at", "cunet_film_type", "cunet_condition",
              "cunet_control_hidden", *_LOSS_FIELDS),
}


_LICENSE_RE = re.compile(r"[a-z0-9][a-z0-9.+-]*")


_SIMPLE_YAML_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/+-]*")


# Training settings shown first (in this order) when present; the rest follow alphabetically.
_TRAINING_KEYS_FIRST = (
    "dataset", "data_dir", "classes", "num_sources", "max_sources", "optimizer", "lr", "momentum", "weight_decay",
    "batch_size", "epochs", "steps_per_epoch", "lr_steps", "seed", "amp",
)


def model_card(
    meta: CheckpointMeta,
    *,
    repo_id: str,
    num_parameters: int | None = None,
    weights_bytes: int | None = None,
    weights_sha256: str | None = None,
    where: str = "the checkpoint's config.json",
) -> str:
    """The model card (``README.md``) of a checkpoint published as ``repo_id`` (``owner/name``).

    Args:
        meta: the checkpoint's config (classes, model and audio settings, ``training`` and ``metrics`` records).
        repo_id: the Hub repo it is published as; used in the usage examples.
        num_parameters, weights_bytes, weights_sha256: facts about ``model.safetensors`` to list, when known.
        where: the config file, named in errors.

    Returns:
        Markdown with YAML front matter; ends with a newline.

    Raises:
        ModelError: a field the card shows has a value it cannot show (:func:`check_card_metadata`).
    """
    check_card_metadata(meta, where=where)
    name = meta.name or repo_id.split("/")[-1]
    parts = [
        _front_matter(meta),
        f"# {inline_code(name)}\n",
        _about(meta),
        _classes_section(meta),
        _audio_section(meta),
        _size_section(meta, num_parameters, weights_bytes, weights_sha256),
        _training_section(meta),
        _scores_section(meta, repo_id),
        _usage_section(meta, repo_id),
        _limits_section(meta),
        _citation_section(meta),
    ]
    return "\n".join(part.rstrip("\n") + "\n" for part in parts if part)


def _license(meta: CheckpointMeta) -> str:
    """The licence recorded in the checkpoint (``meta.license``, or ``license`` in its training record)."""
    for candidate in (getattr(meta, "license", None), meta.training.get("license") if meta.training else None):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
    return DEFAULT_LICENSE


_YAML_KEYWORDS = frozenset({"yes", "no", "true", "false", "null", "on", "off", "y", "n", "~"})


def _yaml_scalar(value: str) -> str:
    """A plain word as is; anything else as a JSON string, which is a valid (quoted) YAML scalar."""
    plain = _SIMPLE_YAML_RE.fullmatch(value) and value.lower() not in _YAML_KEYWORDS
    return value if plain else json.dumps(value)


def _front_matter(meta: CheckpointMeta) -> str:
    licence = _license(meta)
    licence = licence.lower() if _LICENSE_RE.fullmatch(licence.lower()) else licence
    lines = [
        "---",
        "library_name: sgnsep",
        f"license: {_yaml_scalar(licence)}",
        "tags:",
        *(f"- {_yaml_scalar(tag)}" for tag in (*TAGS[:-1], ARCHITECTURE_TAGS[meta.architecture])),
        "pipeline_tag: audio-to-audio",
        "---",
    ]
    return "\n".join(lines) + "\n"


def _about(meta: CheckpointMeta) -> str:
    written = f"architecture `{inline_code(meta.architecture)}`, written by sgnsep {inline_code(meta.sgnsep_version)}"
    subset = (f"Ask for any subset of its {len(meta.classes)} classes in one call; it returns one stem per class.\n")
    if meta.architecture == "unet":
        return (
            f"A **U-Net baseline** checkpoint for sgnsep ({written}): Sound of Pixels' audio U-Net without vision, "
            "with one output channel per class whose sigmoid is that class's mask (the \"SoP (w/o visual)\" "
            f"baseline of {PAPER}, section IV-B). No class tokens, no grouping: it is what SGN is measured "
            "against, trained with the same front end, data and loss as sgnsep's SGN models. " + subset
        )
    if meta.architecture == "cunet":
        m = meta.model
        return (
            f"A **Conditioned U-Net** checkpoint for sgnsep ({written}), the label-conditioned baseline of "
            f"{CUNET_PAPER}: a control network turns the class label vector into FiLM parameters (eq. 8) that "
            f"scale and shift the U-Net's activations (eq. 9); here FiLM `{inline_code(m.cunet_film_at)}`, "
            f"`{inline_code(m.cunet_film_type)}`, conditioned on `{inline_code(m.cunet_condition)}` labels. It is "
            "trained with the same front end, data and loss as sgnsep's SGN models, as the baseline SGN is "
            "compared with. " + subset
        )
    grouping = "hard (Gumbel-softmax)" if meta.model.hard_grouping else "soft"
    return (
        f"A **Semantic Grouping Network** (SGN) checkpoint for sgnsep, which separates the sound classes you name "
        f"from a recording (architecture `{inline_code(meta.architecture)}`, written by sgnsep "
        f"{inline_code(meta.sgnsep_version)}).\n\n"
        f"SGN follows {PAPER}: learnable class tokens attend over the patches of the mixture's log-frequency "
        f"spectrogram in a transformer, a category-aware grouping step ({grouping}) turns them into one embedding "
        f"per class, and the inner product of each embedding with U-Net features of the spectrogram gives that "
        f"class's mask. Ask for any subset of its {len(meta.classes)} classes in one call; it returns one stem per "
        f"class.\n"
    )


def _classes_section(meta: CheckpointMeta) -> str:
    listed = ", ".join(f"`{inline_code(c, code=True)}`" for c in meta.classes)
    return f"## Classes\n\n{len(meta.classes)} classes, in model order: {listed}.\n"


def _audio_section(meta: CheckpointMeta) -> str:
    a = meta.audio
    seconds = a.segment_samples / a.sample_rate
    rows = [
        ("Sample rate inside the model", f"{a.sample_rate} Hz, mono"),
        ("STFT", f"window {a.n_fft}, hop {a.hop_length} ({a.freq_bins} frequency bins)"),
        ("Network input",
         f"{a.warp_bins} x {a.warp_bins} log-frequency magnitude spectrogram, log(magnitude + {a.log_eps:g})"
         + ("" if a.input_level_db is None else
            f", each segment first scaled to a mean power of {a.input_level_db:g} dB (raised by at most"
            f" {frontend.MAX_LEVEL_BOOST_DB:g} dB)")),
        ("Segment", f"{a.segment_samples} samples ({seconds:.2f} s, {a.segment_frames} frames)"),
    ]
    return (
        "## Audio settings\n\n"
        + markdown_table(("setting", "value"), rows)
        + "\n`sgnsep separate` accepts any sample rate and channel count: masks are computed at the model's rate on "
        "the mono mix and applied to every channel's full-band STFT at the input's rate, so the stems keep the "
        "input's rate and channels and stems + residual equal the input.\n"
    )


def _size_section(meta: CheckpointMeta, num_parameters: int | None, weights_bytes: int | None,
                  weights_sha256: str | None) -> str:
    paper = SGNConfig()
    uses = _ARCHITECTURE_FIELDS[meta.architecture]
    labels = {
        "embed_dim": "embedding size D", "depth": "transformer layers", "num_heads": "attention heads",
        "patch_size": "patch size", "mlp_ratio": "MLP ratio", "unet_ngf": "U-Net base channels (ngf)",
        "unet_depth": "U-Net down/up blocks", "class_tokens": "source class tokens (SCT)",
        "grouping": "category-aware grouping (CAG)", "hard_grouping": "hard grouping",
        "cunet_film_at": "FiLM at", "cunet_film_type": "FiLM type", "cunet_condition": "conditioning labels",
    }
    shown = [k for k in labels if k in uses]
    rows = [(labels[k], cell_value(getattr(meta.model, k)), cell_value(getattr(paper, k))) for k in shown]
    others = [
        f"`{f.name}` = {cell_value(getattr(meta.model, f.name))}"
        for f in fields(SGNConfig)
        if f.name in uses and f.name not in shown and getattr(meta.model, f.name) != getattr(paper, f.name)
    ]
    # The U-Net's reference sizes are Sound of Pixels' (which SGN keeps); the FiLM ones are sgnsep's defaults,
    # the Conditioned U-Net paper's best label-conditioned set-up (Table III, Exp. 9).
    reference = {"sgn": "paper (SGN)", "unet": "paper (SoP U-Net)", "cunet": "default (SoP U-Net, Table III Exp. 9)"}
    text = "## Model size\n\n" + markdown_table(("", "this model", reference[meta.architecture]), rows)
    facts = []
    if num_parameters is not None:
        facts.append(f"{num_parameters:,} parameters ({num_parameters / 1e6:.2f} M)")
    if weights_bytes is not None:
        facts.append(f"`model.safetensors`: {weights_bytes / 1e6:.1f} MB")
    if weights_sha256:
        facts.append(f"sha256 `{inline_code(weights_sha256)}`")
    if facts:
        text += "\n" + "; ".join(facts) + ".\n"
    if others:
        text += "\nOther settings that differ from the paper's defaults: " + ", ".join(others) + ".\n"
    text += ("\nThe weights are safetensors and the config is JSON (`config.json`): loading never unpickles "
             "anything.\n")
    return text


def _training_section(meta: CheckpointMeta) -> str:
    training = dict(meta.training or {})
    if not training:
        return "## Training\n\nThis checkpoint records no training summary.\n"
    config = training.pop("config", None)
    steps = training.pop("steps", None)
    data = training.pop("data", None)
    version = training.pop("sgnsep_version", None)
    training.pop("license", None)
    lines = ["## Training", ""]
    with_version = f" with sgnsep {inline_code(str(version))}" if version else ""
    if steps is not None:
        lines += [f"Trained for {cell_value(steps)} optimisation steps{with_version}.", ""]
    elif with_version:
        lines += [f"Trained{with_version}.", ""]
    if data is None and isinstance(config, dict) and (config.get("dataset") or config.get("data_dir")):
        data = {k: config[k] for k in ("dataset", "data_dir") if config.get(k)}
    lines.append("**Data**: " + (describe_value(data) if data not in (None, "", {}, []) else "not recorded") + ".")
    lines.append("")
    if isinstance(config, dict) and config:
        first = [k for k in _TRAINING_KEYS_FIRST if k in config]
        keys = first + sorted(k for k in config if k not in first)
        rows = [(f"`{inline_code(k)}`", cell_value(config[k])) for k in keys]
        lines += ["**Settings** (`sgnsep train`):", "", markdown_table(("setting", "value"), rows).rstrip("\n"), ""]
    elif config:
        lines += [f"**Settings**: {cell_value(config)}", ""]
    if training:
        lines += ["**Also recorded**:", ""]
        lines += [f"- `{inline_code(k)}`: {cell_value(v)}" for k, v in training.items()]
        lines.append("")
    return "\n".join(lines)


def _scores_section(meta: CheckpointMeta, repo_id: str) -> str:
    metrics = dict(meta.metrics or {})
    how = (f"Measure them with `sgnsep eval --model {repo_id} --data-dir DIR` (SDR/SIR/SAR as mir_eval's "
           "BSS Eval v3, and SI-SDR, next to the unprocessed mixture and oracle masks).")
    if not metrics:
        return f"## Scores\n\nNo scores were recorded in this checkpoint. {how}\n"
    lines = ["## Scores", ""]
    evals = metrics.pop("eval", None)
    if isinstance(evals, dict) and evals:
        intro = ("In dB; a cell is the mean ± std over the scored sources (n of them), or the single number "
                 "recorded.")
        if '"mixture"' in json.dumps(evals, default=str):
            intro += " `mixture` is the unprocessed input and `oracle-*` ideal masks, on the same mixtures."
        lines += [intro, ""]
        for set_name, summary in evals.items():
            lines += [f"### {inline_code(str(set_name))}", ""]
            lines.append(summary_block(summary))
    elif evals not in (None, {}):
        lines += ["### eval", "", json_block(evals)]
    if metrics:
        lines += ["### Other recorded metrics", ""]
        scalars = {k: v for k, v in metrics.items() if is_number(v) or isinstance(v, str)}
        lines += [f"- `{inline_code(k)}`: {cell_value(v)}" for k, v in scalars.items()]
        rest = {k: v for k, v in metrics.items() if k not in scalars}
        if scalars:
            lines.append("")
        if rest:
            lines.append(json_block(rest))
    if len(lines) == 2:
        return f"## Scores\n\nNo scores were recorded in this checkpoint. {how}\n"
    return "\n".join(lines)


def sources_argument(classes: list[str] | tuple[str, ...]) -> str:
    """The ``--sources`` value naming ``classes``, quoted for a POSIX shell.

    Class names come from training folders and config files: a space, ``$(...)``, a quote or ``;`` in one must not
    turn a command that is meant to be copied and run into another command.
    """
    return shlex.quote(",".join(classes))


def _fence(code: str) -> str:
    """A code fence longer than any run of backticks in ``code`` (CommonMark): a class name cannot close it."""
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    return "`" * max(3, longest + 1)


def _usage_section(meta: CheckpointMeta, repo_id: str) -> str:
    shell = f"sgnsep separate song.wav --sources {sources_argument(meta.classes[:2])} --model {repo_id}\n"
    python = (
        "from sgnsep import Separator\n\n"
        f"sep = Separator({json.dumps(repo_id)})\n"
        f"stems = sep.separate(audio, sample_rate, {json.dumps(meta.classes[:2])})  # audio: (channels, samples)\n"
    )
    return (
        "## Usage\n\n"
        "With sgnsep installed:\n\n"
        f"{_fence(shell)}bash\n{shell}{_fence(shell)}\n\n"
        f"One stem per class lands under `separated/`. `--model {repo_id}@REVISION` pins a branch, tag or commit; "
        f"`sgnsep pull {repo_id}` caches it for offline use (`HF_HUB_OFFLINE=1`).\n\n"
        f"{_fence(python)}python\n{python}{_fence(python)}\n"
    )


def _limits_section(meta: CheckpointMeta) -> str:
    sr = meta.audio.sample_rate
    items = [
        f"It only knows its {len(meta.classes)} classes: sounds of other classes are not separated, and a class "
        "that is absent from the recording can still receive some leakage from the others.",
        f"It hears a mono mix at {sr} Hz: stereo placement is not used, and above {sr / 2000:.1f} kHz the masks "
        "repeat the top band's decision.",
        "Quality depends on how close the recording is to the training data (instruments, recording conditions, "
        "number of simultaneous sources); similar timbres in the same range are the hardest to tell apart.",
        "The scores above (if any) were measured on the data named there; measure on your own material with "
        "`sgnsep eval` before relying on it.",
    ]
    return "## Limits\n\n" + "\n".join(f"- {item}" for item in items) + "\n"


def _citation_section(meta: CheckpointMeta) -> str:
    if meta.architecture == "cunet":
        return (
            "## Reference\n\n"
            f"{CUNET_PAPER} (the model), trained as a baseline of {PAPER} with the latter's mix-and-separate "
            "recipe; model sizes and training recipe of this checkpoint are listed above.\n"
        )
    if meta.architecture == "unet":
        return (
            "## Reference\n\n"
            f"The audio U-Net of Sound of Pixels (Zhao et al.), without vision, as the baseline of {PAPER}; model "
            "sizes and training recipe of this checkpoint are listed above.\n"
        )
    return (
        "## Reference\n\n"
        f"{PAPER}. sgnsep implements the paper's network, losses and mix-and-separate training; model sizes and "
        "training recipe of this checkpoint are listed above.\n"
    )
