"""PNG figures: separation (paper figures 2 and 5), presence over time, evaluation scores, class embeddings.

matplotlib is an optional extra (``pip install 'sgnsep[plot]'``), imported only when a figure is asked for;
without it :func:`require_matplotlib` raises a :class:`UsageError` that says how to install it. Figures are
drawn on matplotlib's object API with the Agg canvas, never through pyplot, so making one does not change
the backend or the state of a user's own matplotlib session.

Spectrograms are shown as the network sees them: mono at the model's rate, the model's STFT, on the
log-frequency axis of its front end (``frontend.warp``), in dB. Long recordings are read in blocks and
averaged down to at most ``MAX_COLUMNS`` time columns, so memory stays flat. Every figure has a fixed size
in pixels (``FIGURE_WIDTH_PX`` wide) and is written atomically (never over an existing file unless the caller
checked ``--overwrite``).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from sgnsep.audio import frontend
from sgnsep._version import __version__
from sgnsep.core.atomic_write import write_bytes_atomic
from sgnsep.models.config import AudioConfig
from sgnsep.core.errors import UsageError
from sgnsep.audio.resampled_mono import ResampledMono

INSTALL_HINT = "pip install 'sgnsep[plot]'"
DPI = 100
FIGURE_WIDTH_PX = 1000
MAX_COLUMNS = 600  # time columns of a spectrogram image (the figure is 1000 px wide)
DB_RANGE = 80.0  # dB shown below the mixture's loudest bin
_BLOCK_FRAMES = 4096  # STFT frames computed at once


def require_matplotlib():
    """Import matplotlib, or explain how to install it (the ``plot`` extra)."""
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
        from matplotlib.figure import Figure  # noqa: F401
    except ImportError:
        raise UsageError(
            "Figures need matplotlib, which is not installed.", hint=f"Install it with: {INSTALL_HINT}"
        ) from None
    return matplotlib


def _new_figure(height_px: int):
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(FIGURE_WIDTH_PX / DPI, height_px / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_png(fig, path: Path) -> None:
    """Render ``fig`` at its exact pixel size and write it atomically.

    The image is stored with a 64-colour palette: the file comes out four to five times smaller than full
    RGBA (a separation figure of two classes: 180 KB instead of 760 KB), and the colour maps still read as
    smooth ramps.
    """
    from PIL import Image, PngImagePlugin  # a dependency of matplotlib

    fig.canvas.draw()
    rgb = Image.fromarray(np.asarray(fig.canvas.buffer_rgba())).convert("RGB")
    image = rgb.quantize(colors=64, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", f"sgnsep {__version__}")
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True, pnginfo=info)
    write_bytes_atomic(Path(path), buf.getvalue())


# --- spectrograms on the model's log-frequency axis ---------------------------------------------------------


@dataclass
class Spectrogram:
    """Magnitudes (W, columns) on the model's warped frequency axis, each column the mean of ``pool`` frames."""

    magnitude: np.ndarray
    seconds: float
    pool: int


