"""What every command shares: the Typer app, the two consoles, the options several commands take, how an error,
a warning or an interrupt ends a command, and the entry point :func:`main`.

Exit codes: 0 success; 1 internal error or mixed failures; 2 usage; 3 input audio; 4 output (the folder in use
by another run included); 5 model; 6 device; 7 training diverged; 8 nothing detected (separate --sources
auto); 129 hung up (SIGHUP); 130 interrupted (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from sgnsep._version import __version__
from sgnsep.core.errors import SgnsepError


app = typer.Typer(
    name="sgnsep",
    help="Separate the instruments or sound classes you name from a recording (Semantic Grouping Network).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


err = Console(stderr=True)


out = Console()


# Options shared by several commands.
ModelOpt = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        help="Registered model name, local checkpoint folder, or Hub id owner/name\\[@revision].",
    ),
]


DeviceOpt = Annotated[str, typer.Option("--device", "-d", help="auto, cpu, cuda, cuda:N or mps.")]


ModelsOpt = Annotated[
    Optional[list[str]],
    typer.Option(
        "--model",
        "-m",
        help="Registered model name, local checkpoint folder, or Hub id owner/name\\[@revision]. Repeat it to "
        "compare several models on the same mixtures.",
    ),
]


def default_model() -> str:
    from sgnsep.models.registry import DEFAULT_MODEL

    return os.environ.get("SGNSEP_MODEL", DEFAULT_MODEL)


def fail(error: SgnsepError) -> None:
    err.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
    raise typer.Exit(error.exit_code)


class _WarningsToConsole(logging.Handler):
    """The library's logged warnings (e.g. dataset files skipped as unreadable), one line each on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        err.print(f"[yellow]warning:[/] {escape(record.getMessage())}", highlight=False, soft_wrap=True)


def show_library_warnings() -> None:
    logger = logging.getLogger("sgnsep")
    if not any(isinstance(h, _WarningsToConsole) for h in logger.handlers):
        logger.addHandler(_WarningsToConsole(logging.WARNING))


_reported = False  # the interrupt message has been printed (it is printed once)


def interrupted(exc: KeyboardInterrupt, path: Path | None = None) -> None:
    """A stopping signal: remove what is left of the partial outputs, say so once, exit 130 (SIGINT,
    SIGTERM) or 129 (SIGHUP). Further signals are ignored meanwhile (sgnsep/interrupts.py)."""
    global _reported
    from sgnsep.core.atomic_write import discard_partials
    from sgnsep.core.interrupts import Interrupted, ignore_further

    ignore_further()
    stop = exc if isinstance(exc, Interrupted) else Interrupted()
    discard_partials()  # each writer's cleanup has run; this catches one an interrupt kept from starting
    if not _reported:
        _reported = True
        where = f" while processing {escape(str(path))}" if path else ""
        try:
            err.print(f"[bold red]{stop.word}[/]{where}; its partial outputs were removed.", highlight=False,
                      soft_wrap=True)
        except OSError:  # SIGHUP: the terminal may be gone; the exit code still tells
            pass
    raise typer.Exit(stop.exit_code)


def _version_callback(value: bool):
    if value:
        out.print(f"sgnsep {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        Optional[bool], typer.Option("--version", callback=_version_callback, is_eager=True, help="Show the version.")
    ] = None,
):
    """Separate the instruments or sound classes you name from a recording."""


MasksOpt = Annotated[
    str,
    typer.Option(
        "--masks",
        help="shared: where the classes' masks add up to more than 1 in a bin, scale them down to share it "
             "(stems never claim the same energy twice); independent: each mask as the model gives it; "
             "complete: when the classes asked for are all that sound, each bin shared out among them so the "
             "stems add up to the mixture.",
    ),
]


def main() -> None:
    """Console-script entry point: user errors as one line, Ctrl-C/SIGTERM as exit 130 and SIGHUP as 129 (each
    with one message, after the partial outputs are removed), no tracebacks."""
    from sgnsep.core import interrupts

    interrupts.install()
    try:
        try:
            app(standalone_mode=True)  # Typer maps a stray KeyboardInterrupt to exit 130 itself
        finally:
            interrupts.ignore_further()  # the work is over: a signal now must not become a traceback
    except SystemExit as e:
        if interrupts.caught() is not None and not _reported:  # stopped outside the commands' own handlers
            _exit_interrupted(interrupts.Interrupted(interrupts.caught()))
        raise
    except KeyboardInterrupt as exc:  # a signal between the command's end and the lines above
        _exit_interrupted(exc)
    except SgnsepError as e:
        err.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        sys.exit(e.exit_code)
    except Exception as exc:  # a bug: short message unless debugging
        if os.environ.get("SGNSEP_DEBUG"):
            raise
        err.print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {escape(str(exc))}. "
            "Rerun with SGNSEP_DEBUG=1 for a traceback and report it.",
            highlight=False,
        )
        sys.exit(1)


def _exit_interrupted(exc: KeyboardInterrupt) -> None:
    try:
        interrupted(exc)
    except typer.Exit as e:
        sys.exit(e.exit_code)
