"""Whether two checkouts of sgnsep produce the same outputs, command by command (a refactor must not change any).

    git worktree add /tmp/before <commit>
    python benchmarks/same_outputs.py /tmp/before .            # A = /tmp/before, B = this checkout
    python benchmarks/same_outputs.py /tmp/before . --cases separate-shared,train

Each case runs one `python -m sgnsep ...` command in each checkout (a fresh process with PYTHONPATH set to
the checkout, which is checked, one CPU thread, no GPU), writing into a folder of its own, then compares
everything the command printed and wrote: audio sample for sample (and its format), weights and images byte
for byte; JSON, CSV and text after
replacing the checkout's path and the output folder's by placeholders, and dropping what measures time
(JSON keys such as "seconds" and "elapsed", log.csv's seconds column). Inputs are the README example, the
packaged test sets, and tone solos and a corpus of pretty_midi's TimGM6mb rendered once for both checkouts.
The table says, per case, "same" or the files that differ; the exit status is 1 if any case differs.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

TIMING_KEYS = {"seconds", "elapsed", "elapsed_seconds", "wall_seconds", "cpu_seconds", "realtime_factor",
               "timing", "speed", "x_realtime", "started", "finished"}
TEXT_SUFFIXES = {".json", ".csv", ".md", ".txt", ""}
EXAMPLE = "examples/bach_violin_cello.wav"
TESTSET = "sgnsep/data/testset"
TINY_TRAIN = ["model.unet_ngf=8", "model.embed_dim=16", "model.depth=1", "model.num_heads=2", "model.patch_size=8",
              "model.unet_depth=5", "audio.segment_samples=16383", "audio.n_fft=512", "audio.warp_bins=64",
              "optimizer=adam", "batch_size=4", "epochs=1", "steps_per_epoch=6", "checkpoint_every=3",
              "val_mixtures=4", "threads=1", "diagnostics_every=2"]


def cases(inputs: Path) -> dict[str, list[str]]:
    """Case name -> the sgnsep arguments; {OUT} is the case's output folder, {IN} the shared inputs."""
    sep = ["separate", EXAMPLE, "-o", "{OUT}/stems", "--json", "--device", "cpu"]
    table = {
        "separate-shared": sep + ["-s", "violin,cello", "--residual", "--gain", "violin=-6", "--plot"],
        "separate-independent": sep + ["-s", "violin,cello", "--residual", "--masks", "independent"],
        "separate-complete": sep + ["-s", "violin,cello", "--residual", "--masks", "complete"],
        "separate-auto": sep + ["-s", "auto"],
        "detect": ["detect", EXAMPLE, "--json", "{OUT}/d.json", "--csv", "{OUT}/d.csv", "--device", "cpu"],
        "eval": ["eval", "--out", "{OUT}/e.json", "--csv", "{OUT}/e.csv", "--device", "cpu"],
        "eval-3src": ["eval", "--data-dir", f"{TESTSET}/chorales-3src", "--metrics", "si-sdr", "--out", "{OUT}/e.json",
                      "--device", "cpu"],
        "embed": ["embed", f"{TESTSET}/chorales-2src", "-o", "{OUT}/e.png", "--csv", "{OUT}/e.csv", "--device", "cpu"],
        "models": ["models", "--json"],
        "train": ["train", "--data-dir", "{IN}/solos", "--out", "{OUT}/run", "--device", "cpu"]
                 + [a for s in TINY_TRAIN for a in ("--set", s)],
    }
    if (inputs / "timgm").exists():
        font = str(next((inputs / "timgm").iterdir()))
        table.update({
            "data-synth": ["data", "synth", "--out", "{OUT}/solos", "--classes", "flute,tuba", "--clips-per-class", "2",
                           "--clip-seconds", "1", "--soundfonts", font],
            "data-chorales": ["data", "chorales", "--out", "{OUT}/chorales", "--tracks", "2", "--voices", "2",
                              "--seconds", "2", "--soundfonts", font],
            "data-music": ["data", "music", "--out", "{OUT}/music", "--hours", "0.005", "--min-seconds", "2",
                           "--max-seconds", "3", "--soundfonts", font],
        })
    return table


def make_inputs(folder: Path) -> None:
    """Tone solos for `train` (tests/tone_model.py's tones, fixed seed) and pretty_midi's soundfont, if any."""
    import numpy as np
    import soundfile as sf

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.tone_model import CLASSES, tone

    rng = np.random.default_rng(0)
    for cls in CLASSES:
        (folder / "solos" / cls).mkdir(parents=True)
        for i in range(8):
            sf.write(folder / "solos" / cls / f"{cls}{i}.wav", tone(cls, 4.0, 11025, rng), 11025)
    try:
        import pretty_midi

        font = Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"
        if font.is_file():
            (folder / "timgm").mkdir()
            shutil.copy(font, folder / "timgm" / font.name)
    except ImportError:
        pass


