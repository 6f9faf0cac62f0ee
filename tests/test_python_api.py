"""The public Python API of `import sgnsep`: what help(sgnsep) shows, and each function doing what its command does."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np
import soundfile as sf

import sgnsep
from tests.test_separate import run_cli
from tests.tone_model import tone


def test_help_shows_the_api_with_typed_signatures():
    text = sgnsep.__doc__
    for name in ("Separator", "separate_file", "detect", "evaluate", "train", "load_model"):
        assert name in sgnsep.__all__ and name in text
        if name != "Separator":
            sig = inspect.signature(getattr(sgnsep, name))
            assert sig.return_annotation is not inspect.Signature.empty
            assert all(p.annotation is not inspect.Parameter.empty for p in sig.parameters.values())
    # A submodule imported later is set on the package under its name: none may share a name with the API.
    import pkgutil

    assert not {m.name for m in pkgutil.iter_modules(sgnsep.__path__)} & set(sgnsep.__all__)


def test_separate_file_writes_what_the_command_writes(tone_model_dir, tmp_path):
    rng = np.random.default_rng(0)
    mix = tone("low", 2.0, 11025, rng) + tone("high", 2.0, 11025, rng)
    sf.write(tmp_path / "mix.wav", mix, 11025)
    done = sgnsep.separate_file(tmp_path / "mix.wav", "low,high", model=tone_model_dir, out_dir=tmp_path / "api",
                                residual=True, device="cpu")
    r = run_cli("separate", tmp_path / "mix.wav", "-s", "low,high", "-m", tone_model_dir, "-o", tmp_path / "cli",
                "--residual", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert set(done.file.outputs) == {"low", "high", "residual"}
    for cls, path in done.file.outputs.items():
        a, _ = sf.read(path)
        b, _ = sf.read(tmp_path / "cli" / Path(path).relative_to(tmp_path / "api"))
        assert np.array_equal(a, b), cls


def test_detect_evaluate_and_load_model(tone_model_dir, tmp_path):
    rng = np.random.default_rng(1)
    sf.write(tmp_path / "low.wav", tone("low", 3.0, 11025, rng), 11025)
    timeline = sgnsep.detect(tmp_path / "low.wav", model=tone_model_dir, device="cpu")
    assert timeline.classes == sgnsep.load_model(tone_model_dir).meta.classes
    track = tmp_path / "stems" / "t0"
    track.mkdir(parents=True)
    sf.write(track / "low.wav", tone("low", 3.0, 11025, rng), 11025)
    sf.write(track / "high.wav", tone("high", 3.0, 11025, rng), 11025)
    report = sgnsep.evaluate([tone_model_dir], tmp_path / "stems", metrics=["sdr"], device="cpu")
    r = run_cli("eval", "-m", tone_model_dir, "--data-dir", tmp_path / "stems", "--metrics", "sdr", "--device", "cpu",
                "--out", tmp_path / "e.json")
    assert r.returncode == 0, r.stderr
    cli = json.loads((tmp_path / "e.json").read_text())
    assert report.summary()["model"]["overall"]["sdr"]["mean"] == cli["summary"]["model"]["overall"]["sdr"]["mean"]
    loaded = sgnsep.load_model(tone_model_dir)
    assert not loaded.model.training and loaded.folder == tone_model_dir


TINY = ["model.unet_ngf=8", "model.embed_dim=16", "model.depth=1", "model.num_heads=2", "model.patch_size=8",
        "model.unet_depth=5", "audio.segment_samples=16383", "audio.n_fft=512", "audio.warp_bins=64", "optimizer=adam",
        "batch_size=2", "epochs=1", "steps_per_epoch=2", "checkpoint_every=2", "val_mixtures=2", "threads=1"]


def test_train_makes_a_run_folder_that_separates(tmp_path):
    rng = np.random.default_rng(2)
    for cls in ("low", "high"):
        (tmp_path / "solos" / cls).mkdir(parents=True)
        for i in range(4):
            sf.write(tmp_path / "solos" / cls / f"{i}.wav", tone(cls, 2.0, 11025, rng), 11025)
    result = sgnsep.train(tmp_path / "run", overrides=[f"data_dir={tmp_path / 'solos'}", *TINY], device="cpu")
    assert result.steps == 2 and (tmp_path / "run" / "best" / "model.safetensors").is_file()
    assert sgnsep.load_model(tmp_path / "run" / "best").meta.classes == ["high", "low"]


def test_importing_the_package_and_the_cli_does_not_load_torch():
    """`sgnsep --help` and `import sgnsep` must stay fast: torch (about a second to import) loads when a model runs."""
    import subprocess
    import sys

    code = "import sys, sgnsep, sgnsep.cli; print('torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"
