"""`sgnsep train` on a solos tree written by the test: learning, exact resume, overrides, bad data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from sgnsep.datasets import SolosDataset
from sgnsep.core.errors import UsageError
from sgnsep.training import TrainConfig, parse_overrides, train
from tests.tone_model import CLASSES, TINY, TINY_AUDIO, tone

TINY_MODEL = {k: getattr(TINY, k) for k in ("unet_ngf", "embed_dim", "depth", "num_heads", "patch_size", "unet_depth")}
TINY_AUDIO_D = {k: getattr(TINY_AUDIO, k) for k in ("segment_samples", "n_fft", "warp_bins")}


@pytest.fixture(scope="module")
def solos(tmp_path_factory):
    root = tmp_path_factory.mktemp("solos")
    rng = np.random.default_rng(0)
    for cls in CLASSES:
        (root / cls).mkdir()
        for i in range(12):
            sf.write(root / cls / f"{cls}{i}.wav", tone(cls, 4.0, 22050, rng), 22050)  # resampled on load
    (root / "low" / "broken.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    sf.write(root / "high" / "tiny.wav", np.zeros(10, np.float32), 22050)
    return root


def cfg_for(root, **kw) -> TrainConfig:
    base = dict(
        data_dir=str(root), optimizer="adam", lr=3e-3, weight_decay=0.0, batch_size=8, epochs=1,
        steps_per_epoch=40, checkpoint_every=20, val_mixtures=16, model=TINY_MODEL, audio=TINY_AUDIO_D,
    )
    base.update(kw)
    return TrainConfig(**base)


def test_dataset_skips_bad_files_and_splits_stably(solos):
    ds = SolosDataset(solos, split="train", sample_rate=11025, min_samples=16383)
    skipped = dict(ds.skipped)
    assert "low/broken.wav" in skipped or any("broken" in k for k in skipped)
    assert ds.classes == sorted(CLASSES)
    val = SolosDataset(solos, split="val", sample_rate=11025, min_samples=16383)
    assert not {c.path for c in ds.clips} & {c.path for c in val.clips}


def test_training_learns_to_separate_then_separates_a_file(solos, tmp_path):
    result = train(cfg_for(solos), tmp_path / "run")
    assert result.steps == 40
    assert result.best_val_sdri > 3.0, f"validation SDRi only {result.best_val_sdri:.2f} dB"
    for sub in ("best", "last"):
        assert (tmp_path / "run" / sub / "model.safetensors").is_file()
    log = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert len(log) == 41 and log[0].startswith("step,")
    try:
        import tensorboard  # noqa: F401  (optional extra; installed by the test extra)
    except ImportError:
        pass
    else:
        assert list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))

    from sgnsep import Separator

    sep = Separator(tmp_path / "run" / "best", device="cpu")
    rng = np.random.default_rng(9)
    low, high = tone("low", 5, 16000, rng), tone("high", 5, 16000, rng)
    out = sep.separate(low + high, 16000, ["low"])
    gain = 10 * np.log10(np.sum(low**2) / np.sum((low - out["low"]) ** 2)) - 10 * np.log10(np.sum(low**2) / np.sum(high**2))
    assert gain > 3.0


def test_resume_continues_exactly(solos, tmp_path):
    cfg = cfg_for(solos, steps_per_epoch=6, checkpoint_every=3, val_mixtures=4)
    torch.use_deterministic_algorithms(True)
    try:
        train(cfg, tmp_path / "straight")
        train(cfg, tmp_path / "split", max_steps=3)  # an interrupted run: stopped after its first checkpoint
        with pytest.raises(UsageError, match="--resume"):
            train(cfg, tmp_path / "split")
        train(cfg, tmp_path / "split", resume=True)
    finally:
        torch.use_deterministic_algorithms(False)
    a = load_file(str(tmp_path / "straight" / "last" / "model.safetensors"))
    b = load_file(str(tmp_path / "split" / "last" / "model.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    state = json.loads((tmp_path / "split" / "state.json").read_text())
    assert state["step"] == 6


def test_overrides():
    cfg = parse_overrides(TrainConfig(), ["lr=0.01", "model.depth=3", 'classes=["a","b"]', "optimizer=adam"])
    assert cfg.lr == 0.01 and cfg.model == {"depth": 3} and cfg.classes == ["a", "b"] and cfg.optimizer == "adam"
    with pytest.raises(UsageError, match="unknown setting"):
        parse_overrides(TrainConfig(), ["learning_rate=1"])
    with pytest.raises(UsageError, match="key=value"):
        parse_overrides(TrainConfig(), ["lr"])
    assert parse_overrides(TrainConfig(), ["coherent=0.75"]).coherent == 0.75
    with pytest.raises(UsageError, match="coherent must be between 0 and 1"):
        parse_overrides(TrainConfig(), ["coherent=2"])


def test_cli_train_refuses_a_bad_coherent_fraction_in_one_line(solos, tmp_path):
    from tests.test_separate import run_cli

    r = run_cli("train", "--data-dir", solos, "--out", tmp_path / "run", "--set", "coherent=1.5")
    assert r.returncode == 2 and "coherent must be between 0 and 1" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "run").exists()


def test_cli_train_reports_missing_data(tmp_path):
    from tests.test_separate import run_cli

    r = run_cli("train", "--data-dir", tmp_path / "nothing", "--out", tmp_path / "run")
    assert r.returncode == 2 and "does not exist" in r.stderr and "Traceback" not in r.stderr


def test_cli_train_on_a_named_dataset_without_data_explains_and_fails(tmp_path):
    from tests.test_separate import run_cli

    r = run_cli("train", "--dataset", "music", env={"SGNSEP_DATA": str(tmp_path)})
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "MUSIC_solo_videos.json" in r.stderr and str(tmp_path / "music") in r.stderr
    assert "sgnsep data synth" in r.stderr


def test_cli_train_runs_on_a_solos_folder(solos, tmp_path):
    from tests.test_separate import run_cli

    r = run_cli("train", "--dataset", "solos", "--data-dir", solos, "--out", tmp_path / "run", "--max-steps", "2",
                "--set", "batch_size=2", "--set", "checkpoint_every=2", "--set", "val_mixtures=2",
                "--set", f"model={json.dumps(TINY_MODEL)}", "--set", f"audio={json.dumps(TINY_AUDIO_D)}")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "run" / "best" / "model.safetensors").is_file()
    cfg = json.loads((tmp_path / "run" / "best" / "config.json").read_text())
    assert cfg["training"]["config"]["dataset"] == "solos" and cfg["training"]["config"]["batch_size"] == 2


def test_torchrun_trains_with_two_processes(solos, tmp_path):
    """The same command under torchrun: DDP over 2 CPU processes (Gloo); rank 0 writes checkpoints and logs."""
    import os
    import subprocess
    import sys

    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "sgnsep", "train", "--dataset", "solos", "--data-dir", str(solos), "--out", str(tmp_path / "run"),
        "--device", "cpu", "--max-steps", "2", "--set", "batch_size=4", "--set", "checkpoint_every=2",
        "--set", "val_mixtures=2", "--set", f"model={json.dumps(TINY_MODEL)}", "--set", f"audio={json.dumps(TINY_AUDIO_D)}",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["world_size"] == 2 and state["step"] == 2
    assert isinstance(state["numpy_rng"], list) and len(state["numpy_rng"]) == 2
    assert state["numpy_rng"][0] != state["numpy_rng"][1]  # each process drew its own mixtures
    assert len((tmp_path / "run" / "log.csv").read_text().splitlines()) == 3  # header + 2 steps, rank 0 only
    assert (tmp_path / "run" / "best" / "model.safetensors").is_file()


def test_cli_train_from_a_json_config(solos, tmp_path):
    from tests.test_separate import run_cli

    cfg = {"dataset": "solos", "data_dir": str(solos), "batch_size": 2, "epochs": 1, "steps_per_epoch": 2,
           "checkpoint_every": 2, "val_mixtures": 2, "optimizer": "adam", "model": TINY_MODEL, "audio": TINY_AUDIO_D}
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    r = run_cli("train", "--config", tmp_path / "cfg.json", "--out", tmp_path / "run", "--set", "lr=0.002")
    assert r.returncode == 0, r.stderr
    saved = json.loads((tmp_path / "run" / "state.json").read_text())["config"]
    assert saved["optimizer"] == "adam" and saved["lr"] == 0.002 and saved["steps_per_epoch"] == 2
    (tmp_path / "bad.json").write_text("{not json")
    r = run_cli("train", "--config", tmp_path / "bad.json", "--out", tmp_path / "run2")
    assert r.returncode == 2 and "cannot read it as JSON" in r.stderr


def test_fine_tuning_starts_from_the_checkpoint_and_keeps_its_settings(tone_model_dir, solos, tmp_path):
    from sgnsep.models.checkpoint import load_checkpoint
    from tests.test_separate import run_cli

    start = load_checkpoint(tone_model_dir)
    # lr 0: the run's weights stay the checkpoint's, so "last" must equal it exactly (parameters; batch-norm
    # running statistics move in training mode whatever the learning rate)
    cfg = cfg_for(solos, init_from=str(tone_model_dir), lr=0.0, steps_per_epoch=2, checkpoint_every=2,
                  val_mixtures=4, model={}, audio={}, classes=[])
    result = train(cfg, tmp_path / "same")
    tuned = load_checkpoint(tmp_path / "same" / "last")
    assert tuned.meta.classes == start.meta.classes and tuned.meta.model == start.meta.model
    assert tuned.meta.audio == start.meta.audio
    tuned_params = dict(tuned.model.named_parameters())
    for k, v in start.model.named_parameters():
        assert torch.equal(v, tuned_params[k]), k
    saved = json.loads((tmp_path / "same" / "state.json").read_text())["config"]
    assert saved["init_from"] == str(tone_model_dir) and saved["classes"] == list(start.meta.classes)
    # fine-tuning from the trained model scores far better at its first validation than a random start does
    scratch = train(cfg_for(solos, lr=0.0, steps_per_epoch=2, checkpoint_every=2, val_mixtures=4), tmp_path / "scratch")
    assert result.best_val_sdri > scratch.best_val_sdri + 3.0, (result.best_val_sdri, scratch.best_val_sdri)
    # through the CLI, and --resume of a fine-tuned run continues it
    r = run_cli("train", "--data-dir", solos, "--init-from", tone_model_dir, "--out", tmp_path / "cli",
                "--set", "steps_per_epoch=4", "--set", "epochs=1", "--set", "batch_size=2",
                "--set", "checkpoint_every=2", "--set", "val_mixtures=2", "--set", "optimizer=adam", "--max-steps", "2",
                "--set", "audio.input_level_db=-10")
    assert r.returncode == 0, r.stderr
    assert load_checkpoint(tmp_path / "cli" / "last").meta.audio.input_level_db == -10.0
    r = run_cli("train", "--out", tmp_path / "cli", "--resume")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "cli" / "state.json").read_text())["step"] == 4
    # settings that contradict the checkpoint are refused with the reason
    with pytest.raises(UsageError, match="unet_ngf"):
        train(cfg_for(solos, init_from=str(tone_model_dir), model={"unet_ngf": TINY.unet_ngf * 2}, audio={}),
              tmp_path / "bad")
    with pytest.raises(UsageError, match="no class 'tuba'"):
        train(cfg_for(solos, init_from=str(tone_model_dir), model={}, audio={}, classes=["tuba"]), tmp_path / "bad2")
    assert not (tmp_path / "bad").exists() and not (tmp_path / "bad2").exists()
    # loss weights are the run's to choose: they change training, not the network the checkpoint holds
    train(cfg_for(solos, init_from=str(tone_model_dir), model={"presence_loss_weight": 0.25}, audio={},
                  steps_per_epoch=1, epochs=1, checkpoint_every=1, val_mixtures=2), tmp_path / "lossw")
    assert load_checkpoint(tmp_path / "lossw" / "last").meta.model.presence_loss_weight == 0.25
    # so is the input level: the fine-tune learns at it, and the checkpoint records it for separate
    train(cfg_for(solos, init_from=str(tone_model_dir), model={}, audio={"input_level_db": 2.0},
                  steps_per_epoch=1, epochs=1, checkpoint_every=1, val_mixtures=2), tmp_path / "level")
    assert load_checkpoint(tmp_path / "level" / "last").meta.audio.input_level_db == 2.0
    with pytest.raises(UsageError, match="hop_length"):  # other front-end settings stay the checkpoint's
        train(cfg_for(solos, init_from=str(tone_model_dir), model={}, audio={"hop_length": 128}), tmp_path / "bad3")


def test_warmup_and_diagnostics_columns_in_the_log(solos, tmp_path):
    import csv

    from sgnsep.training.diagnostics import diagnostic_columns

    cfg = cfg_for(solos, steps_per_epoch=4, checkpoint_every=4, val_mixtures=4, warmup_steps=3, diagnostics_every=2)
    train(cfg, tmp_path / "run")
    rows = list(csv.DictReader(open(tmp_path / "run" / "log.csv", newline="")))
    assert [float(r["lr"]) for r in rows] == pytest.approx([1e-3, 2e-3, 3e-3, 3e-3])  # lr 3e-3 reached at step 3
    grad_cols = [c for c in rows[0] if c.startswith("grad_")]
    for term in ("rec", "class_token", "presence"):
        assert f"grad_{term}_unet" in grad_cols and f"grad_{term}_transformer" in grad_cols
    assert {"mask_logit_mean", "mask_logit_std", "group_mass_present"} <= set(rows[0])
    for r in rows:
        filled = r["grad_rec_unet"] != ""
        assert filled == (int(r["step"]) % 2 == 0)
        if filled:
            assert float(r["grad_rec_unet"]) > 0 and float(r["grad_class_token_unet"]) == 0  # eq. 7 skips the U-Net
            assert 0 < float(r["group_mass_present"]) < 1 and float(r["mask_logit_std"]) > 0
    # a baseline logs the reconstruction term only
    train(cfg_for(solos, steps_per_epoch=2, checkpoint_every=2, val_mixtures=4, diagnostics_every=1,
                  architecture="unet"), tmp_path / "unet")
    header = (tmp_path / "unet" / "log.csv").read_text().splitlines()[0].split(",")
    assert [c for c in header if c.startswith("grad_")] == ["grad_rec_unet"]
    assert "group_mass_present" not in header


def test_per_term_gradient_norms_equal_each_term_differentiated_alone():
    import math

    from sgnsep.models.config import SGNConfig
    from sgnsep.models.sgn import SGN, sgn_loss
    from sgnsep.training.diagnostics import auxiliary_gradients, parameter_groups, step_diagnostics

    cfg = SGNConfig(num_classes=4, unet_ngf=4, embed_dim=16, depth=1, num_heads=2, patch_size=8, unet_depth=5,
                    class_token_loss_on="encoder_output", class_token_loss_weight=0.3, presence_loss_weight=2.0)
    torch.manual_seed(0)
    model = SGN(cfg, input_size=64).train()
    x, classes = torch.randn(2, 1, 64, 64), torch.tensor([[0, 1], [2, 3]])
    out = model(x, classes)
    present = torch.zeros(2, 4).scatter_(1, classes, 1.0)
    loss = sgn_loss(out, (torch.rand_like(out.mask_logits) > 0.5).float(), present, cfg)
    params = dict(model.named_parameters())
    alone = {}
    for term, value in (("rec", loss.reconstruction), ("class_token", 0.3 * loss.class_token),
                        ("presence", 2.0 * loss.presence)):
        grads = torch.autograd.grad(value, list(params.values()), retain_graph=True, allow_unused=True)
        alone[term] = {n: (torch.zeros_like(p) if g is None else g) for (n, p), g in zip(params.items(), grads)}
    aux = auxiliary_gradients(model, loss, cfg)
    loss.total.backward()
    row = step_diagnostics(model, out, present, aux, has_grouping=True)
    for group, members in parameter_groups(model).items():
        for term in ("rec", "class_token", "presence"):
            expected = math.sqrt(sum(float(alone[term][n].double().pow(2).sum()) for n, _ in members))
            assert row[f"grad_{term}_{group}"] == pytest.approx(expected, rel=1e-3, abs=1e-7), (term, group)
    mass = (out.assignment.mean(dim=1) * present).sum(-1).mean()
    assert row["group_mass_present"] == pytest.approx(float(mass))


@pytest.mark.parametrize("setting,named", [("model.mask_head_scale=half", "mask_head_scale"),
                                           ("warmup_steps=-1", "warmup_steps"),
                                           ("model.assignment_loss_weight=-2", "assignment_loss_weight")])
def test_cli_train_refuses_a_bad_training_setting_in_one_line(solos, tmp_path, setting, named):
    from tests.test_separate import run_cli

    r = run_cli("train", "--data-dir", solos, "--out", tmp_path / "run", "--set", setting)
    assert r.returncode == 2, r.stderr
    assert named in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "run").exists()


def test_cli_train_with_the_paper_settings_logs_their_diagnostics(solos, tmp_path):
    import csv

    from tests.test_separate import run_cli

    sets = [f"model.{k}={v}" for k, v in TINY_MODEL.items()] + [f"audio.{k}={v}" for k, v in TINY_AUDIO_D.items()]
    sets += ["optimizer=adam", "lr=0.003", "batch_size=4", "epochs=1", "steps_per_epoch=4", "checkpoint_every=4",
             "val_mixtures=4", "diagnostics_every=2", "warmup_steps=0", "model.mask_head_scale=none",
             "model.mask_bias=shared", "model.aux_loss_reduction=sum", "model.class_token_loss_on=encoder_output"]
    r = run_cli("train", "--data-dir", solos, "--out", tmp_path / "run", *[a for s in sets for a in ("--set", s)])
    assert r.returncode == 0, r.stderr
    config = json.loads((tmp_path / "run" / "best" / "config.json").read_text())["model"]
    assert config["mask_head_scale"] == "none" and config["class_token_loss_on"] == "encoder_output"
    rows = list(csv.DictReader(open(tmp_path / "run" / "log.csv", newline="")))
    assert [r["grad_class_token_patch_embed"] != "" for r in rows] == [False, True, False, True]
    assert float(rows[1]["grad_class_token_patch_embed"]) > 0  # on the encoder's output it shapes the encoder


def test_validation_on_a_held_out_corpus_chooses_the_checkpoint_and_reports_both(solos, tmp_path):
    import csv

    from sgnsep.models.checkpoint import load_checkpoint

    plain = cfg_for(solos, steps_per_epoch=4, checkpoint_every=2, val_mixtures=8)
    train(plain, tmp_path / "plain")
    # The training folder itself as the held-out corpus: the same mixtures, so the same scores, twice.
    train(cfg_for(solos, steps_per_epoch=4, checkpoint_every=2, val_mixtures=8, val_data_dir=str(solos)),
          tmp_path / "same")
    a = list(csv.DictReader(open(tmp_path / "plain" / "log.csv", newline="")))
    b = list(csv.DictReader(open(tmp_path / "same" / "log.csv", newline="")))
    assert "corpus_val_sdri" not in a[0]
    scored = [r for r in b if r["val_sdri"]]
    assert [float(r["val_sdri"]) for r in scored] == [float(r["val_sdri"]) for r in a if r["val_sdri"]]
    assert [float(r["corpus_val_sdri"]) for r in scored] == [float(r["val_sdri"]) for r in scored]
    assert all(r["corpus_val_sdri"] == "" for r in b if not r["val_sdri"])

    # Another corpus: other tones, two of the three training classes and one class training lacks.
    other = tmp_path / "other"
    rng = np.random.default_rng(5)
    for cls in ("low", "hiss", "bell"):
        (other / cls).mkdir(parents=True)
        for i in range(12):
            sf.write(other / cls / f"{cls}{i}.wav", 0.5 * tone(cls if cls != "bell" else "high", 4.0, 11025, rng), 11025)
    cfg = cfg_for(solos, steps_per_epoch=4, checkpoint_every=2, val_mixtures=8, val_data_dir=str(other))
    train(cfg, tmp_path / "held")
    rows = list(csv.DictReader(open(tmp_path / "held" / "log.csv", newline="")))
    scored = [r for r in rows if r["val_sdri"]]
    assert len(scored) == 2 and all(float(r["val_sdri"]) != float(r["corpus_val_sdri"]) for r in scored)
    assert [float(r["corpus_val_sdri"]) for r in scored] == [float(r["val_sdri"]) for r in a if r["val_sdri"]]
    best = max(scored, key=lambda r: float(r["val_sdri"]))  # chosen on the held-out corpus
    meta = load_checkpoint(tmp_path / "held" / "best").meta.training
    assert meta["val_sdri"] == pytest.approx(float(best["val_sdri"]))
    assert meta["corpus_val_sdri"] == pytest.approx(float(best["corpus_val_sdri"]))

    # Its mixtures hold only the shared classes, under the model's class indices.
    from sgnsep.training import load_validation_corpus, validation_batches

    classes = ["high", "hiss", "low"]
    audio = cfg.audio_config()
    held, index = load_validation_corpus(cfg, classes, audio)
    assert held.classes == ["hiss", "low"] and index == [1, 2]
    for batch in validation_batches(held, cfg, 3, audio, 0.5, "cpu", class_index=index):
        assert {tuple(sorted(c.tolist())) for c in batch.classes} == {(1, 2)}


def test_a_held_out_corpus_without_enough_training_classes_is_refused(solos, tmp_path):
    from tests.test_separate import run_cli

    other = tmp_path / "other"
    (other / "bell").mkdir(parents=True)
    (other / "low").mkdir(parents=True)
    rng = np.random.default_rng(1)
    for cls in ("bell", "low"):
        for i in range(12):
            sf.write(other / cls / f"{cls}{i}.wav", tone("low", 4.0, 11025, rng), 11025)
    with pytest.raises(UsageError, match="val_data_dir .* 1 of the training classes"):
        train(cfg_for(solos, val_data_dir=str(other)), tmp_path / "run")
    r = run_cli("train", "--data-dir", solos, "--out", tmp_path / "run2", "--set", "val_dataset=stems")
    assert r.returncode == 2 and "val_data_dir" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "run2").exists()


def test_the_train_commands_settings_are_library_functions(tmp_path, monkeypatch):
    from sgnsep.training.config import config_from_options, load_config_file, resolve_dataset

    monkeypatch.setenv("SGNSEP_DATA", str(tmp_path / "data"))
    assert resolve_dataset("synth", None) == ("solos", tmp_path / "data" / "synth", True)
    assert resolve_dataset("synth", tmp_path / "mine") == ("solos", tmp_path / "mine", True)
    assert resolve_dataset("stems", tmp_path) == ("stems", tmp_path, False)
    with pytest.raises(UsageError, match="Unknown dataset 'nope'"):
        resolve_dataset("nope", None)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(UsageError, match=f"config file {bad}: cannot read it as JSON"):
        load_config_file(bad)
    good = tmp_path / "good.json"
    good.write_text('{"dataset": "stems", "batch_size": 3}')
    cfg = load_config_file(good)
    assert (cfg.dataset, cfg.batch_size) == ("stems", 3)
    # A config file keeps its own dataset unless another is named; overrides come last.
    assert config_from_options(cfg, dataset="solos", from_file=True).dataset == "stems"
    named = config_from_options(cfg, dataset="solos", data_dir=tmp_path, init_from="m", overrides=["batch_size=5"],
                                from_file=True)
    assert (named.dataset, named.data_dir, named.init_from, named.batch_size) == ("solos", str(tmp_path), "m", 5)
