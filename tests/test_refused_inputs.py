"""Inputs that cannot be read, and option values out of range (issue 24, kinds 7 and 8), through the real CLI.

Each case used to hang, fail with an internal error, or give a message that misled ("System error.", "is not
class=dB", "no class 'low-tone'. Did you mean 'low-tone'?"). Now each is one ``error:`` line that says what is
wrong and what to do, with the documented exit code, or it works.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.test_hardening import assert_clean_failure, files_under, run_cli_many, tones
from tests.test_reliability import model_copy


@pytest.fixture(scope="module")
def song(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("song")
    sf.write(d / "song.wav", tones(2.0, 11025), 11025)
    return d / "song.wav"


def without_root_file_access() -> None:
    """preexec_fn: as root, drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the bounding set, so that the
    program exec'd next meets file permissions as any other user does (chmod does not stop root otherwise)."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH (linux/capability.h)
        libc.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP


@pytest.fixture
def denied(tmp_path):
    """A file and a folder nobody may read, and a check that permissions really apply to the CLI's processes."""
    locked = tmp_path / "locked.wav"
    sf.write(locked, tones(1.0, 11025), 11025)
    locked.chmod(0)
    probe = subprocess.run(["cat", str(locked)], capture_output=True, preexec_fn=without_root_file_access)
    if probe.returncode == 0:
        pytest.skip("file permissions cannot be made to apply here (root without CAP_SETPCAP)")
    yield locked
    for p in tmp_path.rglob("*"):
        p.chmod(0o755)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_pipe_or_a_device_as_input_is_refused_at_once(tone_model_dir, tmp_path):
    """A FIFO with no writer used to block forever (libsndfile opens it for reading and waits)."""
    fifo = tmp_path / "fifo.wav"
    os.mkfifo(fifo)
    cases = [
        ["separate", fifo, "-s", "low", "-m", tone_model_dir, "-o", tmp_path / "o1"],
        ["detect", fifo, "-m", tone_model_dir],
        ["separate", "/dev/zero", "-s", "low", "-m", tone_model_dir, "-o", tmp_path / "o2"],
    ]
    runs = run_cli_many(cases, tmp_path)
    assert_clean_failure(runs[0], 3, str(fifo), "is a pipe, not a regular file", "Save the audio to a file")
    assert_clean_failure(runs[1], 3, str(fifo), "is a pipe")
    assert_clean_failure(runs[2], 3, "/dev/zero is a device, not a regular file")
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


def test_unreadable_files_and_folders_say_permission_denied(tone_model_dir, song, tmp_path, denied):
    """libsndfile calls a permission problem "System error."; a folder that cannot be listed was skipped
    silently by `separate` and was an internal error for `eval`, `embed` and `train`."""
    album = tmp_path / "album"
    (album / "disc2").mkdir(parents=True)
    shutil.copy(song, album / "track1.wav")
    shutil.copy(song, album / "disc2" / "track2.wav")
    (album / "disc2").chmod(0)
    clips = tmp_path / "clips"
    for cls in ("low", "high"):
        (clips / cls).mkdir(parents=True)
        shutil.copy(song, clips / cls / "a.wav")
    (clips / "high").chmod(0)
    cases = [
        ["separate", denied, "-s", "low", "-m", tone_model_dir, "-o", tmp_path / "o1"],
        ["detect", denied, "-m", tone_model_dir],
        ["separate", album, "-s", "low", "-m", tone_model_dir, "-o", tmp_path / "o2"],
        ["eval", "--data-dir", clips, "-m", tone_model_dir, "--dataset", "solos"],
        ["embed", clips, "-m", tone_model_dir, "-o", tmp_path / "e.png"],
        ["train", "--data-dir", clips, "--out", tmp_path / "run", "--max-steps", "1"],
    ]
    runs = run_cli_many(cases, tmp_path, preexec_fn=without_root_file_access)
    assert_clean_failure(runs[0], 3, str(denied), "permission denied", "chmod")
    assert_clean_failure(runs[1], 3, str(denied), "permission denied")
    assert_clean_failure(runs[2], 3, str(album / "disc2"), "cannot list this folder (Permission denied)")
    for r in runs[3:]:
        assert_clean_failure(r, 3, str(clips / "high"), "cannot list this folder (Permission denied)")
    for out in ("o1", "o2", "e.png", "run"):
        assert not (tmp_path / out).exists(), out  # refused before anything was written