def _strip_timing(value):
    if isinstance(value, dict):
        return {k: _strip_timing(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [_strip_timing(v) for v in value]
    return value


def normalised(path: Path, data: bytes, replace: list[tuple[str, str]]) -> bytes:
    """The bytes to compare: audio as its format and samples (libsndfile stamps float WAVs' PEAK chunk with
    the wall clock), text with paths replaced and timings dropped, anything else as it is."""
    if path.suffix.lower() in (".wav", ".flac"):
        import soundfile as sf

        with sf.SoundFile(io.BytesIO(data)) as f:
            head = f"{f.samplerate} {f.channels} {f.format} {f.subtype} {f.frames}".encode()
            return head + f.read(dtype="float64", always_2d=True).tobytes()
    if path.suffix.lower() not in TEXT_SUFFIXES:
        return data
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return data
    for old, new in replace:
        text = text.replace(old, new)
    text = re.sub(r"\bin \d+(\.\d+)? s\b", "in <T> s", text)  # "Evaluated in 38.6 s."
    if path.name == "stdout":
        # Rich wraps, pads and centres to the terminal's width, so where a checkout's path is printed the layout
        # depends on the path's length: compare the words, not the spaces and rules between them.
        text = re.sub(r"[\s\u2500-\u257f]+", " ", text).strip()
    if path.suffix == ".json":
        try:
            return json.dumps(_strip_timing(json.loads(text)), sort_keys=True).encode()
        except ValueError:
            pass
    if path.name == "log.csv":
        rows = list(csv.reader(io.StringIO(text)))
        if rows and "seconds" in rows[0]:
            k = rows[0].index("seconds")
            rows = [r[:k] + r[k + 1:] for r in rows]
        buf = io.StringIO()
        csv.writer(buf).writerows(rows)
        return buf.getvalue().encode()
    return text.encode()


def run_case(checkout: Path, args: list[str], out: Path, inputs: Path) -> dict[str, str]:
    """Run one case in ``checkout`` -> {relative file or "<stdout>": sha256 of its normalised bytes}."""
    out.mkdir(parents=True)
    argv = [a.replace("{OUT}", str(out)).replace("{IN}", str(inputs)) for a in args]
    env = dict(os.environ, PYTHONPATH=str(checkout), CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1",
               MKL_NUM_THREADS="1", COLUMNS="200", NO_COLOR="1")
    check = subprocess.run([sys.executable, "-c", "import sgnsep, sys; print(sgnsep.__file__)"], cwd=checkout,
                           env=env, capture_output=True, text=True)
    if not Path(check.stdout.strip()).resolve().is_relative_to(checkout.resolve()):
        raise SystemExit(f"{checkout}: imports sgnsep from {check.stdout.strip() or check.stderr.strip()}")
    r = subprocess.run([sys.executable, "-m", "sgnsep", *argv], cwd=checkout, env=env, capture_output=True)
    replace = [(str(out), "<OUT>"), (str(checkout.resolve()), "<ROOT>")]
    digests = {"<exit>": str(r.returncode),
               "<stdout>": hashlib.sha256(normalised(Path("stdout.json" if "--json" in args else "stdout"),
                                                     r.stdout, replace)).hexdigest()}
    for f in sorted(p for p in out.rglob("*") if p.is_file() and p.name != ".sgnsep.lock"):
        rel = str(f.relative_to(out))
        if f.parent.name == "tensorboard":  # event files are named and stamped with the wall clock
            digests[f"{f.parent.relative_to(out)}/<events>"] = "present"
            continue
        digests[rel] = hashlib.sha256(normalised(f, f.read_bytes(), replace)).hexdigest()
    if r.returncode:
        digests["<stderr>"] = r.stderr.decode(errors="replace").strip().splitlines()[-1][:120] if r.stderr else ""
    return digests


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", type=Path, help="checkout A (e.g. a worktree of the commit before a refactor)")
    ap.add_argument("b", type=Path, help="checkout B")
    ap.add_argument("--cases", default="", help="comma-separated case names (default: all)")
    ap.add_argument("--keep", type=Path, default=None, help="keep the outputs in this folder")
    args = ap.parse_args()
    args.a, args.b = args.a.resolve(), args.b.resolve()
    work = Path(tempfile.mkdtemp(prefix="same-outputs-")) if args.keep is None else args.keep
    inputs = work / "inputs"
    if not inputs.exists():
        make_inputs(inputs)
    table = cases(inputs)
    chosen = [c.strip() for c in args.cases.split(",") if c.strip()] or list(table)
    unknown = [c for c in chosen if c not in table]
    if unknown:
        raise SystemExit(f"unknown cases {unknown}; cases: {', '.join(table)}")
    rows, differ = [], False
    for name in chosen:
        got = {}
        for label, checkout in (("A", args.a), ("B", args.b)):
            folder = work / name / label
            if folder.exists():
                shutil.rmtree(folder)
            got[label] = run_case(checkout, table[name], folder, inputs)
        keys = sorted(set(got["A"]) | set(got["B"]))
        bad = [k for k in keys if got["A"].get(k) != got["B"].get(k)]
        failed = got["A"]["<exit>"] != "0" or got["B"]["<exit>"] != "0"
        differ |= bool(bad)
        status = "same" if not bad else "differ: " + ", ".join(bad[:6]) + (" ..." if len(bad) > 6 else "")
        if failed:
            status += f" (exit A {got['A']['<exit>']}, B {got['B']['<exit>']}: {got['A'].get('<stderr>') or got['B'].get('<stderr>')})"
        rows.append((name, len(keys) - 2 - ("<stderr>" in keys), status))
        print(f"{name}: {status}", file=sys.stderr, flush=True)
    print(f"\nA = {args.a}, B = {args.b}\n\n| case | files compared | result |\n|---|---|---|")
    for name, n, status in rows:
        print(f"| {name} | {n} + stdout | {status} |")
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
