"""Train SGN, its baselines and its ablations with one recipe, then score them side by side (weights.md).

    python benchmarks/compare_models.py --out runs/compare                       # the default model's budget
    python benchmarks/compare_models.py --data-dir data/gm17 --steps 2000 --batch-size 16 --out runs/compare
    python benchmarks/compare_models.py --out runs/compare --dry-run             # print the commands only
    python benchmarks/compare_models.py --out runs/compare --variants cunet,unet --train-only &   # train in
    python benchmarks/compare_models.py --out runs/compare --variants sgn,sgn-no-tokens --train-only  # parallel,
    python benchmarks/compare_models.py --out runs/compare                       # then evaluate them all
    python benchmarks/compare_models.py --out runs/compare --checkpoints benchmarks/checkpoints/compare-2000-steps
                                            # variants trained in earlier sessions come from there, not trained

The SGN paper's claims are relative (section IV-B, Tables III-IV): SGN against a U-Net without guidance
(Sound of Pixels without vision), against a label-conditioned U-Net (the Conditioned U-Net) and against
itself without class tokens or without grouping. This script trains those five models with the same
training config (by default `configs/sgn-gm-small.json`, the default model's recipe and budget; only the
architecture or the ablation switch differs), each with `python -m sgnsep train` into OUT/<variant>/ (a run
whose folder already holds a training state is continued with --resume), then runs one multi-model
`sgnsep eval` per packaged test set (chorales-2src, chorales-3src) so that every model is scored on the
same mixtures, and prints a Markdown table to paste into weights.md (also written to OUT/comparison.md),
followed by the commands that produced it.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's sgnsep, also when another one is installed
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/paired_sdr.py, also when imported

from sgnsep.models.config import LEGACY_SGN_SETTINGS  # noqa: E402
from paired_sdr import paired_cell, read_sdr  # noqa: E402  (benchmarks/, this script's folder)
TESTSETS = ROOT / "sgnsep" / "data" / "testset"
SETS = ("chorales-2src", "chorales-3src")
METRICS = ("sdr", "sir", "sar", "si-sdr", "sdri")
# Each variant: the `--set` overrides that make it differ from the shared recipe.
VARIANTS = {
    "sgn": ["architecture=sgn"],
    "cunet": ["architecture=cunet"],
    "unet": ["architecture=unet"],
    "sgn-no-tokens": ["architecture=sgn", "model.class_tokens=false"],  # Table III, "w/o SCT"
    "sgn-no-grouping": ["architecture=sgn", "model.grouping=false"],  # Table III, "w/o CAG"
}
# SGN as the paper writes it and as sgnsep trained it before the training fixes: every setting of
# sgnsep.models.config.LEGACY_SGN_SETTINGS, and no warm-up.
PAPER_SGN = ["architecture=sgn", "warmup_steps=0"] + [f"model.{k}={v}" for k, v in LEGACY_SGN_SETTINGS.items()]
# The training fixes one at a time, each on top of the scaled mask head (weights.md, "How SGN is trained").
FIX_VARIANTS = {
    "sgn-paper": PAPER_SGN,
    "fix-scale": PAPER_SGN + ["model.mask_head_scale=inv_sqrt_d"],
    "fix-cosine": PAPER_SGN + ["model.mask_head_scale=cosine"],
    "fix-scale+bias": PAPER_SGN + ["model.mask_head_scale=inv_sqrt_d", "model.mask_bias=per_class"],
    "fix-scale+aux-mean": PAPER_SGN + ["model.mask_head_scale=inv_sqrt_d", "model.aux_loss_reduction=mean"],
    "fix-scale+token-loss": PAPER_SGN + ["model.mask_head_scale=inv_sqrt_d", "model.class_token_loss_on=tokens"],
    "fix-scale+init": PAPER_SGN + ["model.mask_head_scale=inv_sqrt_d", "model.class_token_init_std=0.5",
                                   "model.patch_input_norm=batchnorm"],
    "fix-scale+warmup": PAPER_SGN + ["model.mask_head_scale=inv_sqrt_d", "warmup_steps=50"],
    "fix-scale+presence-stop": PAPER_SGN + ["model.mask_head_scale=inv_sqrt_d", "model.presence_gradient=head_only"],
    # On top of the default settings: the supervised grouping loss (SGNConfig.assignment_loss_weight).
    "sgn+assign": ["architecture=sgn", "model.assignment_loss_weight=1"],
    "sgn+assign0.3": ["architecture=sgn", "model.assignment_loss_weight=0.3"],
    "sgn+group-requested": ["architecture=sgn", "model.grouping_over=requested"],
}
MAIN_VARIANTS = list(VARIANTS)  # what a comparison runs unless --variants says otherwise
VARIANTS.update(FIX_VARIANTS)
DESCRIPTIONS = {
    "sgn": "SGN (class tokens + category-aware grouping), with the default training settings",
    "cunet": "Conditioned U-Net (FiLM on the encoder from the class label)",
    "unet": "U-Net alone, one mask head per class (Sound of Pixels w/o vision)",
    "sgn-no-tokens": "SGN without source class tokens",
    "sgn-no-grouping": "SGN without category-aware grouping",
    "sgn-paper": "SGN trained as the paper writes it (no training fixes)",
    "fix-scale": "sgn-paper with the mask head's inner product divided by sqrt(D)",
    "fix-cosine": "sgn-paper with a cosine mask head (normalised g, learned temperature)",
    "fix-scale+bias": "fix-scale with one mask bias per class",
    "fix-scale+aux-mean": "fix-scale with the class-token and presence losses averaged over classes",
    "fix-scale+token-loss": "fix-scale with the class-token constraint on the raw tokens",
    "fix-scale+init": "fix-scale with batch-normalised patch input and tokens initialised at std 0.5",
    "fix-scale+warmup": "fix-scale with 50 warm-up steps",
    "fix-scale+presence-stop": "fix-scale with the presence loss stopped at g",
    "sgn+assign": "sgn with the supervised grouping loss at weight 1",
    "sgn+assign0.3": "sgn with the supervised grouping loss at weight 0.3",
    "sgn+group-requested": "sgn whose grouping shares each patch among the requested classes only",
}


def train_commands(args, recipe: dict) -> list[list[str]]:
    shared: list[str] = []
    if args.steps is not None:
        # Keep the recipe's epochs so that its learning-rate steps (in epochs) fall at the same fractions.
        epochs = int(recipe.get("epochs", 100))
        shared += [f"steps_per_epoch={max(1, math.ceil(args.steps / epochs))}"]
    if args.batch_size is not None:
        shared += [f"batch_size={args.batch_size}"]
    shared += args.set or []
    commands = []
    for name in args.variants:
        run = args.out / name
        cmd = [sys.executable, "-m", "sgnsep", "train", "--config", str(args.config), "--out", str(run),
               "--device", args.device]
        if args.data_dir is not None:
            cmd += ["--data-dir", str(args.data_dir)]
        if args.dataset is not None:
            cmd += ["--dataset", args.dataset]
        for pair in shared + VARIANTS[name]:
            cmd += ["--set", pair]
        if args.steps is not None or args.stop_at is not None:
            cmd += ["--max-steps", str(min(n for n in (args.steps, args.stop_at) if n is not None))]
        if (run / "state.safetensors").is_file():
            cmd.append("--resume")  # continues where it stopped; a finished run stops at once
        commands.append(cmd)
    return commands


def trained_elsewhere(args, name: str) -> Path | None:
    """The variant's checkpoint in --checkpoints, if one is there: it is evaluated as it is, not trained."""
    folder = args.checkpoints / name if getattr(args, "checkpoints", None) else None
    return folder if folder is not None and (folder / "config.json").is_file() else None


