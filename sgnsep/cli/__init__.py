"""The `sgnsep` command line: each command parses its options, calls the library and renders the result; all
behaviour lives in the library. `common` holds the app, the shared options, error and interrupt handling and
the entry point :func:`main`; each other module is one command or group (`separate`, `analysis` for detect and
embed, `models`, `evaluate`, `train`, `data`, `hub` for pull and push), imported here in the order `--help`
lists them.
"""

# Importing a command module registers its commands on the app, in this order.
from sgnsep.cli import separate, analysis, models, evaluate, train, data, hub  # noqa: F401,I001
from sgnsep.cli.common import app, main

__all__ = ["app", "main"]
