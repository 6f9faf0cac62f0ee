"""Speed of two checkouts of sgnsep, A against B, measured in alternation on the same machine.

    git worktree add /tmp/before <commit>
    python benchmarks/compare_checkouts.py /tmp/before .          # A = /tmp/before, B = this checkout

A shared machine drifts by 10-30 % from minute to minute, more than most single optimisations gain, so
two runs of separate_speed.py minutes apart cannot tell them apart. Here every round measures A and B,
each in a fresh process (PYTHONPATH set to the checkout, checked; B first in every other round), and the
table gives the median and the fastest of each over the rounds, and B relative to A. Processes here come
out fast or ~20 % slow as a whole (an A/A comparison of one checkout with itself over 6 rounds gave medians
0.85-1.00 apart): the fastest is the steadier figure, and more rounds steady both.

Cases:

- network: the masks of the 13 model segments covering 60 s, one batch (`Separator._mask_fn`);
- stream: 60 s of 44.1 kHz stereo noise separated chunk by chunk through the buffers `separate_file`
  streams with (`Separator._stream`), nothing written;
- file: `Separator.separate_file` on that audio as a float32 WAV, the stems written into an empty folder;

each with 2 and with 8 classes, the default model, on the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

CASES = [(what, n) for what in ("network", "stream", "file") for n in (2, 8)]


def child(checkout: str, repeats: int) -> None:
    """Runs in the fresh process: time every case `repeats` times, print {case: best seconds} as JSON."""
    import shutil
    import tempfile
    import time

    import soundfile as sf
    import torch

    import sgnsep
    from sgnsep import Separator

    if not Path(sgnsep.__file__).resolve().is_relative_to(Path(checkout).resolve()):
        raise SystemExit(f"imported sgnsep from {sgnsep.__file__}, not from {checkout}")
    sep = Separator("sgn-gm-small", device="cpu")
    a = sep.meta.audio
    segments = int(np.ceil(60 * a.sample_rate / a.segment_samples / (1 - sep.overlap)))
    torch.manual_seed(0)
    net_in = torch.randn(segments, 1, a.warp_bins, a.segment_frames)
    audio = (0.1 * np.random.default_rng(0).standard_normal((2, 60 * 44100))).astype(np.float32)
    tmp = Path(tempfile.mkdtemp())
    try:
        wav = tmp / "noise.wav"
        sf.write(wav, audio.T, 44100, subtype="FLOAT")
        result = {}
        for what, n in CASES:
            classes = sep.classes[:n]
            setup = lambda: None  # noqa: E731
            if what == "network":
                mask_fn = sep._mask_fn(list(range(n)))
                run = lambda: mask_fn(net_in)  # noqa: E731
            elif what == "stream":
                run = lambda: [None for _ in sep._stream(  # noqa: E731
                    lambda s, e: audio[:, s:e], audio.shape[1], 2, 44100, list(range(n)))]
            else:
                setup = lambda: shutil.rmtree(tmp / "out", ignore_errors=True)  # noqa: E731  (empty, as a first run)
                run = lambda: sep.separate_file(wav, classes, out_dir=tmp / "out")  # noqa: E731
            setup()
            run()  # warm-up
            times = []
            for _ in range(repeats):
                setup()
                start = time.perf_counter()
                run()
                times.append(time.perf_counter() - start)
            result[f"{what} {n}"] = min(times)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result))


def measure(checkout: Path, repeats: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    proc = subprocess.run([sys.executable, __file__, "--child", str(checkout), "--repeats", str(repeats)],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{checkout}: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", type=Path, nargs="?", help="checkout A (the baseline)")
    ap.add_argument("b", type=Path, nargs="?", help="checkout B")
    ap.add_argument("--rounds", type=int, default=5, help="A-then-B rounds; the table gives medians over them")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per case in each process (best kept)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.repeats)
        return
    if args.a is None or args.b is None:
        ap.error("give two checkouts, A and B")
    for path in (args.a, args.b):
        if not (path / "sgnsep" / "__init__.py").is_file():
            ap.error(f"{path} is not a checkout of sgnsep (no sgnsep/__init__.py)")
    if args.rounds < 1 or args.repeats < 1:
        ap.error("--rounds and --repeats must be at least 1")
    runs: dict[str, list[dict[str, float]]] = {"a": [], "b": []}
    for i in range(args.rounds):
        # A first in even rounds, B first in odd ones: whatever favours the first (or second) process of a
        # round falls on both alike.
        for key in ("a", "b") if i % 2 == 0 else ("b", "a"):
            runs[key].append(measure(args.a if key == "a" else args.b, args.repeats))
    print(f"A = {args.a}, B = {args.b}; {args.rounds} rounds, each case the best of {args.repeats} runs per process, "
          f"{os.cpu_count()} CPUs\n")
    print(f"| case (60 s of audio) | A, median of {args.rounds} | B, median | B / A | A, fastest | B, fastest | B / A |"
          "\n|---|---|---|---|---|---|---|")
    for what, n in CASES:
        key = f"{what} {n}"
        a, b = (float(np.median([r[key] for r in runs[k]])) for k in ("a", "b"))
        a_min, b_min = (min(r[key] for r in runs[k]) for k in ("a", "b"))
        print(f"| {what}, {n} classes | {a:.3f} s | {b:.3f} s | {b / a:.2f} | {a_min:.3f} s | {b_min:.3f} s | "
              f"{b_min / a_min:.2f} |")


if __name__ == "__main__":
    main()
