"""The baselines SGN is compared against (unet, cunet): shapes, exact folded heads, FiLM conditioning,
training them with `sgnsep train --set architecture=...`, loading them in `separate` and `eval`, and
`sgnsep eval` with several models on the same mixtures."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch

from sgnsep.evaluation import evaluate as ev
from sgnsep.models.baselines import ClassHeadUNet, ConditionedUNet, MaskOutput
from sgnsep.models.checkpoint import CheckpointMeta, build_network, load_checkpoint, save_checkpoint
from sgnsep.models.config import SGNConfig
from sgnsep.core.errors import ModelError, UsageError
from sgnsep.models.sgn import sgn_loss
from sgnsep.training import TrainConfig, parse_overrides
from tests.test_separate import run_cli
from tests.tone_model import CLASSES, TINY, TINY_AUDIO, tone

CFG = SGNConfig(num_classes=5, unet_ngf=4, embed_dim=8, depth=1, num_heads=1, patch_size=8, unet_depth=4)
ROOT = Path(__file__).resolve().parents[1]


def _inputs(b=2, size=32, seed=0):
    return torch.randn(b, 1, size, size, generator=torch.Generator().manual_seed(seed))


# --- unet -----------------------------------------------------------------------------------------------


def test_unet_computes_only_the_requested_heads_and_they_equal_the_full_output():
    torch.manual_seed(0)
    model = ClassHeadUNet(CFG).eval()
    x = _inputs()
    with torch.no_grad():
        full = model.unet.project(model.unet.features(x))  # (B, C, H, T): every head
        assert full.shape == (2, CFG.num_classes, 32, 32)
        same = model(x, torch.tensor([3, 0, 3])).mask_logits  # (N,): the same classes for every item
        each = model(x, torch.tensor([[4, 1], [2, 2]])).mask_logits  # (B, N): its own classes per item
    assert same.shape == (2, 3, 32, 32) and each.shape == (2, 2, 32, 32)
    assert torch.allclose(same, full[:, [3, 0, 3]], atol=1e-5)
    assert torch.allclose(each[0], full[0, [4, 1]], atol=1e-5)
    assert torch.allclose(each[1], full[1, [2, 2]], atol=1e-5)
    assert not torch.allclose(full[:, 0], full[:, 1], atol=1e-3)  # the heads are different masks


# --- cunet ----------------------------------------------------------------------------------------------


CUNET_VARIANTS = [
    dict(cunet_film_at=at, cunet_film_type=kind, cunet_condition=cond)
    for at in ("encoder", "bottleneck", "final") for kind in ("complex", "simple") for cond in ("target", "present")
]


@pytest.mark.parametrize("variant", CUNET_VARIANTS, ids=lambda v: "-".join(v.values()))
def test_cunet_with_identity_film_is_the_plain_unet(variant):
    """With gamma = beta = 0 (identity FiLM) the conditioned pass must be the U-Net's own, step for step."""
    torch.manual_seed(0)
    model = ConditionedUNet(dataclasses.replace(CFG, **variant)).eval()
    for lin in (model.to_gamma, model.to_beta):
        torch.nn.init.zeros_(lin.weight)
        torch.nn.init.zeros_(lin.bias)
    x = _inputs()
    labels = torch.eye(CFG.num_classes)[[1, 3, 0, 0]]  # two label vectors per mixture
    with torch.no_grad():
        h = model.conditioned_features(x, labels)
        plain = model.unet.features(x).repeat_interleave(2, dim=0)
    assert torch.allclose(h, plain, atol=1e-6)


@pytest.mark.parametrize("variant", CUNET_VARIANTS, ids=lambda v: "-".join(v.values()))
def test_cunet_masks_follow_the_conditioning(variant):
    torch.manual_seed(0)
    cfg = dataclasses.replace(CFG, **variant, cunet_control_hidden=6 if variant["cunet_film_type"] == "simple" else 0)
    model = ConditionedUNet(cfg).eval()
    x = 10 * _inputs()  # the scale of log-magnitudes (log(1e-10) = -23)
    with torch.no_grad():
        out = model(x, torch.tensor([1, 4, 1])).mask_logits
        per_item = model(x, torch.tensor([[1, 4, 1], [1, 4, 1]])).mask_logits
        one = model(x[1:], torch.tensor([1, 4, 1])).mask_logits
        others = model(x, torch.tensor([1, 2])).mask_logits
    assert out.shape == (2, 3, 32, 32)
    assert (out[:, 0] - out[:, 1]).abs().max() > 1e-4, "the class label does not change the mask"
    assert torch.allclose(out[:, 0], out[:, 2], atol=1e-5)  # the same class asked twice: the same mask
    assert torch.allclose(out, per_item, atol=1e-5)
    assert torch.allclose(out[1:], one, atol=1e-5)  # batching mixtures changes nothing
    if variant["cunet_condition"] == "target":  # a mask depends on its own class only
        assert torch.allclose(others[:, 0], out[:, 0], atol=1e-5)
    else:  # the label vector holds every class asked for: the other classes change the masks
        assert (others[:, 0] - out[:, 0]).abs().max() > 1e-4