def checkpoint(args, name: str) -> Path:
    """The run's best checkpoint (best validation SDRi); its last one if validation never produced a score
    (possible only for very short runs). A variant found in --checkpoints comes from there."""
    given = trained_elsewhere(args, name)
    if given is not None:
        return given
    run = args.out / name
    return run / "last" if (run / "last").is_dir() and not (run / "best").is_dir() else run / "best"


def eval_command(args, testset: str) -> list[str]:
    cmd = [sys.executable, "-m", "sgnsep", "eval"]
    for name in args.variants:
        cmd += ["--model", str(checkpoint(args, name))]
    return cmd + ["--data-dir", str(TESTSETS / testset), "--metrics", "sdr,sir,sar,si-sdr",
                  "--out", str(args.out / f"eval-{testset}.json"), "--csv", str(args.out / f"eval-{testset}.csv"),
                  "--overwrite", "--device", args.device, "--masks", args.masks]


def shown(cmd: list[str]) -> str:
    """A command as it reproduces the results: `python`, paths relative to the repository, no --resume."""
    parts = []
    for c in cmd:
        if c == sys.executable:
            c = "python"
        elif c.startswith(str(ROOT) + "/"):
            c = c[len(str(ROOT)) + 1:]
        if c != "--resume":
            parts.append(c)
    return shlex.join(parts)


