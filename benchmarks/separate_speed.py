"""Speed and memory of `sgnsep separate`, and a side-by-side with Open-Unmix and Demucs.

    python benchmarks/separate_speed.py                       # 1, 10 and 60-minute files, 1..8 classes
    python benchmarks/separate_speed.py --minutes 1 10 --compare   # + Open-Unmix (umxl) and Demucs (htdemucs)
    python benchmarks/separate_speed.py --no-files --cli-classes   # classes scaling only, in-process and CLI

End to end: each length is a 44.1 kHz stereo 16-bit wav; `sgnsep separate` runs as a subprocess (the cost a
user sees: start-up, model load, reading, resampling, the network, writing two stems), and its peak memory
is the child's maximum resident set size. Real-time factor = audio seconds / wall seconds.

--compare times Open-Unmix's umxl and Demucs' htdemucs through their Python APIs on the same 1-minute
file on the same machine. Their weights cannot be downloaded here, so they are randomly initialised: the
amount of computation is the same as with trained weights, so the timing is fair (their output is not).
Install them with `pip install openunmix demucs`.

--device cuda (or mps) runs every table on that device: the timers wait for the device's queued work, the
synthesis micro-benchmark uses the whole-span inverse STFT that `separate` uses there, and the side-by-side
runs Open-Unmix and Demucs on the same device, each (sgnsep too) once untimed first.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 44100


def synchronize(device) -> None:
    """Wait for the device's queued work: CUDA and MPS calls return before their kernels finish, so a timer
    read without this measures the launches, not the work."""
    import torch

    kind = torch.device(device).type
    if kind == "cuda":
        torch.cuda.synchronize()
    elif kind == "mps":
        torch.mps.synchronize()


def time_once(run, device) -> float:
    """Wall seconds of one call of `run`. On an accelerator it runs once untimed first: starting the device
    and choosing kernels are one-off costs that would otherwise land on whichever model goes first."""
    from sgnsep.separation.overlap_add import host_memory
    from sgnsep.separation.separator import resolve_device

    if not host_memory(resolve_device(str(device))):
        run()
    synchronize(device)
    start = time.perf_counter()
    run()
    synchronize(device)
    return time.perf_counter() - start


def make_file(path: Path, minutes: float, seed: int = 0) -> None:
    """A stereo test signal (harmonic tones plus noise), written block by block to bound memory."""
    rng = np.random.default_rng(seed)
    total = int(minutes * 60 * RATE)
    block = RATE * 30
    with sf.SoundFile(path, "w", RATE, 2, subtype="PCM_16") as fh:
        for start in range(0, total, block):
            n = min(block, total - start)
            t = (start + np.arange(n)) / RATE
            f0 = 220 * 2 ** (rng.integers(0, 12) / 12)
            x = 0.2 * np.sin(2 * np.pi * f0 * t) + 0.1 * np.sin(2 * np.pi * 1.5 * f0 * t) + 0.02 * rng.standard_normal(n)
            fh.write(np.stack([x, 0.8 * x], axis=1).astype(np.float32))


def run_cli(args: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one CLI run."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "sgnsep", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"sgnsep failed: {proc.stderr.read().decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024


def import_torch_rss() -> float:
    """Peak resident memory (MB) of a Python process that only imports torch: the floor under every figure
    of peak memory above, whatever sgnsep does."""
    proc = subprocess.Popen([sys.executable, "-c", "import torch"])
    _, _, usage = os.wait4(proc.pid, 0)
    return usage.ru_maxrss / 1024


def classes_scaling(model: str, device: str, seconds: float = 60.0,
                    repeats: int = 3) -> list[tuple[int, float, float, float, float]]:
    """Per number of requested classes (1..8): in-process (wall, CPU) seconds of `Separator.separate` on
    `seconds` of 44.1 kHz stereo audio (fresh output arrays, as a caller gets them); wall seconds of the same
    separation streamed into one output buffer reused from run to run (as `separate_file` streams chunks
    through one buffer: no fresh memory to page in); and wall seconds of the network alone (the masks of the
    model segments covering that audio, one batch). Medians of `repeats` runs, the class counts interleaved
    so that drift in the machine's speed falls on all of them alike."""
    import torch

    from sgnsep import Separator

    sep = Separator(model, device=device)
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal((2, int(seconds * RATE)))).astype(np.float32)
    a = sep.meta.audio
    segments = int(np.ceil(seconds * a.sample_rate / a.segment_samples / (1 - sep.overlap)))
    net_in = torch.randn(segments, 1, a.warp_bins, a.segment_frames, device=sep.device)
    sep.separate(audio[:, : RATE * 2], RATE, sep.classes[:1])  # warm-up
    counts = range(1, min(8, len(sep.classes)) + 1)
    reused = {n: np.ones((n, *audio.shape), dtype=np.float32) for n in counts}  # paged in once, here
    wall: dict[int, list[float]] = {n: [] for n in counts}
    cpu: dict[int, list[float]] = {n: [] for n in counts}
    into: dict[int, list[float]] = {n: [] for n in counts}
    net: dict[int, list[float]] = {n: [] for n in counts}
    for _ in range(repeats):
        for n in counts:
            start, start_cpu = time.perf_counter(), time.process_time()
            sep.separate(audio, RATE, sep.classes[:n])
            wall[n].append(time.perf_counter() - start)
            cpu[n].append(time.process_time() - start_cpu)
            start = time.perf_counter()
            for _ in sep._stream(lambda a, b: audio[:, a:b], audio.shape[1], 2, RATE, list(range(n)), out=reused[n]):
                pass
            into[n].append(time.perf_counter() - start)
            mask_fn = sep._mask_fn(list(range(n)))
            synchronize(sep.device)
            start = time.perf_counter()
            mask_fn(net_in)
            synchronize(sep.device)
            net[n].append(time.perf_counter() - start)
    return [(n, float(np.median(wall[n])), float(np.median(cpu[n])), float(np.median(into[n])),
             float(np.median(net[n]))) for n in counts]