@pytest.mark.parametrize("architecture", ["unet", "cunet"])
def test_gradients_reach_every_parameter_and_the_loss_is_the_reconstruction(architecture):
    torch.manual_seed(0)
    model = build_network(architecture, CFG, 32).train()
    classes = torch.tensor([[0, 1, 2, 3, 4], [4, 3, 2, 1, 0]])
    out = model(_inputs(), classes)
    assert out.class_logits is None and out.presence_logits is None
    target = (torch.rand(2, 5, 32, 32) > 0.5).float()
    loss = sgn_loss(out, target, torch.ones(2, 5), CFG, weight=torch.rand(2, 1, 32, 32))
    assert float(loss.class_token) == 0.0 and float(loss.presence) == 0.0
    assert torch.equal(loss.total, loss.reconstruction)
    loss.total.backward()
    silent = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not silent, f"no gradient reaches {silent}"


def test_sgn_loss_of_a_mask_only_output():
    logits = torch.zeros(1, 2, 4, 4)
    loss = sgn_loss(MaskOutput(logits), torch.ones(1, 2, 4, 4), torch.ones(1, 5), CFG)
    assert torch.isclose(loss.total, 2 * torch.log(torch.tensor(2.0)))  # sum over the two sources of BCE(0.5, 1)


@pytest.mark.parametrize("architecture", ["unet", "cunet"])
def test_save_and_reload_gives_identical_masks(architecture, tmp_path):
    torch.manual_seed(0)
    cfg = dataclasses.replace(CFG, cunet_film_type="simple", cunet_control_hidden=4)
    model = build_network(architecture, cfg, 32).eval()
    meta = CheckpointMeta(classes=list("abcde"), model=cfg, architecture=architecture,
                          audio=dataclasses.replace(TINY_AUDIO, warp_bins=32))
    save_checkpoint(tmp_path / "ck", model, meta)
    assert json.loads((tmp_path / "ck" / "config.json").read_text())["architecture"] == architecture
    loaded = load_checkpoint(tmp_path / "ck")
    assert type(loaded.model) is type(model) and loaded.meta.model == cfg
    x, classes = _inputs(), torch.tensor([2, 0])
    with torch.no_grad():
        assert torch.equal(loaded.model(x, classes).mask_logits, model(x, classes).mask_logits)


# --- configuration errors -----------------------------------------------------------------------------


def test_unknown_architecture_is_a_clear_model_error(tmp_path):
    with pytest.raises(ModelError, match=r"unknown architecture 'transformer'.*'sgn', 'cunet', 'unet'"):
        parse_overrides(TrainConfig(), ["architecture=transformer"])
    assert parse_overrides(TrainConfig(), ["architecture=cunet"]).architecture == "cunet"
    with pytest.raises(ModelError, match="cunet_film_at must be"):
        SGNConfig(cunet_film_at="decoder")
    # a checkpoint of an architecture this sgnsep does not know
    save_checkpoint(tmp_path / "ck", ClassHeadUNet(CFG), CheckpointMeta(classes=list("abcde"), model=CFG, architecture="unet"))
    config = json.loads((tmp_path / "ck" / "config.json").read_text())
    (tmp_path / "ck" / "config.json").write_text(json.dumps({**config, "architecture": "demucs"}))
    with pytest.raises(ModelError, match=r"unknown architecture 'demucs'.*'sgn', 'cunet', 'unet'"):
        load_checkpoint(tmp_path / "ck")
    r = run_cli("train", "--data-dir", tmp_path, "--out", tmp_path / "run", "--set", "architecture=demucs")
    assert r.returncode == 5 and "unknown architecture 'demucs'" in r.stderr and "Traceback" not in r.stderr
    sf.write(tmp_path / "x.wav", np.zeros(11025, np.float32), 11025)
    r = run_cli("separate", tmp_path / "x.wav", "--sources", "a", "--model", tmp_path / "ck")
    assert r.returncode == 5 and "unknown architecture 'demucs'" in r.stderr and "Traceback" not in r.stderr


