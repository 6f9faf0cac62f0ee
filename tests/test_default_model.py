"""The model that ships with the package: README's first command works offline, as typed."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sgnsep.models.registry import DEFAULT_MODEL, REGISTRY
from tests.test_separate import run_cli

ROOT = Path(__file__).resolve().parents[1]
PACKAGED = REGISTRY[DEFAULT_MODEL].packaged_folder


def test_default_model_ships_inside_the_package():
    weights = PACKAGED / "model.safetensors"
    assert weights.is_file(), "the default model must ship with the package"
    assert weights.stat().st_size < 50e6
    from sgnsep.models.checkpoint import load_checkpoint

    loaded = load_checkpoint(PACKAGED)
    assert {"violin", "cello", "flute", "trumpet", "piano"} <= set(loaded.meta.classes)


def test_readme_first_command_separates_the_example_offline(tmp_path):
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    env = {"HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9", "HOME": str(tmp_path)}
    r = run_cli("separate", "examples/bach_violin_cello.wav", "--sources", "violin,cello", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "separated" / DEFAULT_MODEL / "bach_violin_cello"
    mix, rate = sf.read(tmp_path / "examples" / "bach_violin_cello.wav", always_2d=True)
    snrs = {}
    for name in ("violin", "cello"):
        est, est_rate = sf.read(out / f"{name}.wav", always_2d=True)
        assert est_rate == rate and est.shape == mix.shape
        ref, _ = sf.read(ROOT / "examples" / "stems" / "bach_violin_cello" / f"{name}.flac", always_2d=True)
        snrs[name] = 10 * np.log10(np.sum(ref**2) / np.sum((ref - est) ** 2)) - 10 * np.log10(
            np.sum(ref**2) / np.sum((ref - mix) ** 2)
        )
    # The measured improvement is in weights.md; this floor only catches a broken model or pipeline.
    assert min(snrs.values()) > 1.0, snrs


def test_describe_models_is_what_the_models_command_prints():
    import json

    from sgnsep.models.checkpoint import read_meta
    from sgnsep.models.registry import describe_models

    rows = describe_models()
    default = next(r for r in rows if r["name"] == DEFAULT_MODEL)
    meta = read_meta(REGISTRY[DEFAULT_MODEL].packaged_folder)
    assert default["default"] and default["source"].startswith("packaged (")
    assert default["classes"] == meta.classes and default["sample_rate"] == meta.audio.sample_rate
    assert 0 < default["size_mb"] < 100
    r = run_cli("models", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == rows
