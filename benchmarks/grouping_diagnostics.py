"""Does SGN's grouping earn its place? Two measurements on the packaged test sets (weights.md).

    python benchmarks/grouping_diagnostics.py --model runs/compare/sgn/best --model sgn-gm-small
    python benchmarks/grouping_diagnostics.py --model M --sets chorales-2src --out results.md

For each SGN checkpoint and test set:

- **mass on present classes**: the share of the grouping's assignment (eq. 5, A[p, i], softmax over
  classes) that falls on the classes playing in the mixture, averaged over every model segment of every
  mixture; spread uniformly it would be N / C (shown beside it). A grouping that groups puts more there.
- **SDR lost with class-mean g**: every mixture is separated twice, once with the class embeddings g_i the
  model computes from it (eq. 6) and once with g_i replaced by that class's mean over all the segments of the
  test set in which it plays. If g carries what is specific to the mixture, the mean loses SDR; if the model
  is in effect a U-Net with one fixed query per class, it loses nothing. Mean of the paired differences
  (own minus mean) with its standard error, over every source.

Both runs use `sgnsep eval`'s own code (`sgnsep.evaluation.evaluate.evaluate`, each model's own masks:
``--masks independent``), in this process, so the SDRs are the ones `eval` reports.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
TESTSETS = ROOT / "sgnsep" / "data" / "testset"
SETS = ("chorales-2src", "chorales-3src")


class EmbeddingProbe:
    """Wraps ``model._embed`` (what SGN's forward pass calls for g) to record (or replace) the class
    embeddings g of every segment.

    ``present`` is set by the caller to the class indices of the mixture being separated, so each recorded
    segment knows which classes play in it.
    """

    def __init__(self, model):
        self.model = model
        self.original = model._embed
        self.calls = 0
        self.present: list[int] = []
        self.sums: dict[int, torch.Tensor] = {}
        self.counts: dict[int, int] = {}
        self.masses: list[tuple[float, float]] = []  # (mass on present classes, uniform share N / C)
        self.replacement: torch.Tensor | None = None  # (C, D): class means, when replacing
        model._embed = self.embed

    def embed(self, x: torch.Tensor):
        self.calls += 1
        g, class_logits, presence, a, a_logits, f, c = self.original(x)
        if self.replacement is not None:
            return self.replacement.to(g).expand_as(g), class_logits, presence, a, a_logits, f, c
        for i in self.present:
            self.sums[i] = self.sums.get(i, 0) + g[:, i].double().sum(0)
            self.counts[i] = self.counts.get(i, 0) + g.shape[0]
        if a is not None:
            mass = a[..., self.present].sum(-1).mean(-1)  # (B,): per segment
            for m in mass.tolist():
                self.masses.append((m, len(self.present) / a.shape[-1]))
        return g, class_logits, presence, a, a_logits, f, c

    def class_means(self, num_classes: int, dim: int) -> torch.Tensor:
        means = torch.zeros(num_classes, dim, dtype=torch.float64)
        for i, total in self.sums.items():
            means[i] = total / self.counts[i]
        return means.float()


def measure(model_spec: str, testset: str) -> dict:
    from sgnsep.evaluation.evaluate import evaluate, stems_examples
    from sgnsep.separation.separator import Separator

    separator = Separator(model_spec, device="cpu", masks="independent")
    if separator.meta.architecture != "sgn":
        raise SystemExit(f"{model_spec}: a {separator.meta.architecture!r} model has no class embeddings to probe")
    if separator.meta.model.grouping_over != "all":
        raise SystemExit(f"{model_spec}: with grouping_over={separator.meta.model.grouping_over!r} the masks use a "
                         "grouping over the requested classes, which replacing g does not reach")
    probe = EmbeddingProbe(separator.model)
    index = {c: i for i, c in enumerate(separator.classes)}

    def examples():
        for ex in stems_examples(TESTSETS / testset, separator.classes, separator.meta.audio):
            probe.present = [index[c] for c in ex.classes]
            yield ex

    own = evaluate(separator, examples(), metrics=("sdr",), baselines=())
    if not probe.calls:  # a probe that never ran would report a loss of exactly 0 dB
        raise SystemExit(f"{model_spec}: the probe saw no forward pass; SGN's inference no longer goes through _embed")
    probe.replacement = probe.class_means(len(separator.classes), separator.meta.model.embed_dim)
    mean = evaluate(separator, examples(), metrics=("sdr",), baselines=())
    sdr_own = {(r["track"], r["class"]): r["sdr"] for r in own.records if r["method"] == "model" and r["sdr"] is not None}
    sdr_mean = {(r["track"], r["class"]): r["sdr"] for r in mean.records if r["method"] == "model" and r["sdr"] is not None}
    diff = [sdr_own[k] - sdr_mean[k] for k in sdr_own.keys() & sdr_mean.keys()]
    masses = [m for m, _ in probe.masses]
    return {
        "model": separator.name, "set": testset, "sources": len(diff),
        "mass_present": statistics.fmean(masses) if masses else float("nan"),
        "mass_uniform": statistics.fmean(u for _, u in probe.masses) if masses else float("nan"),
        "sdr_own": statistics.fmean(sdr_own.values()), "sdr_class_mean": statistics.fmean(sdr_mean.values()),
        "loss": statistics.fmean(diff), "loss_se": statistics.stdev(diff) / len(diff) ** 0.5,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", required=True, help="An SGN checkpoint (folder or name); repeatable.")
    ap.add_argument("--sets", default=",".join(SETS), help=f"Comma-separated test sets among {', '.join(SETS)}.")
    ap.add_argument("--out", type=Path, help="Also write the Markdown table here.")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default).")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    if not sets or any(s not in SETS for s in sets):
        ap.error(f"--sets: choose among {', '.join(SETS)}")
    lines = ["| model | test set | sources | grouping mass on present classes (uniform) | SDR, own g | SDR, class-mean g | SDR lost with class-mean g |",
             "|---|---|---|---|---|---|---|"]
    for spec in args.model:
        for s in sets:
            r = measure(spec, s)
            lines.append(
                f"| {r['model']} | {s} | {r['sources']} | {r['mass_present']:.3f} ({r['mass_uniform']:.3f}) | "
                f"{r['sdr_own']:.2f} | {r['sdr_class_mean']:.2f} | {r['loss']:+.2f} +- {r['loss_se']:.2f} dB |"
            )
            print(lines[-1], file=sys.stderr, flush=True)
    text = "\n".join(lines) + "\n\nProduced by:\n\n```bash\npython benchmarks/grouping_diagnostics.py " + " ".join(
        f"--model {m}" for m in args.model) + f" --sets {','.join(sets)}\n```\n"
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