def _stub(name, classes, rate=11025, spec=None):
    return SimpleNamespace(name=name, classes=classes, sample_rate=rate, model_spec=spec or f"runs/{name}/best")


def test_models_compared_on_their_common_classes_at_one_rate():
    a, b = _stub("a", ["violin", "cello", "flute"]), _stub("b", ["Flute", "violin", "tuba"])
    assert ev.common_classes([a, b]) == ["violin", "flute"]
    with pytest.raises(UsageError, match="no class in common"):
        ev.common_classes([a, _stub("c", ["tuba"])])
    with pytest.raises(UsageError, match="different sample rates"):
        ev.common_classes([a, _stub("d", ["violin"], rate=22050)])
    assert ev.model_labels([a]) == ["model"]  # one model: the report's historical schema
    assert ev.model_labels([a, b]) == ["a", "b"]
    twins = [_stub("x", [], spec="runs/x/best"), _stub("x", [], spec="runs/x/last"), _stub("mixture", [], spec="mixture")]
    assert ev.model_labels(twins) == ["runs/x/best", "runs/x/last", "mixture#2"]


# --- end to end: train each architecture with the CLI, then separate and evaluate ------------------------


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("tones")
    rng = np.random.default_rng(0)
    for cls in CLASSES:
        (root / cls).mkdir()
        for i in range(5):  # 1 test, 1 validation, 3 training clips per class
            sf.write(root / cls / f"{cls}{i}.wav", tone(cls, 2.5, 11025, rng), 11025)
    return root


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    """runs/<architecture>/ for each architecture, trained for 4 steps by `sgnsep train --set architecture=...`."""
    runs = tmp_path_factory.mktemp("runs")
    config = runs / "tiny.json"
    config.write_text(json.dumps({
        "optimizer": "adam", "lr": 3e-3, "weight_decay": 0.0, "batch_size": 4, "epochs": 1, "steps_per_epoch": 4,
        "checkpoint_every": 4, "val_mixtures": 4, "threads": 1,
        "model": {k: getattr(TINY, k) for k in ("unet_ngf", "embed_dim", "depth", "num_heads", "patch_size", "unet_depth")},
        "audio": {k: getattr(TINY_AUDIO, k) for k in ("segment_samples", "n_fft", "warp_bins")},
    }))
    results = {}
    for arch in ("sgn", "cunet", "unet"):
        results[arch] = run_cli("train", "--config", config, "--data-dir", corpus, "--out", runs / arch,
                                "--set", f"architecture={arch}", "--device", "cpu")
    return runs, results


@pytest.mark.parametrize("architecture", ["sgn", "cunet", "unet"])
def test_each_architecture_trains_with_the_cli_and_separates(trained, architecture, tmp_path):
    runs, results = trained
    r = results[architecture]
    assert r.returncode == 0, r.stderr
    meta = json.loads((runs / architecture / "best" / "config.json").read_text())
    assert meta["architecture"] == architecture and meta["training"]["config"]["architecture"] == architecture
    assert len((runs / architecture / "log.csv").read_text().splitlines()) == 1 + 4
    rng = np.random.default_rng(3)
    mix = tone("low", 3.0, 22050, rng) + tone("hiss", 3.0, 22050, rng)
    sf.write(tmp_path / "mix.wav", mix, 22050)
    r = run_cli("separate", tmp_path / "mix.wav", "--sources", "hiss,low", "--model", runs / architecture / "best",
                "--out", tmp_path / "out", "--device", "cpu", "--json")
    assert r.returncode == 0, r.stderr
    outputs = json.loads(r.stdout)["files"][0]["outputs"]
    for cls in ("hiss", "low"):
        stem, rate = sf.read(outputs[cls])
        assert rate == 22050 and stem.shape == mix.shape and np.isfinite(stem).all()


