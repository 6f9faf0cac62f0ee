"""The Markdown of a model card's numbers: the checks on the metadata a card is made from
(:func:`check_card_metadata`), and the tables and blocks that show scores and statistics."""

from __future__ import annotations

import json
import math
from typing import Any

from sgnsep.core.errors import ModelError
from sgnsep.models.checkpoint import CheckpointMeta


# Summary statistics of one metric, as sgnsep.evaluation.evaluate.EvalReport.summary() writes them.
_STAT_KEYS = ("mean", "median", "std", "n")


def _type_name(value: Any) -> str:
    return "null" if value is None else {bool: "true/false", int: "number", float: "number", str: "text",
                                         list: "list", dict: "object"}.get(type(value), type(value).__name__)


def check_card_metadata(meta: CheckpointMeta, *, where: str = "the checkpoint's config.json") -> None:
    """Refuse, naming the field, a value the card would misstate or cannot show.

    A checkpoint's ``training`` and ``metrics`` records are free-form JSON, and loading a model does not need them;
    publishing one does: a licence that is not a string would silently become the default licence, a version that
    is not a string would be shown as "None", a count of 1.5 or NaN items cannot be shown as a count, and a number
    too large for a float cannot be shown at all (Python refuses to convert it).
    """
    checks = [("sgnsep_version", meta.sgnsep_version)]
    training = meta.training or {}
    checks += [(f"training.{key}", training[key]) for key in ("license", "sgnsep_version") if key in training]
    for field, value in checks:
        if not isinstance(value, str):
            shown = "null" if value is None else f"{_type_name(value)} {json.dumps(value, default=str)[:40]}"
            raise ModelError(f"{where}: \"{field}\" must be text (a string), got {shown}.",
                             hint="Fix that field in config.json (or remove it) and push again.")
    _check_numbers(meta.training, "training", where, scores=False)
    _check_numbers(meta.metrics, "metrics", where, scores=True)


