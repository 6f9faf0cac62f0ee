"""Render the bundled chorale stems test sets (sgnsep.synth.render_chorale_stems).

    python benchmarks/make_testsets.py [--out sgnsep/data/testset] [--tracks 20] [--overwrite]

Writes two evaluation sets of real four-part music in the stems layout (``<set>/<track>/<class>.flac``,
mono 11025 Hz FLAC PCM_16, seed 0), every track one Bach chorale of the test split, every voice a
different instrument of all 17 classes, from the installed soundfonts among FluidR3_GM,
MuseScore_General_Lite and TimGM6mb:

    chorales-2src/   2 voices a track, 6 s
    chorales-3src/   3 voices a track, 6 s

Prints the size and rendering time of each set. The output is byte-identical from run to run on the same
soundfonts and library versions. ``--overwrite`` first deletes the files a previous run listed in its
metadata.json (and nothing else). Evaluate with ``sgnsep eval <set folder> ...``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

# run from a checkout without installing
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sgnsep.synth import chorale_stems, corpus_files, instruments
from sgnsep.core.errors import SgnsepError  # noqa: E402

SETS = (("chorales-2src", 2), ("chorales-3src", 3))


def _remove_previous(out: Path) -> None:
    """Delete the stems and metadata.json of a set rendered before, then the folders they leave empty."""
    meta = out / "metadata.json"
    if not meta.is_file():
        return
    manifest = json.loads(meta.read_text())
    if manifest.get("format") != corpus_files.STEMS_FORMAT:
        raise SystemExit(f"{meta} is not a {corpus_files.STEMS_FORMAT} set; not deleting anything.")
    for track in manifest.get("tracks", []):
        for stem in track["stems"].values():
            (out / stem["path"]).unlink(missing_ok=True)
        folder = out / track["track_id"]
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    meta.unlink()


def _size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def _render(out: Path, num_sources: int, args: argparse.Namespace) -> dict:
    return chorale_stems.render_chorale_stems(
        out,
        tracks=args.tracks,
        num_sources=num_sources,
        seconds=args.seconds,
        sample_rate=args.sample_rate,
        seed=args.seed,
        classes=list(instruments.INSTRUMENTS),
        split="test",
        subtype="PCM_16",
        fmt="flac",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "sgnsep" / "data" / "testset", help="parent folder")
    parser.add_argument("--tracks", type=int, default=20, help="tracks per set (default 20)")
    parser.add_argument("--seconds", type=float, default=6.0, help="track length (default 6)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sample-rate", type=int, default=11025)
    parser.add_argument("--overwrite", action="store_true", help="replace sets rendered before")
    args = parser.parse_args(argv)

    total_bytes, total_wall = 0, 0.0
    for name, num_sources in SETS:
        out = args.out / name
        if args.overwrite:
            _remove_previous(out)
        start = time.perf_counter()
        try:
            manifest = _render(out, num_sources, args)
        except SgnsepError as exc:
            print(f"error: {exc}", file=sys.stderr)
            if out.is_dir() and any(out.iterdir()):
                print("hint: pass --overwrite to replace a set rendered before.", file=sys.stderr)
            return 1
        wall = time.perf_counter() - start
        size = _size(out)
        total_bytes += size
        total_wall += wall
        counts = ", ".join(f"{c} {n}" for c, n in sorted(manifest["class_counts"].items()))
        print(
            f"{name}: {manifest['n_tracks']} tracks x {num_sources} stems, "
            f"{len(manifest['chorales'])} chorales, soundfonts "
            f"{sorted({t['soundfont'] for t in manifest['tracks']})}, "
            f"skipped {manifest['skipped']['n_tracks']} tracks ({manifest['skipped']['n_silent']} silent), "
            f"{size / 1e6:.2f} MB, {wall:.1f} s"
        )
        print(f"  classes: {counts}")
    print(f"total: {total_bytes / 1e6:.2f} MB ({total_bytes} bytes), {total_wall:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
