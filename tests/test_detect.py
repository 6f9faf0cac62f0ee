"""`sgnsep detect` and `sgnsep separate --sources auto` on real files, with the tiny tone model.

The test recordings switch instruments half-way: the first half holds "low" and "high" tones, the second
"high" and "hiss". The presence model (tests/conftest.py) has learnt pairs of tones well enough that each
window's probabilities must follow that switch.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import soundfile as sf

from sgnsep import Separator
from sgnsep.analysis.detection import detect_array, window_starts
from tests.test_hardening import assert_clean_failure, files_under, run_cli_many
from tests.tone_model import TINY_AUDIO, tone

WINDOW = TINY_AUDIO.segment_samples / TINY_AUDIO.sample_rate  # 1.49 s


def pair(a: str, b: str, seconds: float, sr: int, seed: int) -> np.ndarray:
    """Two tone classes mixed as in training (each scaled by 1/2), mono."""
    rng = np.random.default_rng(seed)
    return ((tone(a, seconds, sr, rng) + tone(b, seconds, sr, rng)) / 2).astype(np.float32)


def switching(sr: int, half: float = 4.0, channels: int = 2) -> np.ndarray:
    """(samples, channels): low+high for ``half`` seconds, then high+hiss for ``half`` seconds."""
    x = np.concatenate([pair("low", "high", half, sr, 1), pair("high", "hiss", half, sr, 2)])
    return np.stack([x * g for g in np.linspace(1.0, 0.8, channels)], axis=1)


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    d = tmp_path_factory.mktemp("detect-in")
    sf.write(d / "switch.wav", switching(22050), 22050, subtype="PCM_16")
    sf.write(d / "duo.flac", np.stack([pair("low", "high", 5.0, 44100, 3)] * 2, axis=1), 44100)
    return d


def test_detect_timeline_follows_the_instruments_and_writes_json_and_csv(presence_model_dir, recordings, tmp_path):
    src = recordings / "switch.wav"
    out = tmp_path / "out"
    (r,) = run_cli_many(
        [["detect", src, "-m", presence_model_dir, "--json", out / "p.json", "--csv", out / "p.csv"]], tmp_path
    )
    assert r.returncode == 0, r.stderr
    assert "Present (threshold 0.5): low, high, hiss" in r.stdout
    data = json.loads((out / "p.json").read_text())
    assert data["classes"] == ["low", "high", "hiss"] and data["present"] == ["low", "high", "hiss"]
    assert data["duration"] == pytest.approx(8.0) and data["hop_seconds"] == pytest.approx(1.0, abs=1e-3)
    windows = data["windows"]
    starts = [w["start"] for w in windows]
    # One window a second, the last moved back to end with the file; every window is a full segment.
    assert starts[:7] == pytest.approx([0, 1, 2, 3, 4, 5, 6], abs=1e-3)
    assert windows[-1]["end"] == pytest.approx(8.0) and len(windows) == 8
    assert all(w["end"] - w["start"] == pytest.approx(WINDOW, abs=1e-3) for w in windows)
    first = [w["probabilities"] for w in windows if w["end"] <= 4.0]
    second = [w["probabilities"] for w in windows if w["start"] >= 4.0]
    assert len(first) >= 3 and len(second) >= 3
    assert all(p["low"] > 0.5 and p["high"] > 0.5 and p["hiss"] < 0.5 for p in first), first
    assert all(p["low"] < 0.5 and p["high"] > 0.5 and p["hiss"] > 0.5 for p in second), second
    summary = {row["class"]: row for row in data["summary"]}
    (low_span,) = summary["low"]["spans"]  # one stretch, at the start, ending around the switch
    assert low_span[0] == 0.0 and 4.0 <= low_span[1] <= 4.0 + WINDOW
    assert summary["hiss"]["spans"][-1][1] == pytest.approx(8.0)
    # The CSV holds the same windows, one row each.
    rows = list(csv.reader((out / "p.csv").open()))
    assert rows[0] == ["start", "end", "low", "high", "hiss"] and len(rows) == 1 + len(windows)
    for row, w in zip(rows[1:], windows):
        assert float(row[0]) == pytest.approx(w["start"], abs=1e-3)
        assert [float(v) for v in row[2:]] == pytest.approx([w["probabilities"][c] for c in ("low", "high", "hiss")], abs=1e-4)


def test_detect_decision_threshold_min_seconds_and_stdout(presence_model_dir, recordings, tmp_path):
    src = recordings / "switch.wav"
    runs = run_cli_many([
        ["detect", src, "-m", presence_model_dir, "--json", "-"],
        ["detect", src, "-m", presence_model_dir, "--min-seconds", "7", "--csv", "-"],
        ["detect", src, "-m", presence_model_dir, "--min-seconds", "60"],
        ["detect", src, "-m", presence_model_dir, "--hop", "0.5", "--json", tmp_path / "half.json"],
    ], tmp_path)
    for r in runs:
        assert r.returncode == 0, r.stderr
    data = json.loads(runs[0].stdout)  # stdout holds only the JSON; the table went to stderr
    assert data["present"] == ["low", "high", "hiss"] and "Present" in runs[0].stderr
    # Only "high" sounds all along: over 7 s it is the one class present (low: 4.5 s, hiss: 5 s).
    assert runs[1].stdout.splitlines()[0] == "start,end,low,high,hiss"
    assert "Present (threshold 0.5, at least 7 s): high" in runs[1].stderr
    assert "No class is present" in runs[2].stdout
    half = json.loads((tmp_path / "half.json").read_text())
    assert half["hop_seconds"] == pytest.approx(0.5, abs=1e-3) and len(half["windows"]) == 15


def test_detect_errors_are_one_line_and_nothing_is_overwritten(presence_model_dir, recordings, tmp_path):
    src = recordings / "switch.wav"
    (tmp_path / "p.json").write_text("keep me")
    runs = run_cli_many([
        ["detect", src, "-m", presence_model_dir, "--json", tmp_path / "p.json"],
        ["detect", src, "-m", presence_model_dir, "--threshold", "1.5"],
        ["detect", src, "-m", presence_model_dir, "--hop", "0"],
        ["detect", tmp_path / "missing.wav", "-m", presence_model_dir],
        ["detect", src, "-m", presence_model_dir, "--json", "-", "--csv", "-"],
    ], tmp_path)
    assert_clean_failure(runs[0], 4, "p.json already exists", "--overwrite")
    assert (tmp_path / "p.json").read_text() == "keep me"
    assert_clean_failure(runs[1], 2, "--threshold", "between 0 and 1")
    assert_clean_failure(runs[2], 2, "--hop must be a positive")
    assert_clean_failure(runs[3], 3, "missing.wav: no such file")
    assert_clean_failure(runs[4], 2, "both ask for stdout")


def test_detection_in_blocks_equals_one_pass_and_windows_cover_the_file(presence_model_dir):
    sep = Separator(presence_model_dir, device="cpu")
    x = switching(16000, half=5.0).T
    whole = detect_array(sep, x, 16000, block_seconds=1000.0)
    blocked = detect_array(sep, x, 16000, block_seconds=2.0)  # memory of a 2 s block, however long the file
    assert np.allclose(whole.starts, blocked.starts)
    assert np.abs(whole.probabilities - blocked.probabilities).max() < 1e-4
    assert window_starts(100, 150, 10) == [0]  # shorter than a window: one, zero-padded
    assert window_starts(1000, 150, 100) == [0, 100, 200, 300, 400, 500, 600, 700, 800, 850]
    short = detect_array(sep, x[:, :8000], 16000)
    assert len(short.starts) == 1 and short.ends[0] == pytest.approx(0.5)


def test_separate_sources_auto_writes_only_the_classes_present(presence_model_dir, recordings, tmp_path):
    src = recordings / "duo.flac"  # low + high only
    runs = run_cli_many([
        ["separate", src, "--sources", "auto", "-m", presence_model_dir, "-o", tmp_path / "o", "--json", "--residual"],
        ["separate", src, "--sources", "auto", "-m", presence_model_dir, "-o", tmp_path / "none", "--min-seconds", "60"],
        ["separate", src, "-s", "auto", "-m", presence_model_dir, "-o", tmp_path / "gain", "--gain", "hiss=-6"],
        ["separate", src, "-s", "low", "-m", presence_model_dir, "-o", tmp_path / "named", "--threshold", "0.7"],
    ], tmp_path)
    r = runs[0]
    assert r.returncode == 0, r.stderr
    assert "detected in duo.flac: low, high" in r.stderr
    track = tmp_path / "o" / "tone-tiny" / "duo"
    assert sorted(p.name for p in track.iterdir()) == ["high.wav", "low.wav", "residual.wav"]  # no hiss stem
    manifest = json.loads(r.stdout)
    assert manifest["classes"] == "auto"
    (f,) = manifest["files"]
    assert f["sources"] == ["low", "high"] and f["detection"]["present"] == ["low", "high"]
    probs = f["detection"]["probabilities"]
    assert probs["low"]["max"] > 0.5 and probs["high"]["max"] > 0.5 and probs["hiss"]["max"] < 0.5
    mix, _ = sf.read(src, always_2d=True)
    total = sum(sf.read(p, always_2d=True)[0] for p in track.iterdir())
    assert np.abs(total - mix).max() < 1e-4  # the stems of the present classes plus residual are the input
    # Nothing present: a clear error, exit 8, and nothing written at all.
    assert_clean_failure(runs[1], 8, "duo.flac: no class detected", "--threshold", "nothing was written")
    assert not (tmp_path / "none").exists()
    # A gain for a class that was not detected is refused for that file, before anything is written.
    assert_clean_failure(runs[2], 2, "--gain names hiss, which was not detected", "detected: low, high")
    assert files_under(tmp_path / "gain") == []
    # Detection settings without --sources auto would be silently ignored: they are refused instead.
    assert_clean_failure(runs[3], 2, "--threshold only apply with --sources auto")
    assert not (tmp_path / "named").exists()