def pooled_spectrogram(source: ResampledMono, audio: AudioConfig, max_columns: int = MAX_COLUMNS) -> Spectrogram:
    """The model's STFT magnitude of ``source``, averaged over time to at most ``max_columns`` columns."""
    hop, n_fft = audio.hop_length, audio.n_fft
    frames = 1 + source.total // hop
    pool = max(1, math.ceil(frames / max_columns))
    columns = -(-frames // pool)
    acc = np.zeros((audio.freq_bins, columns), dtype=np.float64)
    counts = np.zeros(columns, dtype=np.float64)
    window = torch.hann_window(n_fft, periodic=True)
    step = max(1, _BLOCK_FRAMES // pool) * pool  # whole pools per block
    for f0 in range(0, frames, step):
        f1 = min(frames, f0 + step)
        # Frame f is centred on sample f * hop; zeros stand in for the reflect padding at the file's edges.
        start = f0 * hop - n_fft // 2
        wave = source.read(max(0, start), (f1 - 1) * hop + n_fft // 2 + 1)
        wave = np.concatenate([np.zeros(max(0, -start), np.float32), wave])
        spec = torch.stft(torch.from_numpy(wave), n_fft, hop, window=window, center=False, return_complex=True)
        mag = spec.abs().numpy()[:, : f1 - f0]
        cols = np.arange(f0, f0 + mag.shape[1]) // pool
        np.add.at(acc.T, cols, mag.T)
        np.add.at(counts, cols, 1.0)
    mean = acc / np.maximum(counts, 1.0)
    warped = frontend.warp(torch.from_numpy(mean).float().unsqueeze(0), audio)[0].numpy()
    return Spectrogram(np.maximum(warped, 0.0), source.seconds, pool)


def _hz_ticks(audio: AudioConfig) -> tuple[list[float], list[str]]:
    """Rows of the warped axis (see frontend._warp_grid) at round frequencies, and their labels."""
    rows, labels = [], []
    top = audio.sample_rate / 2
    for hz in (100, 200, 500, 1000, 2000, 5000, 10000, 20000):
        if hz >= top:
            break
        src = 2.0 * (hz / top) - 1.0  # linear bin in [-1, 1]
        y = math.log(10.0 * src + 11.0) / math.log(21.0) * 2.0 - 1.0
        rows.append((y + 1.0) / 2.0 * audio.warp_bins)
        labels.append(f"{hz // 1000}k" if hz >= 1000 else str(hz))
    return rows, labels


def _db(mag: np.ndarray, reference: float = 1.0) -> np.ndarray:
    return 20.0 * np.log10(np.maximum(mag, 1e-10) / reference)


def _show(ax, image: np.ndarray, seconds: float, audio: AudioConfig, title: str, **kw):
    im = ax.imshow(image, origin="lower", aspect="auto", extent=(0.0, seconds, 0.0, audio.warp_bins),
                   interpolation="nearest", **kw)
    rows, labels = _hz_ticks(audio)
    ax.set_yticks(rows, labels)
    ax.set_ylabel("Hz")
    ax.set_title(title, fontsize=10, loc="left")
    return im


def separation_figure(
    mixture: str | Path,
    stems: dict[str, str | Path],
    target: str | Path,
    audio: AudioConfig,
    *,
    title: str = "",
) -> Path:
    """Mixture spectrogram, then per class its separated spectrogram and its mask (paper figures 2 and 5).

    The mask shown is the one the stem received, ``|stem| / |mixture|`` on the model's STFT (clipped to
    [0, 1]): the blended segment masks as they were applied, at the model's time-frequency resolution.
    """
    mix = pooled_spectrogram(ResampledMono.from_file(mixture, audio.sample_rate), audio)
    specs = {k: pooled_spectrogram(ResampledMono.from_file(v, audio.sample_rate), audio) for k, v in stems.items()}
    ref = max(float(mix.magnitude.max()), 1e-10)  # 0 dB: the mixture's loudest bin
    levels = {"vmin": -DB_RANGE, "vmax": 0.0, "cmap": "magma"}
    n = len(specs)
    fig = _new_figure(separation_figure_height(n))
    grid = fig.add_gridspec(1 + n, 2)
    ax = fig.add_subplot(grid[0, :])
    im = _show(ax, _db(mix.magnitude, ref), mix.seconds, audio, f"mixture{': ' + title if title else ''}", **levels)
    fig.colorbar(im, ax=ax, label="dB", pad=0.01)
    mask_axes = []
    for i, (name, spec) in enumerate(specs.items(), start=1):
        left = fig.add_subplot(grid[i, 0], sharex=ax)
        _show(left, _db(spec.magnitude, ref), spec.seconds, audio, f"{name}: separated", **levels)
        right = fig.add_subplot(grid[i, 1], sharex=ax)
        mask = np.clip(spec.magnitude / np.maximum(mix.magnitude, 1e-10), 0.0, 1.0)
        mask[mix.magnitude < ref * 10 ** (-DB_RANGE / 20)] = np.nan  # no mixture to speak of: left blank
        im_mask = _show(right, mask, spec.seconds, audio, f"{name}: mask", vmin=0.0, vmax=1.0, cmap="viridis")
        mask_axes.append(right)
        if i == n:
            left.set_xlabel("seconds")
            right.set_xlabel("seconds")
    if n:
        fig.colorbar(im_mask, ax=mask_axes, pad=0.01, label="mask")
    save_png(fig, Path(target))
    return Path(target)


def separation_figure_height(num_classes: int) -> int:
    return 40 + 190 * (1 + num_classes)


def presence_figure(timeline, source: ResampledMono, target: str | Path, audio: AudioConfig) -> Path:
    """Mixture spectrogram above the presence probability of every class over time (``detect --plot``).

    Each column of the heat map is one detection window, drawn around the window's centre; present classes
    are marked with a filled dot next to their name.
    """
    mix = pooled_spectrogram(source, audio)
    classes = list(timeline.classes)
    fig = _new_figure(presence_figure_height(len(classes)))
    spec_px = 200
    grid = fig.add_gridspec(2, 1, height_ratios=[spec_px, 22 * len(classes)])
    ax = fig.add_subplot(grid[0])
    ref = max(float(mix.magnitude.max()), 1e-10)
    im = _show(ax, _db(mix.magnitude, ref), mix.seconds, audio, f"{Path(timeline.input).name}: mixture",
               vmin=-DB_RANGE, vmax=0.0, cmap="magma")
    fig.colorbar(im, ax=ax, label="dB", pad=0.01)
    heat = fig.add_subplot(grid[1], sharex=ax)
    # Each time shows the window centred nearest to it; the first and last windows reach the file's edges.
    centres = (timeline.starts + timeline.ends) / 2
    edges = np.concatenate([[0.0], (centres[1:] + centres[:-1]) / 2, [timeline.duration]])
    mesh = heat.pcolormesh(edges, np.arange(len(classes) + 1), timeline.probabilities.T, vmin=0.0, vmax=1.0,
                           cmap="Greens", shading="flat")
    present = set(timeline.present)
    heat.set_yticks(np.arange(len(classes)) + 0.5,
                    [f"{c} \u25cf" if c in present else c for c in classes], fontsize=8)
    heat.invert_yaxis()
    heat.set_xlim(0.0, timeline.duration)
    heat.set_xlabel("seconds (each time: the window centred nearest to it)")
    heat.set_title(
        f"presence probability, {timeline.window_seconds:.1f} s windows every {timeline.hop_seconds:g} s; "
        f"\u25cf present at threshold {timeline.threshold:g}", fontsize=10, loc="left")
    fig.colorbar(mesh, ax=heat, label="p", pad=0.01)
    save_png(fig, Path(target))
    return Path(target)


def presence_figure_height(num_classes: int) -> int:
    return 320 + 22 * num_classes


# --- evaluation scores -----------------------------------------------------------------------------------------

_METHOD_COLOURS = {"model": "#d62728", "mixture": "#7f7f7f", "oracle-ibm": "#1f77b4", "oracle-irm": "#9ecae1"}


def eval_figure(report, target: str | Path) -> Path:
    """Per-class mean scores (bars, with the standard deviation) of the model next to its baselines.

    One panel per metric of the report; groups are "overall" and every class.
    """
    summary = report.summary()
    metrics = list(report.metrics)
    fig = _new_figure(eval_figure_height(len(metrics)))
    groups = ["overall"] + sorted({r["class"] for r in report.records})
    methods = list(report.methods)
    width = 0.8 / max(1, len(methods))
    x = np.arange(len(groups))
    for k, metric in enumerate(metrics):
        ax = fig.add_subplot(len(metrics), 1, k + 1)
        for j, method in enumerate(methods):
            stats = [summary.get(method, {}).get(g, {}).get(metric) for g in groups]
            heights = [s["mean"] if s else np.nan for s in stats]
            errs = [s["std"] if s else 0.0 for s in stats]
            ax.bar(x + (j - (len(methods) - 1) / 2) * width, heights, width, yerr=errs, capsize=2,
                   label=method, color=_METHOD_COLOURS.get(method), error_kw={"elinewidth": 0.6})
        ax.axhline(0.0, color="black", linewidth=0.6)
        ax.set_ylabel(f"{metric.upper()} (dB)")
        ax.set_xticks(x, groups, rotation=30 if len(groups) > 8 else 0, fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        if k == 0:
            data = report.data
            models = [m.get("name") for m in getattr(report, "models", None) or [report.model]]
            ax.set_title(f"{', '.join(map(str, models))} on {Path(str(data.get('dir', ''))).name} "
                         f"({data.get('mixtures')} mixtures): mean \u00b1 std per class", fontsize=10, loc="left")
            # Above the panels, so that no bar is hidden behind it.
            handles, names = ax.get_legend_handles_labels()
            fig.legend(handles, names, fontsize=8, ncols=len(methods), loc="outside upper right", frameon=False)
    save_png(fig, Path(target))
    return Path(target)


def eval_figure_height(num_metrics: int) -> int:
    return 60 + 240 * num_metrics


# --- class embeddings ------------------------------------------------------------------------------------------


def embedding_figure(
    points: np.ndarray,
    labels: Sequence[str],
    target: str | Path,
    *,
    title: str,
    axis_labels: tuple[str, str] = ("component 1", "component 2"),
) -> Path:
    """Scatter of 2-D points (N, 2), one colour per class, each class named just above its group."""
    fig = _new_figure(EMBEDDING_FIGURE_HEIGHT)
    ax = fig.add_subplot(1, 1, 1)
    import matplotlib

    names = sorted(set(labels))
    cmap = matplotlib.colormaps["tab20" if len(names) > 10 else "tab10"]
    labels = np.asarray(labels)
    for i, name in enumerate(names):
        sel = labels == name
        colour = cmap(i % cmap.N)
        # Colour and marker both change from class to class: 17 colours alone are hard to tell apart.
        ax.scatter(points[sel, 0], points[sel, 1], s=22, color=colour, marker=_MARKERS[i % len(_MARKERS)],
                   label=f"{name} ({int(sel.sum())})", alpha=0.85, edgecolors="none")
        # Just above the group's centroid, so that a tight group's label does not cover its points.
        cx, cy = points[sel].mean(axis=0)
        ax.annotate(name, (cx, cy), xytext=(0, 7), textcoords="offset points", fontsize=8, ha="center",
                    va="bottom", weight="bold",
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": colour, "alpha": 0.8})
    ax.set_title(title, fontsize=10, loc="left")
    ax.set_xlabel(axis_labels[0], fontsize=9)
    ax.set_ylabel(axis_labels[1], fontsize=9)
    ax.margins(0.08)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    save_png(fig, Path(target))
    return Path(target)


EMBEDDING_FIGURE_HEIGHT = 640
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">")
