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


# --- 6. settings checked first ----------------------------------------------------------------------------


def test_absurd_model_configs_are_exit_5_naming_the_setting(tone_model_dir, song, tmp_path):
    """Zero, negative, NaN and absurd sizes in a model's config.json, hostile JSON and NaN weights: one line
    naming the file and the setting, exit 5, before any network is built (no MemoryError, no C++ frames)."""
    import torch
    from safetensors.torch import load_file, save_file

    src = Path(tone_model_dir)
    cases = {  # name: (config changes, phrases)
        "heads0": ({"model": {"num_heads": 0}}, ["num_heads must be an integer between 1 and 4096, got 0"]),
        "hop0": ({"audio": {"hop_length": 0}}, ["hop_length must be an integer between 1 and", "got 0"]),
        "ngf1e9": ({"model": {"unet_ngf": 10**9}}, ["unet_ngf must be an integer between 1 and 65536, got 1000000000"]),
        "depth1e6": ({"model": {"depth": 10**6}}, ["depth must be an integer between 0 and 1024, got 1000000"]),
        "mlp1e300": ({"model": {"mlp_ratio": 1e300}}, ["mlp_ratio must be a number above 0 and at most 1024, got 1e+300"]),
        "nan-dropout": ({"model": {"dropout": float("nan")}}, ["dropout must be a number at least 0 and below 1, got nan"]),
        "unet-too-deep": ({"model": {"unet_depth": 9}}, ["do not fit together", "unet_depth"]),
        "huge": ({"model": {"unet_ngf": 4096, "embed_dim": 4096}}, ["weights (at most 1,000,000,000)"]),
        "name-type": ({"name": {"a": 1}}, ['"name" must be a string']),
    }
    models = {k: model_copy(src, tmp_path / k, **changes) for k, (changes, _) in cases.items()}
    nested = model_copy(src, tmp_path / "nested")
    (nested / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    nan = model_copy(src, tmp_path / "nan-weights")
    state = load_file(str(src / "model.safetensors"))
    first = sorted(k for k, v in state.items() if v.is_floating_point())[0]
    state[first] = torch.full_like(state[first], float("nan"))
    save_file(state, str(nan / "model.safetensors"))
    extra = {"nested": (nested, ["nested too deeply"]), "nan-weights": (nan, ["NaN or infinite values", first])}
    all_cases = {k: (models[k], p) for k, (_, p) in cases.items()} | extra
    out = tmp_path / "out"
    runs = run_cli_many([["separate", song, "-s", "low", "-m", m, "-o", out] for m, _ in all_cases.values()], tmp_path)
    for (name, (model, phrases)), r in zip(all_cases.items(), runs):
        assert_clean_failure(r, 5, str(model), *phrases)
        assert "MemoryError" not in r.stderr and song.name not in r.stderr.split("error:")[-1], name
    assert not out.exists()


def test_absurd_training_settings_are_usage_errors_before_any_work(tmp_path):
    cases = [
        ("checkpoint_every=0", "checkpoint_every must be an integer between 1 and 1000000000, got 0"),
        ("lr=-1", "lr must be a number above 0, got -1"),
        ("lr=NaN", "lr must be a number above 0, got nan"),
        ("batch_size=1e9", "batch_size must be an integer between 1 and 65536, got 1000000000.0"),
        ("audio.n_fft=0", "audio.n_fft must be an integer between 4 and"),
        ("steps_per_epoch=-3", "steps_per_epoch must be an integer between 0 and 1000000000, got -3"),
        ("model.num_heads=3", "not divisible by num_heads"),
        ("model.unet_depth=12", "do not fit together"),
        ('classes="low"', "classes must be a list of strings, got 'low'"),
    ]
    data = tmp_path / "data"
    (data / "low").mkdir(parents=True)
    (tmp_path / "nested.json").write_text("{\"a\":" * 50_000 + "1" + "}" * 50_000)
    runs = run_cli_many(
        [["train", "--data-dir", data, "--out", tmp_path / f"run{i}", "--device", "cpu", "--set", s]
         for i, (s, _) in enumerate(cases)]
        + [["train", "--data-dir", data, "--out", tmp_path / "runc", "--config", tmp_path / "nested.json"],
           ["train", "--data-dir", data, "--out", tmp_path / "runm", "--max-steps", "0"]],
        tmp_path,
    )
    for (setting, phrase), r in zip(cases, runs):
        assert_clean_failure(r, 2, "--set", phrase)
    assert_clean_failure(runs[-2], 2, "nested.json", "nested too deeply")
    assert_clean_failure(runs[-1], 2, "--max-steps must be at least 1")
    assert not any(p.name.startswith("run") for p in tmp_path.iterdir())

