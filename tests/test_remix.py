"""`sgnsep separate --gain`: a rebalanced mix written next to the stems, on real files through the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile as sf

from sgnsep.core.errors import UsageError
from sgnsep.separation.remix import LIMITED_PEAK, parse_gains
from tests.test_hardening import assert_clean_failure, files_under, run_cli_many
from tests.tone_model import tone


def db(x: float) -> float:
    return 10 ** (x / 20)


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    """3 s of low + high tones, stereo, 44.1 kHz, 16-bit."""
    rng = np.random.default_rng(7)
    x = (tone("low", 3.0, 44100, rng) + tone("high", 3.0, 44100, rng)) / 2
    path = tmp_path_factory.mktemp("remix-in") / "song.wav"
    sf.write(path, np.stack([x, 0.7 * x], axis=1), 44100, subtype="PCM_16")
    return path


def read(path):
    return sf.read(path, always_2d=True, dtype="float64")[0]


def test_remix_is_stems_with_gains_plus_residual_and_zero_gains_give_the_input(presence_model_dir, song, tmp_path):
    runs = run_cli_many([
        ["separate", song, "-s", "low,high", "-m", presence_model_dir, "-o", tmp_path / "zero", "--gain", "low=0,high=0"],
        ["separate", song, "-s", "low,high", "-m", presence_model_dir, "-o", tmp_path / "g", "--residual",
         "--gain", "LOW=-6 dB, high=+3", "--json"],
        ["separate", song, "-s", "low,high", "-m", presence_model_dir, "-o", tmp_path / "mute", "--residual",
         "--gain", "low=mute", "--ext", "flac"],
    ], tmp_path)
    for r in runs:
        assert r.returncode == 0, r.stderr
    mix = read(song)
    # All gains at 0 dB: the remix is the input, to float precision.
    zero = tmp_path / "zero" / "tone-tiny" / "song"
    assert sorted(p.name for p in zero.iterdir()) == ["high.wav", "low.wav", "remix.wav"]
    remix = read(zero / "remix.wav")
    assert remix.shape == mix.shape and np.abs(remix - mix).max() < 1e-6
    # Gains: 10^(g/20) * stem for each class, plus the residual (classes spelt as the user likes).
    g = tmp_path / "g" / "tone-tiny" / "song"
    expected = db(-6) * read(g / "low.wav") + db(3) * read(g / "high.wav") + read(g / "residual.wav")
    assert np.abs(read(g / "remix.wav") - expected).max() < 1e-5
    assert sf.info(g / "remix.wav").samplerate == 44100 and sf.info(g / "remix.wav").channels == 2
    (f,) = json.loads(runs[1].stdout)["files"]
    assert f["outputs"]["remix"] == str(g / "remix.wav")
    assert f["remix"]["gains_db"] == {"low": -6.0, "high": 3.0} and f["remix"]["attenuation_db"] == 0.0
    # Mute: the class is gone, the rest is untouched (flac 24-bit: to its precision).
    m = tmp_path / "mute" / "tone-tiny" / "song"
    expected = read(m / "high.flac") + read(m / "residual.flac")
    assert sf.info(m / "remix.flac").subtype == "PCM_24"
    assert np.abs(read(m / "remix.flac") - expected).max() < 1e-5


def test_remix_that_would_clip_is_scaled_down_and_said_so(presence_model_dir, song, tmp_path):
    (r,) = run_cli_many([
        ["separate", song, "-s", "low,high", "-m", presence_model_dir, "-o", tmp_path, "--gain", "high=+20",
         "--bit-depth", "16", "--json"],
    ], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "would peak at" in r.stderr and "scaled down by" in r.stderr and "-1 dBFS" in r.stderr
    track = tmp_path / "tone-tiny" / "song"
    remix = read(track / "remix.wav")
    unscaled = read(song) + (db(20) - 1) * read(track / "high.wav")
    assert np.abs(unscaled).max() > 1.0  # it would have clipped
    (f,) = json.loads(r.stdout)["files"]
    scale = db(-f["remix"]["attenuation_db"])
    assert np.abs(remix).max() == pytest.approx(LIMITED_PEAK, abs=1e-3)  # -1 dBFS, not clipped
    assert np.abs(remix - scale * unscaled).max() < 2e-4  # the same balance, one overall gain (16-bit)
    assert f["remix"]["peak_dbfs"] == pytest.approx(20 * math.log10(np.abs(unscaled).max()), abs=0.01)


def test_gain_errors_are_clear_and_leave_nothing_behind(presence_model_dir, song, tmp_path):
    taken = tmp_path / "taken" / "tone-tiny" / "song"
    taken.mkdir(parents=True)
    (taken / "remix.wav").write_bytes(b"an older remix")
    base = ["separate", song, "-m", presence_model_dir]
    runs = run_cli_many([
        [*base, "-s", "low,high", "-o", tmp_path / "a", "--gain", "violin=-6"],
        [*base, "-s", "low,high", "-o", tmp_path / "b", "--gain", "hiss=-6"],
        [*base, "-s", "low", "-o", tmp_path / "c", "--gain", "low"],
        [*base, "-s", "low", "-o", tmp_path / "d", "--gain", "low=+60"],
        [*base, "-s", "low", "-o", tmp_path / "taken", "--gain", "low=-3"],
        [*base, "-s", "low", "-o", tmp_path / "e", "--gain", "low=-3,low=-4"],
    ], tmp_path)
    assert_clean_failure(runs[0], 2, "has no class 'violin'", "low, high, hiss")
    assert_clean_failure(runs[1], 2, "--gain names hiss, which is not among the --sources (low, high)")
    assert_clean_failure(runs[2], 2, "--gain entry 'low' is not class=dB", "violin=-6")
    assert_clean_failure(runs[3], 2, "at most +40 dB")
    assert_clean_failure(runs[4], 4, "remix.wav", "already exist", "--overwrite")
    assert_clean_failure(runs[5], 2, "names 'low' twice")
    for folder in "abcde":
        assert files_under(tmp_path / folder) == []
    # The existing remix was checked before separating: no stems were written next to it, it is untouched.
    assert sorted(p.name for p in taken.iterdir()) == ["remix.wav"]
    assert (taken / "remix.wav").read_bytes() == b"an older remix"


def test_a_remix_that_fails_takes_its_stems_with_it(presence_model_dir, song, tmp_path):
    blocked = tmp_path / "o" / "tone-tiny" / "song" / "remix.wav"
    blocked.mkdir(parents=True)  # a folder where the remix should go: writing it fails after the stems
    (blocked / "x").write_text("x")
    (r,) = run_cli_many([
        ["separate", song, "-s", "low,high", "-m", presence_model_dir, "-o", tmp_path / "o", "--gain", "low=-3",
         "--overwrite"],
    ], tmp_path)
    assert_clean_failure(r, 4, "remix.wav")
    assert files_under(tmp_path / "o") == [blocked / "x"]  # no stems without their remix, no temporary files


def test_parse_gains():
    assert parse_gains("violin=-6,cello=+3") == {"violin": -6.0, "cello": 3.0}
    assert parse_gains(" flute = 1.5dB , oboe=-inf") == {"flute": 1.5, "oboe": -math.inf}
    assert parse_gains("horn=mute") == {"horn": -math.inf}
    for bad in ("", "violin", "violin=loud", "violin=-6,", "violin=+inf", "=3"):
        with pytest.raises(UsageError):
            parse_gains(bad)