def parameter_count(folder: Path) -> int:
    from sgnsep.models.checkpoint import load_checkpoint

    return sum(p.numel() for p in load_checkpoint(folder).model.parameters())


def markdown_table(args, reports: dict[str, dict]) -> str:
    """One row per model (then the mixture and oracle baselines): the overall means of each test set."""
    sets = list(reports)
    names = {"sdr": "SDR", "sir": "SIR", "sar": "SAR", "si-sdr": "SI-SDR", "sdri": "SDRi"}
    head = ["model", "params"] + [f"{s.split('-')[-1].replace('src', ' src')} {names[m]}" for s in sets for m in METRICS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    methods = reports[sets[0]]["methods"]
    labels = {m["method"]: m for m in reports[sets[0]]["models"]}
    for method in methods:
        if method in labels:
            params = f"{parameter_count(Path(labels[method]['folder'])) / 1e6:.2f} M"
        else:
            params = ""
        cells = []
        for s in sets:
            overall = reports[s]["summary"].get(method, {}).get("overall", {})
            cells += [f"{overall[m]['mean']:.2f}" if m in overall else "-" for m in METRICS]
        lines.append(f"| {method} | {params} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def method_label(folder: Path) -> str:
    """The name `sgnsep eval` gives a checkpoint's rows: the model's name, which training sets to its run
    folder's name (OUT/<variant>/best -> <variant>)."""
    try:
        return str(json.loads((folder / "config.json").read_text())["name"])
    except (OSError, ValueError, KeyError, TypeError):
        return folder.parent.name if folder.name in ("best", "last") else folder.name


def paired_differences(args, sets: list[str]) -> str:
    """Per test set, each model's SDR minus the first model's on the same sources (benchmarks/paired_sdr.py)."""
    first = args.variants[0]
    lines = [f"| model - {first} (SDR, paired by source) | " + " | ".join(sets) + " |", "|" + "---|" * (len(sets) + 1)]
    cells: dict[str, list[str]] = {name: [] for name in args.variants[1:]}
    for s in sets:
        sdr = read_sdr(args.out / f"eval-{s}.csv")
        label = {name: method_label(checkpoint(args, name)) for name in args.variants}
        base = sdr.get(label[first]) or sdr.get(first, {})
        for name in args.variants[1:]:
            cells[name].append(paired_cell(base, sdr.get(label[name]) or sdr.get(name, {})))
    lines += [f"| {name} | " + " | ".join(c) + " |" for name, c in cells.items()]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "compare", help="Folder of the runs and results.")
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "sgn-gm-small.json",
                    help="Training config shared by every variant (default: the default model's).")
    ap.add_argument("--data-dir", type=Path, help="Training corpus (default: the config's data_dir).")
    ap.add_argument("--dataset", help="Dataset layout of --data-dir (default: the config's, else solos).")
    ap.add_argument("--steps", type=int, help="Training steps per model (default: the config's epochs x steps_per_epoch).")
    ap.add_argument("--stop-at", type=int, metavar="STEP",
                    help="Stop every run at this step (a point on the --steps recipe: its learning-rate schedule is "
                         "unchanged) and compare those checkpoints; rerun without it to continue the runs.")
    ap.add_argument("--batch-size", type=int, help="Batch size (default: the config's).")
    ap.add_argument("--set", action="append", metavar="KEY=VALUE", help="Extra training override for every variant.")
    ap.add_argument("--variants", default=",".join(MAIN_VARIANTS),
                    help=f"Comma-separated variants (default: {', '.join(MAIN_VARIANTS)}); all: {', '.join(VARIANTS)}.")
    ap.add_argument("--sets", default=",".join(SETS), help=f"Comma-separated test sets among {', '.join(SETS)}.")
    ap.add_argument("--checkpoints", type=Path, metavar="DIR",
                    help="Folder of already-trained variants (DIR/<variant>/config.json + model.safetensors): those "
                         "are evaluated from there instead of trained, e.g. benchmarks/checkpoints/compare-2000-steps "
                         "to finish a comparison whose runs were trained in earlier sessions.")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--masks", default="independent", choices=("independent", "shared"),
                    help="eval --masks; independent (default) compares the models' own masks, as the paper does")
    ap.add_argument("--dry-run", action="store_true", help="Print the commands and stop.")
    ap.add_argument("--train-only", action="store_true",
                    help="Train (or continue) the variants and stop before evaluating: to spread the runs over "
                         "several processes (e.g. two with --set threads=1 on a 2-core machine), then run once "
                         "more without it to evaluate them all.")
    args = ap.parse_args()
    for flag, value in (("--steps", args.steps), ("--stop-at", args.stop_at)):
        if value is not None and value < 1:
            ap.error(f"{flag} must be at least 1, got {value}")
    if args.checkpoints is not None and not args.checkpoints.is_dir():
        ap.error(f"--checkpoints {args.checkpoints}: no such folder (it should hold <variant>/config.json)")
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in args.variants if v not in VARIANTS]
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown += [s for s in sets if s not in SETS]
    if unknown or not args.variants or not sets:
        ap.error(f"unknown variant or test set {unknown}; variants: {', '.join(VARIANTS)}; sets: {', '.join(SETS)}")
    try:
        recipe = json.loads(args.config.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        ap.error(f"--config {args.config}: cannot read it as JSON ({exc})")

    trainings = train_commands(args, recipe)
    if args.dry_run:
        for name, cmd in zip(args.variants, trainings):
            if trained_elsewhere(args, name) is None:
                print(shlex.join(cmd))
        for cmd in [eval_command(args, s) for s in sets]:
            print(shlex.join(cmd))
        return
    args.out.mkdir(parents=True, exist_ok=True)

    def run(cmd: list[str]) -> None:
        print("+ " + shlex.join(cmd), file=sys.stderr, flush=True)
        done = subprocess.run(cmd, check=False, cwd=ROOT)  # `python -m sgnsep` of this checkout
        if done.returncode:
            sys.exit(f"compare_models: this command failed with exit code {done.returncode}: {shlex.join(cmd)}")

    for name, cmd in zip(args.variants, trainings):
        if trained_elsewhere(args, name) is None:  # the others are shown below as how they were trained
            run(cmd)
    if args.train_only:
        return
    evaluations = [eval_command(args, s) for s in sets]  # after training: which checkpoints exist
    for cmd in evaluations:
        run(cmd)
    commands = trainings + evaluations
    reports = {s: json.loads((args.out / f"eval-{s}.json").read_text()) for s in sets}
    rows = "\n".join(f"- `{v}`: {DESCRIPTIONS[v]}" for v in args.variants)
    text = (
        f"{markdown_table(args, reports)}\n\nMeans in dB over every source of the packaged test sets "
        f"({', '.join(sets)}), every model on the same mixtures; `mixture` is the unprocessed input, "
        f"`oracle-*` the ideal masks.\n\n{paired_differences(args, sets)}\n\n{rows}\n\nProduced by:\n\n```bash\n"
        + "\n".join(shown(cmd) for cmd in commands)
        + "\n```\n"
    )
    (args.out / "comparison.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
