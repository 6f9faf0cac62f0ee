"""`sgnsep pull` and `sgnsep push`: checkpoints to and from the Hugging Face Hub."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from sgnsep.cli.common import app, err, fail, interrupted, show_library_warnings
from sgnsep.core.errors import SgnsepError


@app.command(help="Fetch a model from the Hugging Face Hub into the local cache, for offline use later.\n\n"
             "[bold]Example[/]\n\n  sgnsep pull owner/name@v1 && HF_HUB_OFFLINE=1 sgnsep separate song.wav -s violin -m owner/name@v1")
def pull(
    repo: Annotated[str, typer.Argument(help="Hub id owner/name[@revision], or a registered model name.")],
):
    from sgnsep.hub.download import download_checkpoint
    from sgnsep.hub.repo_id import parse_repo_id
    from sgnsep.models.checkpoint import read_meta
    from sgnsep.models.registry import REGISTRY

    show_library_warnings()  # e.g. that a damaged cached file is being downloaded again
    try:
        if repo in REGISTRY:
            repo_id, revision = REGISTRY[repo].repo_id, REGISTRY[repo].revision
        else:
            repo_id, revision = parse_repo_id(repo)
        folder = download_checkpoint(repo_id, revision)
        meta = read_meta(folder)
    except SgnsepError as e:
        fail(e)
    err.print(f"[green]cached[/] {repo_id}@{revision or 'main'} in {escape(str(folder))} ({len(meta.classes)} classes).", highlight=False)
    sys.stdout.write(f"{folder}\n")


PUSH_HELP = (
    "Publish a trained checkpoint folder to the Hugging Face Hub, with a generated model card.\n\n"
    "[bold]Examples[/]\n\n"
    "  sgnsep push --model runs/x/best --repo owner/name\n\n"
    "  sgnsep push --model runs/x/best --repo owner/name --revision candidate --private --message \"2000 steps\"\n\n"
    "One commit holds config.json, model.safetensors (checked to load strictly first) and a README.md model card "
    "(classes, audio settings, size, training summary, recorded scores, usage). The repo, and a branch other than "
    "main, are created when missing.\n\n"
    "The token comes from --token, else HF_TOKEN, else `hf auth login`; HF_ENDPOINT points at another Hub. Then "
    "anyone with access can run: sgnsep separate song.wav --sources violin --model owner/name"
)


@app.command(help=PUSH_HELP)
def push(
    model: Annotated[
        Path,
        typer.Option("--model", "-m", help="Checkpoint folder (config.json + model.safetensors), e.g. runs/x/best.",
                     readable=False),
    ],
    repo: Annotated[str, typer.Option("--repo", "-r", help="Hub repo id owner/name\\[@branch]; created if missing.")],
    revision: Annotated[
        Optional[str], typer.Option("--revision", help="Branch to commit to (default main); created if missing.")
    ] = None,
    private: Annotated[
        bool, typer.Option("--private", help="Create the repo as private (if it does not exist).")
    ] = False,
    message: Annotated[Optional[str], typer.Option("--message", help="Commit message.")] = None,
    token: Annotated[
        Optional[str],
        typer.Option("--token", help="Hugging Face token with write access (default: HF_TOKEN or `hf auth login`)."),
    ] = None,
):
    from rich.markup import escape

    from sgnsep.hub.push import push_checkpoint

    try:
        err.print(f"Checking {escape(str(model))} and pushing it to {escape(repo)}...", highlight=False,
                  soft_wrap=True)
        result = push_checkpoint(model, repo, revision=revision, private=private, token=token, message=message)
    except SgnsepError as e:
        fail(e)
    except KeyboardInterrupt as exc:
        interrupted(exc)
    spec = result.repo_id if result.revision == "main" else f"{result.repo_id}@{result.revision}"
    if result.changed:
        err.print(
            f"[green]pushed[/] {escape(str(model))} to {escape(result.repo_url)} (branch {escape(result.revision)}, "
            f"commit {result.commit_id[:12]}: {', '.join(result.files)}).",
            highlight=False,
            soft_wrap=True,
        )
    else:
        err.print(
            f"[green]up to date[/] {escape(result.repo_url)} (branch {escape(result.revision)}) already holds these "
            f"files (commit {result.commit_id[:12]}); no new commit was made.",
            highlight=False,
            soft_wrap=True,
        )
    from sgnsep.hub.card import sources_argument

    sources = sources_argument(result.classes[:2]) if result.classes else "CLASSES"  # quoted: names may hold $(...)
    err.print(f"Use it with: sgnsep separate song.wav --sources {escape(sources)} --model {escape(spec)}",
              highlight=False, soft_wrap=True)
    sys.stdout.write(f"{result.commit_url}\n")
