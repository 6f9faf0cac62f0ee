"""Reliability round 2 (issue 24): what a hostile user or a faulty machine does, through the real CLI.

Each test reproduces one failure of the issue's probe (writes outside --out, a poisoned Hub cache, leftovers
after signals, concurrent runs, replaced user files, settings checked too late, hangs, misleading messages)
and checks that it now ends in one clear ``error:`` line with the documented exit code, or works, and that
nothing is written outside the folders the command owns.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.test_hardening import assert_clean_failure, files_under, partials, run_cli, run_cli_many, tones


@pytest.fixture(scope="module")
def song(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("song")
    sf.write(d / "song.wav", tones(2.0, 11025), 11025)
    return d / "song.wav"


def model_copy(src: Path, dest: Path, **changes) -> Path:
    """A copy of the tiny tone model with config.json keys changed (``classes``, ``name``, ``model``...)."""
    dest.mkdir(parents=True)
    shutil.copy(src / "model.safetensors", dest / "model.safetensors")
    cfg = json.loads((src / "config.json").read_text())
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key].update(value)
        else:
            cfg[key] = value
    (dest / "config.json").write_text(json.dumps(cfg))
    return dest


def everything_inside(root: Path, allowed: Path) -> list[Path]:
    """Files under ``root`` that are not under ``allowed``."""
    return [p for p in files_under(root) if not p.resolve().is_relative_to(allowed.resolve())]


# --- 1. no write outside --out ----------------------------------------------------------------------------


def test_names_from_models_and_inputs_cannot_leave_the_output_folder(tone_model_dir, song, tmp_path):
    """A model named '../../x' or '/abs', classes named '../../x', an input named '...wav': every stem stays
    inside --out, under a sanitised name."""
    work = tmp_path / "work"
    work.mkdir()
    escapes = {
        "dotdot-name": model_copy(tone_model_dir, tmp_path / "m1", name="../../escaped-model"),
        "abs-name": model_copy(tone_model_dir, tmp_path / "m2", name=str(tmp_path / "abs-escape")),
        "dotdot-class": model_copy(tone_model_dir, tmp_path / "m3", classes=["../../esc", "high", "hiss"]),
    }
    dots = work / "inputs" / "...wav"
    dots.parent.mkdir()
    shutil.copy(song, dots)
    cases = [
        ["separate", song, "-s", "low", "-m", escapes["dotdot-name"], "-o", work / "o1"],
        ["separate", song, "-s", "low", "-m", escapes["abs-name"], "-o", work / "o2"],
        ["separate", song, "-s", "../../esc", "-m", escapes["dotdot-class"], "-o", work / "o3" / "a" / "b"],
        ["separate", dots, "-s", "low", "-m", tone_model_dir, "-o", work / "o4" / "x", "--name", "{track}/{source}.{ext}"],
    ]
    runs = run_cli_many(cases, tmp_path)
    for r, out in zip(runs, ["o1", "o2", "o3/a/b", "o4/x"]):
        assert r.returncode == 0, r.stderr
        written = files_under(work / out)
        assert len(written) == 1 and written[0].suffix == ".wav", (out, written)
        assert ".." not in written[0].relative_to(work / out).parts
    # Nothing anywhere but in the output folders (and the inputs, and the logs of the runs).
    stray = [p for p in files_under(tmp_path) if not any(
        p.resolve().is_relative_to((tmp_path / d).resolve()) for d in ("work", "m1", "m2", "m3", "cli-logs"))]
    assert stray == [], stray
    assert not (tmp_path / "abs-escape").exists()


def test_a_name_template_that_leaves_the_output_folder_is_refused(tone_model_dir, song, tmp_path):
    cases = [
        (["--name", "../{source}.{ext}"], ["--name", "outside", "--out"]),
        (["--name", str(tmp_path / "abs" / "{source}.{ext}")], ["--name", "outside", "--out"]),
        (["--name", ""], ["--name", "file name"]),
        (["--name", "{model}/"], ["--name", "file name"]),
    ]
    runs = run_cli_many(
        [["separate", song, "-s", "low", "-m", tone_model_dir, "-o", tmp_path / "out", *a] for a, _ in cases], tmp_path
    )
    for (args, phrases), r in zip(cases, runs):
        assert_clean_failure(r, 2, *phrases)
    assert not (tmp_path / "out").exists() and not (tmp_path / "abs").exists()
    assert not [p for p in files_under(tmp_path) if p.suffix == ".wav" and p != song]


def test_an_output_name_too_long_or_a_link_out_of_the_folder_is_an_output_error(tone_model_dir, song, tmp_path):
    long_input = tmp_path / ("a" * 240 + ".wav")
    shutil.copy(song, long_input)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "linked" / "out").mkdir(parents=True)
    (tmp_path / "linked" / "out" / "tone-tiny").symlink_to(elsewhere)
    runs = run_cli_many([
        ["separate", long_input, "-s", "low", "-m", tone_model_dir, "-o", tmp_path / "o1", "--name", "{track}_{source}.{ext}"],
        ["separate", song, "-s", "low", "-m", tone_model_dir, "-o", tmp_path / "linked" / "out"],
    ], tmp_path)
    assert_clean_failure(runs[0], 4, "longer than the file system allows", "Shorten")
    assert_clean_failure(runs[1], 4, "outside --out", "symbolic link")
    assert not (tmp_path / "o1").exists() and files_under(elsewhere) == []

