"""SDR of models paired by source, from `sgnsep eval --csv` files, also across separate evaluations.

    python benchmarks/paired_sdr.py BASE OTHER [OTHER ...]

Each argument is ``LABEL=FILE.csv[:METHOD]``: the rows of ``METHOD`` (default ``LABEL``) in that CSV. Every
OTHER is compared with BASE on the sources both scored (same track, same class): the mean SDR difference,
its standard error, and the share of sources where OTHER is higher. Mean differences of a few tenths of a dB
on 40-60 sources are within noise; this says which ones are not. `compare_models.py` prints the same table
for the models it evaluates together.
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path


def read_sdr(path: Path) -> dict[str, dict[tuple[str, str], float]]:
    """method -> {(track, class): SDR} of the scored rows of an eval CSV."""
    sdr: dict[str, dict[tuple[str, str], float]] = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            try:
                sdr.setdefault(row["method"], {})[(row["track"], row["class"])] = float(row["sdr"])
            except (KeyError, ValueError):  # a source too short or silent to score
                continue
    return sdr


def paired_cell(base: dict, other: dict) -> str:
    """``other - base`` on their common sources, as a table cell ("-" with fewer than two)."""
    diff = [other[k] - base[k] for k in base.keys() & other.keys()]
    if len(diff) < 2:
        return "-"
    se = statistics.stdev(diff) / len(diff) ** 0.5
    better = sum(d > 0 for d in diff) / len(diff)
    return f"{statistics.fmean(diff):+.2f} +- {se:.2f} dB, higher on {better:.0%} of {len(diff)}"


def _spec(text: str) -> tuple[str, Path, str]:
    label, sep, rest = text.partition("=")
    if not sep or not label or not rest:
        raise argparse.ArgumentTypeError(f"'{text}' is not LABEL=FILE.csv[:METHOD]")
    path, _, method = rest.partition(":") if rest.count(":") else (rest, "", "")
    return label, Path(path), method or label


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("base", type=_spec, help="LABEL=FILE.csv[:METHOD] that the others are compared with")
    parser.add_argument("others", type=_spec, nargs="+", help="LABEL=FILE.csv[:METHOD]")
    args = parser.parse_args()
    tables: dict[Path, dict] = {}

    def rows(spec):
        label, path, method = spec
        if path not in tables:
            if not path.is_file():
                parser.error(f"{path}: no such file")
            tables[path] = read_sdr(path)
        if method not in tables[path]:
            parser.error(f"{path} has no rows of method '{method}' (it has {', '.join(sorted(tables[path]))})")
        return tables[path][method]

    base = rows(args.base)
    print(f"| model - {args.base[0]} (SDR, paired by source) | |\n|---|---|")
    for spec in args.others:
        print(f"| {spec[0]} | {paired_cell(base, rows(spec))} |")


if __name__ == "__main__":
    main()
