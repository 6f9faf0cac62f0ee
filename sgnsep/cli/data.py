"""`sgnsep data synth | chorales | music`: the offline corpora rendered from soundfonts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from sgnsep.cli.common import app, err, fail, interrupted
from sgnsep.core.errors import SgnsepError, UsageError


data_app = typer.Typer(help="Make datasets.", no_args_is_help=True)


app.add_typer(data_app, name="data")


def _synth_extra_missing(command: str, exc: ImportError) -> UsageError:
    return UsageError(f"`sgnsep data {command}` needs the synth extra ({exc.name} is missing).",
                      hint="pip install --no-deps tinysoundfont && pip install 'sgnsep[synth]'")


# Options several data commands take.
ClassesOpt = Annotated[str, typer.Option("--classes", help="Comma-separated classes (default: all).")]
SoundfontsOpt = Annotated[str, typer.Option("--soundfonts", help="Comma-separated soundfont keys or paths (default: all found).")]
SeedOpt = Annotated[int, typer.Option("--seed")]
SampleRateOpt = Annotated[int, typer.Option("--sample-rate")]


def _names(text: str) -> list[str] | None:
    """A comma-separated option as a list of names; None when it is empty (the library's "all")."""
    return [x.strip() for x in text.split(",")] if text else None


def _wrote(what: str, out_dir: Path) -> None:
    err.print(f"[green]wrote[/] {what} to {escape(str(out_dir))} (metadata in {escape(str(out_dir / 'metadata.json'))}).",
              highlight=False)


def _render_corpus(command: str, out_dir: Path, render: Callable[[], dict]) -> dict:
    """``render()`` (which imports its renderer) under the data commands' handling: a library error as one line,
    a missing synth extra as what to install, an interrupt as the removal of the partial outputs."""
    try:
        return render()
    except SgnsepError as e:
        fail(e)
    except ImportError as exc:
        fail(_synth_extra_missing(command, exc))
    except KeyboardInterrupt as exc:
        interrupted(exc, out_dir)


@data_app.command("synth", help="Render an offline corpus of solo instrument clips from General MIDI soundfonts.")
def data_synth(
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Output folder (solos layout).")],
    classes: ClassesOpt = "",
    soundfonts: SoundfontsOpt = "",
    clips_per_class: Annotated[int, typer.Option("--clips-per-class")] = 40,
    clip_seconds: Annotated[float, typer.Option("--clip-seconds")] = 10.0,
    seed: SeedOpt = 0,
    overwrite: Annotated[
        bool,
        typer.Option("--overwrite", help="Render into a folder that holds a corpus or other files: replaces the "
                                         "previous corpus and files of the names it writes, keeps all others."),
    ] = False,
):
    def render():
        from sgnsep.synth import solos

        return solos.synthesize_corpus(
            out_dir,
            classes=_names(classes),
            soundfonts=_names(soundfonts),
            clips_per_class=clips_per_class, clip_seconds=clip_seconds, seed=seed, overwrite=overwrite,
        )

    manifest = _render_corpus("synth", out_dir, render)
    _wrote(f"{len(manifest.get('clips', []))} clips", out_dir)


@data_app.command(
    "chorales",
    help="Render Bach chorales played by several instruments, one stem per voice (stems layout): coherent "
    "multi-instrument music for training (--split train, with `train --dataset stems --set coherent=...`) or "
    "evaluation (--split test, with `sgnsep eval`).",
)
def data_chorales(
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="New or empty output folder (stems layout).")],
    split: Annotated[str, typer.Option("--split", help="Chorales of this split of the corpus: train, val or test.")] = "train",
    tracks: Annotated[int, typer.Option("--tracks", help="Tracks to render (a chorale is reused with new instruments once all are used).")] = 100,
    voices: Annotated[int, typer.Option("--voices", help="Voices (stems) per track, 1..4.")] = 4,
    seconds: Annotated[float, typer.Option("--seconds", help="Track length.")] = 10.0,
    classes: ClassesOpt = "",
    soundfonts: SoundfontsOpt = "",
    sample_rate: SampleRateOpt = 11025,
    seed: SeedOpt = 0,
    overwrite: Annotated[
        bool,
        typer.Option("--overwrite", help="Replace a chorale set rendered into --out before (only its files; a "
                                         "folder that holds other files is still refused)."),
    ] = False,
):
    def render():
        from sgnsep.synth import chorale_stems

        if not 1 <= voices <= 4:
            raise UsageError(f"--voices must be between 1 and 4 (a chorale has four voices), got {voices}.")
        return chorale_stems.render_chorale_stems(
            out_dir, tracks=tracks, num_sources=voices, seconds=seconds, sample_rate=sample_rate, seed=seed,
            classes=_names(classes),
            soundfonts=_names(soundfonts),
            split=split, overwrite=overwrite,
        )

    manifest = _render_corpus("chorales", out_dir, render)
    _wrote(f"{len(manifest.get('tracks', []))} tracks", out_dir)