def synthesis_cost(repeats: int = 15, seconds: float = 60.0, chunk_seconds: float = 10.0,
                   block_frames: int | None = None, device: str = "cpu") -> tuple[float, float]:
    """(synthesis, inverse FFT alone) in wall seconds per class for `seconds` of 44.1 kHz stereo: what every
    requested class costs beyond the network (sgnsep.separation.overlap_add._SpanSTFT: mask, inverse FFT, overlap-add of
    both channels), on the STFT grid `separate` uses for 44.1 kHz input (4096-point frames every 2048 samples
    at the default synthesis step, chunk_plan.SYNTHESIS_STEP).
    Timed on one chunk of `chunk_seconds` (separate's default; its buffers stay in cache as they do there) and
    scaled to `seconds`. `block_frames`: frames per block of the inverse (0: the whole span; None: what
    `separate` uses on `device`: blocks on CPU, the whole span on an accelerator)."""
    import torch

    from sgnsep.separation.chunk_plan import make_plan
    from sgnsep.separation.overlap_add import SYNTHESIS_BLOCK_FRAMES, _SpanSTFT, host_memory
    from sgnsep.models.config import AudioConfig
    from sgnsep.separation.separator import resolve_device

    rng = np.random.default_rng(0)
    n = int(chunk_seconds * RATE)
    plan = make_plan(RATE, n, AudioConfig())  # the grid for 44.1 kHz input (the same for every 11.025 kHz model)
    dev = resolve_device(device)
    if block_frames is None:
        block = SYNTHESIS_BLOCK_FRAMES if host_memory(dev) else None
    else:
        block = block_frames or None
    span = _SpanSTFT(torch.from_numpy((0.1 * rng.standard_normal((2, n + 8192))).astype(np.float32)).to(dev),
                     plan.n_fft_in, plan.hop_in, block)
    frames = span.spec.shape[1]
    low = torch.from_numpy(rng.random((frames, 512), dtype=np.float32)).to(dev)
    edge = torch.from_numpy(rng.random(frames, dtype=np.float32)).to(dev)
    out = torch.empty(2, n, device=dev)

    def one_class():
        span.set_mask_band(low, edge)
        span.masked_samples(0, n, out)

    def ffts():  # the same inverse FFTs, in the same blocks of frames of both channels
        for a in range(0, frames, span.block):
            b = min(frames, a + span.block)
            torch.fft.irfft(span.masked[:, : b - a], n=plan.n_fft_in, dim=-1, out=span.frames[:, : b - a])

    times = {}
    for name, fn in (("synthesis", one_class), ("fft", ffts)):
        fn()  # warm-up
        runs = []
        for _ in range(repeats):
            synchronize(dev)
            start = time.perf_counter()
            fn()
            synchronize(dev)
            runs.append(time.perf_counter() - start)
        times[name] = float(np.median(runs)) * seconds / chunk_seconds
    return times["synthesis"], times["fft"]


