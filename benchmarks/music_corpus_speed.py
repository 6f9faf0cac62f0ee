"""Speed of `sgnsep data music`: audio rendered per CPU second, and what a corpus of a given size costs.

    python benchmarks/music_corpus_speed.py --minutes 3 [--soundfonts family:fluidr3,timgm6mb]

Builds a corpus of ``--minutes`` of stems twice into a temporary folder, in one process on one thread:

- ``cold``: a fresh process (soundfonts loaded and presets probed, pieces parsed with music21 into an empty
  score cache, then rendered): what a first run pays;
- ``warm``: the same command again with another seed (soundfonts and probes in memory, the cache warm for the
  pieces both seeds draw): what each further hour of a long run costs, since the setup is paid once.

CPU seconds are this process's (``time.process_time``), so a busy machine slows the wall clock more than
these. Prints JSON: stem-audio seconds per CPU second for each run, and the share of the cold run's CPU
time spent in setup (listing, soundfont loading and probing), parsing and rendering.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from sgnsep.synth import instruments, music_corpus, score_library, scores, soundfont_presets  # noqa: E402


def _timed(fn, *args, **kw):
    c0, w0 = time.process_time(), time.perf_counter()
    out = fn(*args, **kw)
    return out, time.process_time() - c0, time.perf_counter() - w0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=3.0, help="minutes of stems per run")
    ap.add_argument("--soundfonts", default="", help="comma-separated, as `data music --soundfonts` (default: all)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    fonts = [s for s in args.soundfonts.split(",") if s] or None
    report: dict = {"minutes": args.minutes, "soundfonts": fonts or "all installed"}
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "scores"
        resolved = soundfont_presets.resolve_soundfonts(fonts)
        _, setup_cpu, _ = _timed(lambda: (score_library.list_pieces(), scores.chorale_ids(),
                                          soundfont_presets.usable_presets(resolved, instruments.resolve_classes(None), 11025)))
        parse_cpu = [0.0]
        real_load = score_library.load_piece

        def load(piece, cache_dir=None):
            c0 = time.process_time()
            try:
                return real_load(piece, cache_dir)
            finally:
                parse_cpu[0] += time.process_time() - c0

        score_library.load_piece = load
        for name, seed in (("cold", args.seed), ("warm", args.seed + 1)):
            parse_cpu[0] = 0.0
            m, cpu, wall = _timed(music_corpus.build_music_corpus, Path(tmp) / name, hours=args.minutes / 60,
                                  seed=seed, soundfonts=fonts, score_cache=cache)
            audio = m["totals"]["stem_hours"] * 3600
            report[name] = {
                "stem_seconds": round(audio, 1), "tracks": m["totals"]["tracks"], "stems": m["totals"]["stems"],
                "cpu_seconds": round(cpu + (setup_cpu if name == "cold" else 0.0), 2), "wall_seconds": round(wall, 2),
                "parse_cpu_seconds": round(parse_cpu[0], 2),
                "audio_seconds_per_cpu_second": round(audio / (cpu + (setup_cpu if name == "cold" else 0.0)), 1),
                "render_audio_seconds_per_cpu_second": round(audio / max(1e-9, cpu - parse_cpu[0]), 1),
                "disk_bytes": sum(p.stat().st_size for p in (Path(tmp) / name).rglob("*") if p.is_file()),
            }
        report["setup_cpu_seconds"] = round(setup_cpu, 2)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
