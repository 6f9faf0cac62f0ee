"""Figures (`separate --plot`, `detect --plot`, `eval --plot`) on real files through the CLI, and the message
users get without matplotlib."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sgnsep.plots import plotting
from tests.test_hardening import assert_clean_failure, cli_env, files_under, run_cli_many
from tests.tone_model import tone

pytest.importorskip("matplotlib")  # the `test` extra installs it; `plot` for users


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) of a PNG, after checking it is a whole, decodable PNG."""
    from PIL import Image

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path} is not a PNG"
    with Image.open(path) as im:
        im.load()  # decodes every row: a truncated file fails here
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    rng = np.random.default_rng(11)
    x = (tone("low", 4.0, 22050, rng) + tone("hiss", 4.0, 22050, rng)) / 2
    path = tmp_path_factory.mktemp("plot-in") / "song.wav"
    sf.write(path, np.stack([x, x], axis=1), 22050)
    return path


@pytest.fixture(scope="module")
def stems_dir(tmp_path_factory):
    """Two tracks in the stems layout, DIR/<track>/<class>.wav, for `sgnsep eval`."""
    root = tmp_path_factory.mktemp("plot-stems")
    for i, pair in enumerate((("low", "high"), ("high", "hiss"))):
        rng = np.random.default_rng(20 + i)
        (root / f"t{i}").mkdir()
        for name in pair:
            sf.write(root / f"t{i}" / f"{name}.wav", tone(name, 2.0, 11025, rng) / 2, 11025)
    return root


def test_separate_plot_writes_spectrograms_and_masks_next_to_the_stems(presence_model_dir, song, tmp_path):
    runs = run_cli_many([
        ["separate", song, "-s", "low,hiss", "-m", presence_model_dir, "-o", tmp_path / "o", "--plot", "--json"],
        ["separate", song, "-s", "low", "-m", presence_model_dir, "-o", tmp_path / "t", "--plot",
         "--name", "{track}-{source}.{ext}"],
        ["separate", song, "-s", "low,hiss", "-m", presence_model_dir, "-o", tmp_path / "o", "--plot"],
    ], tmp_path)
    assert runs[0].returncode == 0, runs[0].stderr
    track = tmp_path / "o" / "tone-tiny" / "song"
    assert sorted(p.name for p in track.iterdir()) == ["hiss.wav", "low.wav", "separation.png"]
    assert png_size(track / "separation.png") == (plotting.FIGURE_WIDTH_PX, plotting.separation_figure_height(2))
    (f,) = json.loads(runs[0].stdout)["files"]
    assert f["figure"] == f["outputs"]["separation"] == str(track / "separation.png")
    # The figure follows the --name template like the stems.
    assert runs[1].returncode == 0, runs[1].stderr
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["song-low.wav", "song-separation.png"]
    assert png_size(tmp_path / "t" / "song-separation.png")[1] == plotting.separation_figure_height(1)
    # Never over an existing figure without --overwrite.
    assert_clean_failure(runs[2], 4, "already exist", "--overwrite")


def test_detect_plot_and_eval_plot(presence_model_dir, song, stems_dir, tmp_path):
    runs = run_cli_many([
        ["detect", song, "-m", presence_model_dir, "--plot", tmp_path / "presence.png"],
        ["eval", "-m", presence_model_dir, "--data-dir", stems_dir, "--metrics", "sdr,si-sdr",
         "--plot", tmp_path / "scores.png", "--out", tmp_path / "scores.json"],
        ["eval", "-m", presence_model_dir, "--data-dir", stems_dir, "--metrics", "sdr", "--plot", tmp_path / "scores.png"],
    ], tmp_path)
    for r in runs[:2]:
        assert r.returncode == 0, r.stderr
    assert png_size(tmp_path / "presence.png") == (plotting.FIGURE_WIDTH_PX, plotting.presence_figure_height(3))
    assert png_size(tmp_path / "scores.png") == (plotting.FIGURE_WIDTH_PX, plotting.eval_figure_height(2))
    assert "wrote chart" in runs[1].stderr
    report = json.loads((tmp_path / "scores.json").read_text())
    assert set(report["methods"]) == {"model", "mixture", "oracle-ibm", "oracle-irm"}  # the chart's bars
    assert_clean_failure(runs[2], 4, "scores.png already exists", "--overwrite")


def test_without_matplotlib_the_flags_say_how_to_install_it_and_nothing_is_written(
    presence_model_dir, song, stems_dir, tmp_path
):
    blocker = tmp_path / "no-matplotlib"
    blocker.mkdir()
    (blocker / "matplotlib.py").write_text("raise ImportError('matplotlib is blocked for this test')\n")
    env = cli_env()
    env["PYTHONPATH"] = f"{blocker}:{env['PYTHONPATH']}"
    clips = tmp_path / "clips" / "low"
    clips.mkdir(parents=True)
    sf.write(clips / "a.wav", np.zeros(11025, np.float32), 11025)
    cases = [
        ["separate", song, "-s", "low", "-m", presence_model_dir, "-o", tmp_path / "o", "--plot"],
        ["detect", song, "-m", presence_model_dir, "--plot", tmp_path / "p.png", "--json", tmp_path / "p.json"],
        ["eval", "-m", presence_model_dir, "--data-dir", stems_dir, "--plot", tmp_path / "e.png"],
        ["embed", tmp_path / "clips", "-m", presence_model_dir, "--out", tmp_path / "emb.png"],
    ]
    for args in cases:
        r = subprocess.run([sys.executable, "-m", "sgnsep", *map(str, args)], capture_output=True, text=True,
                           env=env, timeout=300)
        r.args = args
        assert_clean_failure(r, 2, "need matplotlib", "pip install 'sgnsep[plot]'")
    assert not (tmp_path / "o").exists()  # refused before separating: no stems without their figure
    assert files_under(tmp_path) == sorted([blocker / "matplotlib.py", clips / "a.wav"])


def test_spectrograms_are_computed_in_blocks_with_bounded_columns(monkeypatch):
    from sgnsep.audio.resampled_mono import ResampledMono
    from tests.tone_model import TINY_AUDIO

    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal((2, 22050 * 6))).astype(np.float32)
    source = ResampledMono.from_array(x, 22050, TINY_AUDIO.sample_rate)
    whole = plotting.pooled_spectrogram(source, TINY_AUDIO, max_columns=10_000)
    monkeypatch.setattr(plotting, "_BLOCK_FRAMES", 7)  # many small blocks: the same frames
    blocked = plotting.pooled_spectrogram(source, TINY_AUDIO, max_columns=10_000)
    assert whole.pool == 1 and whole.magnitude.shape == (TINY_AUDIO.warp_bins, 1 + source.total // TINY_AUDIO.hop_length)
    assert np.abs(whole.magnitude - blocked.magnitude).max() < 1e-4 * whole.magnitude.max()
    # Away from the file's edges each column is the model's own STFT frame (warped), as the network sees it.
    import torch

    from sgnsep.audio import frontend

    ref = frontend.warp(frontend.stft(torch.from_numpy(source.read(0, source.total)), TINY_AUDIO).abs()[None], TINY_AUDIO)[0]
    assert np.abs(whole.magnitude[:, 5:-5] - ref.numpy()[:, 5:-5]).max() < 1e-3 * float(ref.max())
    # A long recording is averaged down to at most max_columns columns.
    long = ResampledMono.from_array(np.zeros(11025 * 600, np.float32), 11025, TINY_AUDIO.sample_rate)
    assert plotting.pooled_spectrogram(long, TINY_AUDIO, max_columns=300).magnitude.shape[1] <= 300