def test_fine_tuning_keeps_the_checkpoints_architecture(trained, corpus, tmp_path):
    from sgnsep.training import train

    runs, _ = trained
    with pytest.raises(UsageError, match="'unet' model, the run asks for 'sgn'"):
        train(TrainConfig(init_from=str(runs / "unet" / "best"), data_dir=str(corpus)), tmp_path / "a")
    cfg = TrainConfig(init_from=str(runs / "unet" / "best"), architecture="unet", data_dir=str(corpus), batch_size=2,
                      epochs=1, steps_per_epoch=1, val_mixtures=2, optimizer="adam", lr=0.0)
    train(cfg, tmp_path / "b")
    before, after = load_checkpoint(runs / "unet" / "best"), load_checkpoint(tmp_path / "b" / "last")
    assert after.meta.architecture == "unet"
    assert all(torch.equal(p, q) for p, q in zip(before.model.parameters(), after.model.parameters()))  # lr 0


def test_eval_scores_several_models_on_the_same_mixtures(trained, tmp_path):
    runs, results = trained
    assert all(r.returncode == 0 for r in results.values())
    stems = tmp_path / "stems"
    rng = np.random.default_rng(5)
    for i in range(2):
        (stems / f"t{i}").mkdir(parents=True)
        for cls in ("low", "high"):
            sf.write(stems / f"t{i}" / f"{cls}.wav", tone(cls, 2.0, 11025, rng), 11025)
    r = run_cli("eval", "--model", runs / "sgn" / "best", "--model", runs / "cunet" / "best", "--model",
                runs / "unet" / "best", "--data-dir", stems, "--metrics", "sdr,si-sdr", "--baselines", "mixture",
                "--out", tmp_path / "r.json", "--csv", tmp_path / "r.csv", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert "Side by side" in r.stdout and all(name in r.stdout for name in ("sgn", "cunet", "unet"))
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["methods"] == ["sgn", "cunet", "unet", "mixture"]
    assert [(m["method"], m["architecture"]) for m in report["models"]] == [("sgn", "sgn"), ("cunet", "cunet"), ("unet", "unet")]
    assert report["model"]["name"] == "sgn"  # the first model, as with one --model
    for method in ("sgn", "cunet", "unet", "mixture"):
        rows = [x for x in report["records"] if x["method"] == method]
        assert sorted((x["track"], x["class"]) for x in rows) == [(t, c) for t in ("t0", "t1") for c in ("high", "low")]
        if method != "mixture":
            assert report["summary"][method]["overall"]["sdri"]["n"] == 4
    # identical mixtures: the mixture baseline is scored once per source, not once per model
    assert sum(x["method"] == "mixture" for x in report["records"]) == 4
    csv_methods = {line.split(",")[2] for line in (tmp_path / "r.csv").read_text().splitlines()[1:]}
    assert csv_methods == {"sgn", "cunet", "unet", "mixture"}
    # one model: unchanged schema, its records under "model"
    r = run_cli("eval", "--model", runs / "unet" / "best", "--data-dir", stems, "--metrics", "sdr",
                "--baselines", "none", "--out", tmp_path / "one.json", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    one = json.loads((tmp_path / "one.json").read_text())
    assert one["methods"] == ["model"] and one["model"]["name"] == "unet" and one["models"][0]["method"] == "model"


def test_compare_models_script_dry_run_prints_every_command(tmp_path):
    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "compare_models.py"), "--out", str(tmp_path / "cmp"),
         "--data-dir", str(tmp_path / "corpus"), "--steps", "10", "--batch-size", "2", "--dry-run"],
        check=False, capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    trains, evals = [x for x in lines if " train " in x], [x for x in lines if " eval " in x]
    assert len(trains) == 5 and len(evals) == 2 and not (tmp_path / "cmp").exists()
    for variant, switch in (("sgn", "architecture=sgn"), ("cunet", "architecture=cunet"), ("unet", "architecture=unet"),
                            ("sgn-no-tokens", "model.class_tokens=false"), ("sgn-no-grouping", "model.grouping=false")):
        line = next(x for x in trains if f"/cmp/{variant} " in x)
        assert switch in line and "--max-steps 10" in line and "batch_size=2" in line and "--resume" not in line
    for line in evals:
        assert line.count("--model") == 5 and ("chorales-2src" in line or "chorales-3src" in line)
    # a run folder holding a training state is resumed
    (tmp_path / "cmp" / "unet").mkdir(parents=True)
    (tmp_path / "cmp" / "unet" / "state.safetensors").write_bytes(b"")
    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "compare_models.py"), "--out", str(tmp_path / "cmp"), "--dry-run",
         "--variants", "sgn,unet"], check=False, capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert ["--resume" in x for x in r.stdout.splitlines() if " train " in x] == [False, True]
    # a variant trained earlier (--checkpoints DIR/<variant>) is evaluated from there, not trained
    done = tmp_path / "done" / "sgn"
    done.mkdir(parents=True)
    (done / "config.json").write_text(json.dumps({"name": "sgn"}))
    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "compare_models.py"), "--out", str(tmp_path / "cmp"), "--dry-run",
         "--variants", "sgn,unet", "--checkpoints", str(tmp_path / "done")], check=False, capture_output=True,
        text=True, timeout=120,
    )
    assert r.returncode == 0, r.stderr
    trains = [x for x in r.stdout.splitlines() if " train " in x]
    assert len(trains) == 1 and "/cmp/unet " in trains[0]
    evals = [x for x in r.stdout.splitlines() if " eval " in x]
    assert all(f"--model {done} " in x and f"--model {tmp_path / 'cmp' / 'unet' / 'best'} " in x for x in evals)
    # a mistyped folder is an error, not eight hours of training
    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "compare_models.py"), "--out", str(tmp_path / "cmp"), "--dry-run",
         "--checkpoints", str(tmp_path / "nope")], check=False, capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 2 and "--checkpoints" in r.stderr and "no such folder" in r.stderr
    assert "Traceback" not in r.stderr


