"""Checkpoint loading is strict and never unpickles; every failure names the file and the fix."""

import json
import pickle

import pytest
import torch

from sgnsep.models.checkpoint import CheckpointMeta, load_checkpoint, save_checkpoint
from sgnsep.models.config import SGNConfig
from sgnsep.core.errors import ModelError
from sgnsep.models.sgn import SGN

CFG = SGNConfig(num_classes=2, unet_ngf=4, embed_dim=8, depth=1, num_heads=1)


@pytest.fixture
def ckpt(tmp_path):
    return save_checkpoint(tmp_path / "m", SGN(CFG), CheckpointMeta(classes=["a", "b"], model=CFG, name="m"))


def test_config_that_does_not_match_the_weights_names_the_keys(ckpt):
    data = json.loads((ckpt / "config.json").read_text())
    data["model"]["depth"] = 2
    data["model"]["embed_dim"] = 16
    data["model"]["num_heads"] = 2
    (ckpt / "config.json").write_text(json.dumps(data))
    with pytest.raises(ModelError) as e:
        load_checkpoint(ckpt)
    text = str(e.value)
    assert "missing" in text and "encoder.blocks.1" in text
    assert "mis-shaped" in text and str(ckpt) in text


def test_unexpected_keys_are_named(ckpt):
    from safetensors.torch import load_file, save_file

    state = load_file(str(ckpt / "model.safetensors"))
    state["extra.weight"] = torch.zeros(3)
    save_file(state, str(ckpt / "model.safetensors"))
    with pytest.raises(ModelError, match="unexpected: extra.weight"):
        load_checkpoint(ckpt)


def test_truncated_weights(ckpt):
    data = (ckpt / "model.safetensors").read_bytes()
    (ckpt / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="not a readable safetensors file"):
        load_checkpoint(ckpt)


def test_a_pickle_is_never_unpickled(ckpt, monkeypatch):
    (ckpt / "model.safetensors").write_bytes(pickle.dumps({"x": 1}))
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("unpickled"))
    with pytest.raises(ModelError, match="safetensors"):
        load_checkpoint(ckpt)


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda d: d.pop("format"), "not an sgnsep checkpoint"),
        (lambda d: d.__setitem__("format_version", 99), "format version 99"),
        (lambda d: d.__setitem__("classes", ["a"]), "num_classes is 2 but 1"),
        (lambda d: d["model"].__setitem__("wings", 2), "unknown keys \\['wings'\\]"),
        (lambda d: d["model"].__setitem__("depth", "six"), "'depth' must be an integer"),
        (lambda d: d["audio"].__setitem__("input_level_db", "loud"), "'input_level_db' must be a finite number or null"),
        (lambda d: d["audio"].__setitem__("input_level_db", float("nan")), "'input_level_db' must be a finite number"),
    ],
)
def test_bad_configs(ckpt, edit, message):
    data = json.loads((ckpt / "config.json").read_text())
    edit(data)
    (ckpt / "config.json").write_text(json.dumps(data))
    with pytest.raises(ModelError, match=message):
        load_checkpoint(ckpt)


def test_missing_files(tmp_path, ckpt):
    with pytest.raises(ModelError, match="does not exist"):
        load_checkpoint(tmp_path / "nowhere")
    (ckpt / "model.safetensors").unlink()
    with pytest.raises(ModelError, match="weights .* are missing"):
        load_checkpoint(ckpt)
    (ckpt / "config.json").write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        load_checkpoint(ckpt)