@data_app.command(
    "music",
    help="Render a training corpus of performed multi-part music from music21's corpus (stems layout): 1..4 "
    "parts of a piece per track on instruments in their ranges, with dynamics, vibrato, rubato, rooms, EQ and "
    "noise, from every allowed soundfont and preset; splits by piece; metadata.json describes every stem. "
    "Train on it with `train --dataset stems --data-dir DIR --set coherent=...`.",
)
def data_music(
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="New or empty output folder (stems layout).")],
    hours: Annotated[float, typer.Option("--hours", help="Hours of audio to render, summed over stems.")] = 1.0,
    seed: SeedOpt = 0,
    soundfonts: Annotated[str, typer.Option("--soundfonts", help="Comma-separated soundfont keys, family:NAME (fluidr3, timgm6mb) or paths (default: all found).")] = "",
    classes: ClassesOpt = "",
    min_seconds: Annotated[float, typer.Option("--min-seconds", help="Shortest track.")] = 10.0,
    max_seconds: Annotated[float, typer.Option("--max-seconds", help="Longest track.")] = 30.0,
    max_sources: Annotated[int, typer.Option("--max-sources", help="Most stems per track, 1..4.")] = 4,
    sample_rate: SampleRateOpt = 11025,
    score_cache: Annotated[Optional[Path], typer.Option("--score-cache", help="Folder for the parsed note lists (default: $SGNSEP_SCORE_CACHE or ~/.cache/sgnsep/scores).")] = None,
    mixtures: Annotated[bool, typer.Option("--mixtures", help="Also write each track's mixture.wav (the exact sum of its stems, float).")] = False,
    only_splits: Annotated[str, typer.Option("--only-splits", help="Render only pieces of these splits (comma-separated: train, val, test); a piece's split does not change, so `--soundfonts family:timgm6mb --only-splits val,test` makes held-out validation and test music for a corpus of the other family.")] = "",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a music corpus already in --out.")] = False,
):
    shown = [0]

    def progress(done: float, total: float) -> None:  # a line per tenth, so a long run shows it is alive
        tenth = int(10 * done / total)
        if tenth > shown[0]:
            shown[0] = tenth
            err.print(f"  {done / 3600:.2f} of {total / 3600:.2f} h rendered", highlight=False)

    def render():
        from sgnsep.synth import music_corpus

        return music_corpus.build_music_corpus(
            out_dir, hours=hours, seed=seed, track_seconds=(min_seconds, max_seconds), max_sources=max_sources,
            sample_rate=sample_rate, mixtures=mixtures, overwrite=overwrite, progress=progress,
            only_splits=_names(only_splits),
            soundfonts=_names(soundfonts),
            classes=_names(classes),
            score_cache=score_cache if score_cache is not None else True,
        )

    manifest = _render_corpus("music", out_dir, render)
    t = manifest["totals"]
    fams = ", ".join(f"{f} {v / 3600:.2f} h" for f, v in t["family_seconds"].items())
    err.print(
        f"[green]wrote[/] {t['tracks']} tracks, {t['stems']} stems ({t['stem_hours']:.2f} h of stems, "
        f"{t['track_hours']:.2f} h of tracks; {fams}; train/val/test tracks "
        f"{t['split_tracks']['train']}/{t['split_tracks']['val']}/{t['split_tracks']['test']}) to "
        f"{escape(str(out_dir))} in {manifest['timing']['wall_seconds']:.0f} s (metadata in "
        f"{escape(str(out_dir / 'metadata.json'))}).",
        highlight=False,
    )
