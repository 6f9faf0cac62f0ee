"""Time sgnsep.evaluation.metrics.bss_eval against mir_eval's bss_eval_sources (no permutation).

    python benchmarks/metrics_speed.py [--sources 2 3] [--length 65535] [--repeats 3]

Both run on the same random signals (references: white noise; estimates: a leaky mixture of
the references plus noise). Prints the best and median wall time of each, the speed ratio
and the largest absolute difference of SDR/SIR/SAR in dB. Needs mir_eval (pip install
"mir_eval<0.9"). Timings with OpenBLAS on a machine whose cores are busy with other work
can be very noisy; OPENBLAS_NUM_THREADS=1 makes them steadier.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

# run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sgnsep.evaluation.metrics import bss_eval


def _time(fn, repeats: int) -> tuple[list[float], object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return times, out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sources",
        type=int,
        nargs="+",
        default=[2, 3],
        help="source counts (default: 2 3)",
    )
    parser.add_argument(
        "--length", type=int, default=65535, help="samples per signal (default: 65535)"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="timed runs of each implementation (default: 3)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    try:
        from mir_eval.separation import bss_eval_sources
    except ImportError:
        print("mir_eval is not installed: pip install 'mir_eval<0.9'", file=sys.stderr)
        return 1
    # mir_eval 0.8 deprecates its separation module
    warnings.simplefilter("ignore", FutureWarning)

    rows = []
    for n_src in args.sources:
        rng = np.random.default_rng(args.seed + n_src)
        refs = rng.standard_normal((n_src, args.length))
        mixing = np.eye(n_src) + 0.3 * rng.standard_normal((n_src, n_src))
        ests = mixing @ refs + 0.1 * rng.standard_normal((n_src, args.length))

        ours_t, ours = _time(lambda r=refs, e=ests: bss_eval(r, e), args.repeats)
        mir_t, mir = _time(
            lambda r=refs, e=ests: bss_eval_sources(r, e, compute_permutation=False),
            args.repeats,
        )
        diff = max(
            float(np.max(np.abs(np.asarray(m) - ours[k])))
            for m, k in zip(mir[:3], ("sdr", "sir", "sar"))
        )
        rows.append(
            (
                f"{n_src} x {args.length}",
                f"{min(mir_t):.3f} / {statistics.median(mir_t):.3f}",
                f"{min(ours_t):.3f} / {statistics.median(ours_t):.3f}",
                f"{statistics.median(mir_t) / statistics.median(ours_t):.1f}x",
                f"{diff:.1e}",
                " ".join(f"{v:.2f}" for v in ours["sdr"]),
            )
        )

    header = (
        "sources x samples",
        "mir_eval s (best/median)",
        "sgnsep s (best/median)",
        "speed-up",
        "max |diff| dB",
        "SDR dB",
    )
    title = f"BSS Eval v3, compute_permutation=False, {args.repeats} runs each"
    try:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title)
        for name in header:
            table.add_column(name, justify="right")
        for row in rows:
            table.add_row(*row)
        Console().print(table)
    except ImportError:
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
        print(title)
        print("  ".join(h.rjust(w) for h, w in zip(header, widths)))
        for row in rows:
            print("  ".join(c.rjust(w) for c, w in zip(row, widths)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