def _check_numbers(value: Any, path: str, where: str, *, scores: bool) -> None:
    """Every number under ``value`` can be shown; in scores (``metrics``), every ``n`` is a count."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_numbers(item, f"{path}.{key}", where, scores=scores)
            if scores and key == "n" and item is not None and not (
                    is_number(item) and math.isfinite(item) and item >= 0 and float(item).is_integer()):
                raise ModelError(f"{where}: \"{path}.{key}\" must be a count (a whole number of 0 or more), got "
                                 f"{json.dumps(item, default=str)[:40]}.",
                                 hint="Fix that field in config.json (or remove it) and push again.")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_numbers(item, f"{path}[{index}]", where, scores=scores)
    elif isinstance(value, int) and not isinstance(value, bool):
        try:
            float(value)
        except OverflowError:
            raise ModelError(f"{where}: \"{path}\" is a number of {len(str(abs(value)))} digits, too large to show.",
                             hint="Fix that field in config.json (or remove it) and push again.") from None


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_stat(value: Any) -> bool:
    """A single number, or a {mean, median, std, n} summary of one metric."""
    return is_number(value) or (isinstance(value, dict) and is_number(value.get("mean")))


def _stat_cell(value: Any) -> str:
    if is_number(value):
        return _number(float(value))
    text = _number(float(value["mean"]))
    if is_number(value.get("std")):
        text += f" ± {_number(float(value['std']))}"
    if is_number(value.get("n")):
        text += f" (n={int(value['n'])})"
    return text


def _metric_columns(rows: list[dict[str, Any]]) -> list[str]:
    columns: list[str] = []
    for row in rows:
        for key, value in row.items():
            if _is_stat(value) and key not in columns:
                columns.append(key)
    return columns


def summary_block(summary: Any) -> str:
    """One scores table for an evaluation summary; JSON when the structure is not one of the known shapes.

    Shapes: ``{metric: stat}``; ``{method: {metric: stat}}``; ``{method: {group: {metric: stat}}}`` (what
    ``sgnsep eval`` / :meth:`sgnsep.evaluation.evaluate.EvalReport.summary` writes); each optionally wrapped as
    ``{"summary": ..., "data": {...}}`` (:meth:`EvalReport.to_json`). A stat is a number or ``{mean, std, ...}``.
    """
    data_note = ""
    if isinstance(summary, dict) and isinstance(summary.get("summary"), dict):
        data = summary.get("data")
        if isinstance(data, dict) and data:
            data_note = "Data: " + ", ".join(f"{inline_code(str(k))} = {cell_value(v)}" for k, v in data.items()) + ".\n\n"
        summary = summary["summary"]
    if not isinstance(summary, dict) or not summary:
        return json_block(summary)

    if all(_is_stat(v) for v in summary.values()):  # {metric: stat}
        columns = list(summary)
        return data_note + markdown_table([_header(c) for c in columns], [[_stat_cell(summary[c]) for c in columns]])

    if all(isinstance(v, dict) and v and all(_is_stat(x) for x in v.values()) for v in summary.values()):
        columns = _metric_columns(list(summary.values()))  # {method: {metric: stat}}
        rows = [[f"`{inline_code(str(method))}`", *(_stat_cell(v[c]) if c in v else "-" for c in columns)]
                for method, v in summary.items()]
        return data_note + markdown_table(["method", *(_header(c) for c in columns)], rows)

    def is_group_map(v: Any) -> bool:
        return isinstance(v, dict) and all(
            isinstance(g, dict) and all(_is_stat(x) or k in _STAT_KEYS or isinstance(x, dict) for k, x in g.items())
            for g in v.values()
        )

    if all(is_group_map(v) for v in summary.values()):  # {method: {group: {metric: stat}}}
        notes = []
        table_rows: list[list[str]] = []
        all_groups = [g for v in summary.values() for name, g in v.items() if name != "silent"]
        columns = _metric_columns(all_groups)
        if not columns:
            return json_block(summary)
        for method, groups in summary.items():
            names = (["overall"] if "overall" in groups else []) + sorted(
                g for g in groups if g not in ("overall", "silent"))
            for i, group in enumerate(names):
                stats = groups[group]
                table_rows.append([f"`{inline_code(str(method))}`" if i == 0 else "", inline_code(str(group)),
                                   *(_stat_cell(stats[c]) if _is_stat(stats.get(c)) else "-" for c in columns)])
            silent = groups.get("silent")
            if isinstance(silent, dict) and silent:
                counts = ", ".join(f"{inline_code(str(k))} {cell_value(v.get('n') if isinstance(v, dict) else v)}"
                                   for k, v in silent.items())
                notes.append(f"`{inline_code(str(method))}`: left out of the means as silent: {counts}.")
        text = data_note + markdown_table(["method", "class", *(_header(c) for c in columns)], table_rows)
        if notes:
            text += "\n" + "\n".join(f"- {n}" for n in notes) + "\n"
        return text

    return data_note + json_block(summary)


_METRIC_NAMES = {"sdr": "SDR", "sir": "SIR", "sar": "SAR", "sdri": "SDRi", "si-sdr": "SI-SDR", "si-sdri": "SI-SDRi",
                 "si_sdr": "SI-SDR", "si_sdri": "SI-SDRi"}


def _header(metric: str) -> str:
    return inline_code(_METRIC_NAMES.get(metric.lower(), metric))


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value) or math.isinf(value):
        return str(value)
    return f"{value:.2f}" if abs(value) >= 0.01 or value == 0 else f"{value:.3g}"


def cell_value(value: Any) -> str:
    """A value as inline markdown (short structures as compact JSON)."""
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "no", None: "-"}[value]
    if is_number(value):
        return f"{value:.4g}" if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return inline_code(value) if value else '""'
    text = json.dumps(value, separators=(", ", ": "), sort_keys=False)
    return f"`{inline_code(text, code=True)}`"


def describe_value(data: Any) -> str:
    if isinstance(data, dict):
        return ", ".join(f"`{inline_code(str(k))}`: {cell_value(v)}" for k, v in data.items())
    return cell_value(data)


def inline_code(text: str, *, code: bool = False) -> str:
    """Text that stays on one line and inside one table cell."""
    text = " ".join(str(text).split())
    text = text.replace("|", "\\|")
    return text.replace("`", "'") if code else text


def markdown_table(header: list[str] | tuple[str, ...], rows: list[list[str]] | list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def json_block(value: Any) -> str:
    return "```json\n" + json.dumps(value, indent=2, default=str) + "\n```\n"