# --- inference layout -----------------------------------------------------------------------------------


@pytest.mark.parametrize("architecture", ["sgn", "unet", "cunet"])
def test_channels_last_inference_gives_the_default_layouts_masks(architecture):
    """Separator runs every architecture in channels-last layout on CPU (use_channels_last); per-item
    classes then go through a loop of convolutions instead of one grouped convolution. Same masks."""
    from sgnsep.models.unet import use_channels_last

    torch.manual_seed(0)
    model = build_network(architecture, CFG, input_size=32).eval()
    x = _inputs(b=3)
    per_item = torch.tensor([[4, 1], [2, 2], [0, 3]])
    with torch.no_grad():
        plain = [model(x, c).mask_logits for c in (torch.tensor([1, 3]), per_item)]
        use_channels_last(model)
        fast = [model(x, c).mask_logits for c in (torch.tensor([1, 3]), per_item)]
    assert all(m.is_contiguous(memory_format=torch.channels_last) for m in model.parameters() if m.dim() == 4)
    for a, b in zip(plain, fast):
        assert a.shape == b.shape
        assert torch.allclose(a, b, atol=1e-5), (a - b).abs().max()


def test_compare_models_stop_at_and_paired_differences(tmp_path):
    """--stop-at keeps the --steps schedule and stops early; the paired table compares source by source."""
    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "compare_models.py"), "--out", str(tmp_path / "cmp"),
         "--steps", "600", "--stop-at", "300", "--variants", "sgn,unet", "--dry-run"],
        check=False, capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 0, r.stderr
    trains = [x for x in r.stdout.splitlines() if " train " in x]
    assert len(trains) == 2 and all("steps_per_epoch=120" in x and "--max-steps 300" in x for x in trains)
    bad = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "compare_models.py"), "--stop-at", "0", "--dry-run"],
                         check=False, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--stop-at must be at least 1" in bad.stderr and "Traceback" not in bad.stderr

    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import compare_models
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    out = tmp_path / "cmp"
    out.mkdir()
    rows = ["track,class,method,status,sdr"]
    for i, (a, b) in enumerate([(1.0, 2.0), (3.0, 3.5), (0.0, -1.0)]):
        rows += [f"t{i},violin,sgn,ok,{a}", f"t{i},violin,unet,ok,{b}", f"t{i},violin,mixture,ok,0"]
    (out / "eval-chorales-2src.csv").write_text("\n".join(rows) + "\n")
    table = compare_models.paired_differences(SimpleNamespace(out=out, variants=["sgn", "unet"]), ["chorales-2src"])
    # differences +1.0, +0.5, -1.0: mean +0.17, standard error 1.04 / sqrt(3) = 0.60, higher on 2 of 3
    assert "| unet | +0.17 +- 0.60 dB, higher on 67% of 3 |" in table