def cli_classes_scaling(model: str, device: str, tmp: Path, minutes: float = 10.0, counts=(1, 2, 8),
                        repeats: int = 3) -> list[tuple[int, float]]:
    """Wall seconds of `sgnsep separate` (a subprocess, writing the stems and the default outputs) on one
    `minutes`-long 44.1 kHz stereo file per number of classes: medians of `repeats`, the counts interleaved.
    Each run writes into an empty folder, as a user's first run does (replacing existing stems with
    --overwrite costs more: the old files are deleted and, on ext4, a rename over a file flushes it)."""
    from sgnsep import Separator

    classes = Separator(model, device=device).classes
    path = tmp / "classes.wav"
    make_file(path, minutes)
    wall: dict[int, list[float]] = {n: [] for n in counts}
    for _ in range(repeats):
        for n in counts:
            shutil.rmtree(tmp / "classes-out", ignore_errors=True)
            wall[n].append(run_cli(["separate", str(path), "--sources", ",".join(classes[:n]), "--model", model,
                                    "--device", device, "--out", str(tmp / "classes-out")])[0])
    path.unlink()
    return [(n, float(np.median(wall[n]))) for n in counts]


def network_layouts(model: str, device: str, repeats: int = 3) -> tuple[float, float]:
    """Wall seconds of the network alone (2 classes, the segments covering 60 s, one batch) in torch's
    default memory layout and in the channels-last layout that Separator uses on CPU; medians."""
    import torch

    from sgnsep import Separator
    from sgnsep.models.unet import UNet

    sep = Separator(model, device=device)
    a = sep.meta.audio
    segments = int(np.ceil(60 * a.sample_rate / a.segment_samples / (1 - sep.overlap)))
    net_in = torch.randn(segments, 1, a.warp_bins, a.segment_frames, device=sep.device)
    mask_fn = sep._mask_fn([0, 1])
    times = []
    for layout in (torch.contiguous_format, torch.channels_last):
        sep.model.to(memory_format=layout)
        for module in sep.model.modules():
            if isinstance(module, UNet):
                module.memory_format = layout
        mask_fn(net_in)  # warm-up
        runs = []
        for _ in range(repeats):
            synchronize(sep.device)
            start = time.perf_counter()
            mask_fn(net_in)
            synchronize(sep.device)
            runs.append(time.perf_counter() - start)
        times.append(float(np.median(runs)))
    return times[0], times[1]