def test_a_full_disk_is_named_even_where_libsndfile_says_system_error(tone_model_dir, song, tmp_path, monkeypatch):
    """In-process: libsndfile reports a failed write (ENOSPC) as "System error."; the folder is asked why."""
    from sgnsep.core.errors import OutputError
    from sgnsep.separation.separator import Separator

    def write(self, data):
        raise RuntimeError("Error writing to file: System error.")  # what soundfile raises then

    monkeypatch.setattr(sf.SoundFile, "write", write)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10 << 30, 10 << 30, 4096))
    with pytest.raises(OutputError) as e:
        Separator(tone_model_dir, device="cpu").separate_file(song, "low", out_dir=tmp_path / "out")
    assert os.strerror(errno.ENOSPC) in str(e.value) and "System error" not in str(e.value)
    assert files_under(tmp_path / "out") == []


def test_detect_refuses_hops_finer_than_a_frame_or_beyond_a_day(tone_model_dir, song, tmp_path):
    """--hop 1e-6 made one window per sample (220k windows, 2 GB for 20 s); --hop 1e308 overflowed."""
    runs = run_cli_many([["detect", song, "-m", tone_model_dir, "--hop", h] for h in ("1e-6", "1e308", "0.5")], tmp_path)
    assert_clean_failure(runs[0], 2, "--hop 1e-06 s is finer than the model's time resolution", "Use --hop")
    assert_clean_failure(runs[1], 2, "--hop must be a positive number of seconds up to 86400")
    assert runs[2].returncode == 0, runs[2].stderr


def test_gains_in_exponent_notation_are_read_as_numbers(tone_model_dir, song, tmp_path):
    runs = run_cli_many([
        ["separate", song, "-s", "low,high", "-m", tone_model_dir, "-o", tmp_path / "o1", "--gain", "low=1e308"],
        ["separate", song, "-s", "low,high", "-m", tone_model_dir, "-o", tmp_path / "o2", "--gain", "low=-1.2e1"],
    ], tmp_path)
    assert_clean_failure(runs[0], 2, "--gain low=1e308: at most +40 dB")
    assert runs[1].returncode == 0, runs[1].stderr
    assert (tmp_path / "o2" / "tone-tiny" / "song" / "remix.wav").is_file()


def test_class_names_with_hyphens_and_spaces_can_be_asked_for(tone_model_dir, song, tmp_path):
    """Classes come from training folder names such as `low-tone/`; `-s low-tone` said "no class 'low-tone'. Did
    you mean 'low-tone'?". Case, spaces, hyphens and underscores do not count, unless that makes a name ambiguous."""
    named = model_copy(tone_model_dir, tmp_path / "named", classes=["low-tone", "High Tone", "hiss"])
    clash = model_copy(tone_model_dir, tmp_path / "clash", classes=["low-tone", "low_tone", "hiss"])
    runs = run_cli_many([
        ["separate", song, "-s", "low-tone,High Tone", "-m", named, "-o", tmp_path / "o1"],
        ["separate", song, "-s", "LOW_TONE,high-tone", "-m", named, "-o", tmp_path / "o2"],
        ["separate", song, "-s", "low_tone", "-m", clash, "-o", tmp_path / "o3"],
        ["separate", song, "-s", "Low Tone", "-m", clash, "-o", tmp_path / "o4"],
    ], tmp_path)
    for r, out in zip(runs[:3], ("o1", "o2", "o3")):
        assert r.returncode == 0, r.stderr
    stems = sorted(p.name for p in (tmp_path / "o2" / "tone-tiny" / "song").iterdir())
    assert stems == ["High Tone.wav", "low-tone.wav"]
    assert [p.name for p in (tmp_path / "o3" / "tone-tiny" / "song").iterdir()] == ["low_tone.wav"]
    assert_clean_failure(runs[3], 2, "'Low Tone' could mean any of the classes 'low-tone', 'low_tone'")
    assert not (tmp_path / "o4").exists()
