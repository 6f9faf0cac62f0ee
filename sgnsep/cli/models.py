"""`sgnsep models`: the registered models, as a table or JSON."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.table import Table

from sgnsep.cli.common import app, out


@app.command(help="List the registered models: classes, sample rate, size and where the weights come from.")
def models(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
):
    from sgnsep.models.registry import describe_models

    rows = describe_models()
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table(title="sgnsep models")
    for col in ("name", "classes", "rate", "size", "source"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["name"] + (" (default)" if r["default"] else ""),
            ", ".join(r["classes"]) if r["classes"] else "fetched on first use",
            f"{r['sample_rate']} Hz" if r["sample_rate"] else "-",
            f"{r['size_mb']} MB" if r["size_mb"] else "-",
            r["source"],
        )
    out.print(table)
    out.print("Any checkpoint folder or Hub id works too: --model ./runs/x or --model owner/name@revision.")