def compare_others(path: Path, seconds: float, device: str = "cpu") -> list[tuple[str, float]]:
    """Wall seconds of Open-Unmix umxl and Demucs htdemucs on the file, on `device`, as sgnsep ran."""
    import torch

    from sgnsep.separation.separator import resolve_device

    dev = resolve_device(device)
    audio, _ = sf.read(path, dtype="float32", always_2d=True)
    mix = torch.from_numpy(audio.T.copy()).unsqueeze(0).to(dev)
    rows = []
    try:
        from openunmix import model as umx_model
        from openunmix import utils as umx_utils  # noqa: F401

        # umxl: 4 targets, hidden size 1024, 16 kHz bandwidth (its published configuration).
        targets = {
            t: umx_model.OpenUnmix(nb_bins=4096 // 2 + 1, nb_channels=2, hidden_size=1024, max_bin=1487)
            for t in ("vocals", "drums", "bass", "other")
        }
        separator = umx_model.Separator(target_models=targets, niter=1, residual=False, n_fft=4096, n_hop=1024,
                                        nb_channels=2, sample_rate=RATE).eval().to(dev)
        with torch.inference_mode():
            rows.append(("open-unmix umxl (random weights)", time_once(lambda: separator(mix), dev)))
    except ImportError:
        rows.append(("open-unmix (not installed: pip install openunmix)", float("nan")))
    try:
        from demucs.apply import apply_model
        from demucs.htdemucs import HTDemucs

        model = HTDemucs(sources=["drums", "bass", "other", "vocals"]).eval()
        with torch.inference_mode():
            run = lambda: apply_model(model, mix, split=True, overlap=0.25, progress=False, device=dev)  # noqa: E731
            rows.append(("demucs htdemucs (random weights)", time_once(run, dev)))
    except ImportError:
        rows.append(("demucs (not installed: pip install demucs)", float("nan")))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="sgn-gm-small")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--minutes", type=float, nargs="+", default=[1, 10, 60])
    ap.add_argument("--sources", default="violin,cello")
    ap.add_argument("--compare", action="store_true", help="also time Open-Unmix umxl and Demucs htdemucs")
    ap.add_argument("--no-classes", action="store_true", help="skip the 1..8 classes scaling")
    ap.add_argument("--no-files", action="store_true", help="skip the 1/10/60-minute end-to-end table")
    ap.add_argument("--cli-classes", action="store_true",
                    help="also time the CLI on a 10-minute file with 1, 2 and 8 classes")
    ap.add_argument("--synthesis-blocks", type=int, nargs="+", metavar="FRAMES",
                    help="also time one class's synthesis with blocks of these many frames (0: the whole span)")
    ap.add_argument("--repeats", type=int, default=3,
                    help="runs per measurement; the table shows the median wall time and the largest peak memory")
    args = ap.parse_args()
    if args.repeats < 1:
        ap.error(f"--repeats must be at least 1, got {args.repeats}")

    import torch

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, device {args.device}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if not args.no_files:
            print(f"\n| file | audio | wall (median of {args.repeats}) | real-time factor | peak memory |\n|---|---|---|---|---|")
        for minutes in [] if args.no_files else args.minutes:
            path = tmp / f"{minutes:g}min.wav"
            make_file(path, minutes)
            runs = []
            for _ in range(args.repeats):  # each run into an empty folder, as cli_classes_scaling's
                shutil.rmtree(tmp / "out", ignore_errors=True)
                runs.append(run_cli(["separate", str(path), "--sources", args.sources, "--model", args.model,
                                     "--device", args.device, "--out", str(tmp / "out")]))
            wall, rss = float(np.median([r[0] for r in runs])), max(r[1] for r in runs)
            print(f"| {minutes:g} min, 44.1 kHz stereo, {args.sources} | {minutes * 60:.0f} s | {wall:.1f} s | "
                  f"{minutes * 60 / wall:.1f}x | {rss:.0f} MB |", flush=True)
            path.unlink()
        if not args.no_files:
            print(f"\n`python -c \"import torch\"` alone peaks at {import_torch_rss():.0f} MB.", flush=True)
        if not args.no_classes:
            rows = classes_scaling(args.model, args.device, repeats=args.repeats)
            base, base_cpu, base_into, base_net = rows[0][1:]
            print(f"\n| classes asked for | wall seconds for 60 s of audio (median of {args.repeats}) | relative to 1 class "
                  "| CPU seconds | relative to 1 class | wall, into a reused output buffer | relative to 1 class "
                  "| network alone, seconds | relative to 1 class |\n|---|---|---|---|---|---|---|---|---|")
            for n, sec, cpu, into, net in rows:
                print(f"| {n} | {sec:.2f} | {sec / base:.2f}x | {cpu:.2f} | {cpu / base_cpu:.2f}x | {into:.2f} | "
                      f"{into / base_into:.2f}x | {net:.3f} | {net / base_net:.2f}x |", flush=True)
            default, last = network_layouts(args.model, args.device, repeats=args.repeats)
            print(f"\nnetwork alone, 2 classes, 60 s of audio: {default:.3f} s in the default memory layout, "
                  f"{last:.3f} s channels-last ({default / last:.2f}x faster)", flush=True)
            synthesis, fft = synthesis_cost(device=args.device)
            print(f"\nper class, for 60 s of 44.1 kHz stereo: synthesis {1000 * synthesis:.1f} ms (mask, inverse FFT and "
                  f"overlap-add of both channels), of which the inverse FFTs {1000 * fft:.1f} ms; the 1.5x target "
                  f"leaves {1000 * 0.5 * base / 7:.1f} ms per class beyond the first", flush=True)
        if args.synthesis_blocks:
            print("\n| frames per block of the inverse STFT | synthesis, ms per class and minute of stereo | of which "
                  "inverse FFTs |\n|---|---|---|")
            for frames in args.synthesis_blocks:
                synthesis, fft = synthesis_cost(block_frames=frames, device=args.device)
                print(f"| {frames or 'whole 10 s span'} | {1000 * synthesis:.1f} | {1000 * fft:.1f} |", flush=True)
        if args.cli_classes:
            rows = cli_classes_scaling(args.model, args.device, tmp, repeats=args.repeats)
            print(f"\n| classes asked for (CLI, 10-minute 44.1 kHz stereo file, float32 WAV stems) | wall seconds "
                  f"(median of {args.repeats}) | relative to 1 class |\n|---|---|---|")
            for n, sec in rows:
                print(f"| {n} | {sec:.2f} | {sec / rows[0][1]:.2f}x |", flush=True)
        if args.compare:
            path = tmp / "compare.wav"
            make_file(path, 1)
            from sgnsep import Separator

            sep = Separator(args.model, device=args.device)
            audio, _ = sf.read(path, dtype="float32", always_2d=True)
            ours = time_once(lambda: sep.separate(audio.T, RATE, args.sources), sep.device)
            print(f"\n| separator (same 60 s file, same machine, in-process, {args.device}) | seconds | real-time factor "
                  "| sgnsep is faster by |\n|---|---|---|---|")
            print(f"| sgnsep {args.model} ({args.sources}) | {ours:.2f} | {60 / ours:.1f}x | 1.0x |")
            for name, sec in compare_others(path, 60, args.device):
                print(f"| {name} | {sec:.2f} | {60 / sec:.1f}x | {sec / ours:.1f}x |")
            print("\nOpen-Unmix and Demucs ran with random weights (none can be downloaded here): same computation, "
                  "so the timing is fair; their outputs are not meaningful.")


if __name__ == "__main__":
    main()
