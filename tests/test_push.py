"""Publishing checkpoints (sgnsep.hub.push_checkpoint, `sgnsep push`) through huggingface_hub's real upload path.

No network: the ``hub_server`` fixture (tests/conftest.py) runs the local Hub of tests/hub_server.py, which also
speaks the upload protocol (create repo / branch, preupload, LFS batch + PUT + verify, NDJSON commit). The
``push_hub`` fixture below makes it require a token, isolates the token sources (HF_TOKEN, the saved login) and
turns Xet off (HF_HUB_DISABLE_XET=1): with hf_xet installed huggingface_hub would upload LFS content through the
Xet CAS protocol, which the local server does not implement.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch

from sgnsep.models.checkpoint import CheckpointMeta, load_checkpoint, save_checkpoint
from sgnsep.models.config import SGNConfig
from sgnsep.core.errors import ModelError
from sgnsep.hub import download_checkpoint, push_checkpoint
from sgnsep.models.sgn import SGN
from sgnsep.model_card import model_card

try:
    from hub_server import closed_port_endpoint, sha256
except ImportError:  # tests/ imported as a package
    from tests.hub_server import closed_port_endpoint, sha256

ROOT = Path(__file__).resolve().parents[1]
REPO = "acme/sgn-strings"
TOKEN = "hf_test_write_token_0123456789"
CLASSES = ["violin", "cello"]
EVAL = {
    "eval": {
        "chorales-2src": {
            "sgn": {"overall": {"sdr": {"mean": 4.25, "median": 4.0, "std": 2.5, "n": 40},
                                "sdri": {"mean": 3.5, "median": 3.25, "std": 1.5, "n": 40}},
                    "violin": {"sdr": {"mean": 5.5, "median": 5.0, "std": 2.0, "n": 20}}},
            "mixture": {"overall": {"sdr": {"mean": 0.75, "median": 0.5, "std": 3.0, "n": 40}}},
        }
    }
}


def make_checkpoint(folder: Path, *, seed: int = 0, steps: int = 100, name: str = "tiny-strings",
                    metrics: dict | None = None) -> Path:
    """A tiny but real SGN checkpoint (random weights from ``seed``: same seed, same bytes)."""
    torch.manual_seed(seed)
    cfg = SGNConfig(num_classes=len(CLASSES), unet_ngf=4, embed_dim=8, depth=1, num_heads=1)
    meta = CheckpointMeta(
        classes=list(CLASSES), model=cfg, name=name, metrics=metrics or {},
        training={"config": {"dataset": "solos", "data_dir": "data/strings", "lr": 0.001, "batch_size": 4},
                  "steps": steps},
    )
    return save_checkpoint(folder, SGN(cfg, input_size=meta.audio.warp_bins), meta)


@pytest.fixture
def push_hub(hub_server, monkeypatch, tmp_path):
    """The local Hub, requiring ``Authorization: Bearer TOKEN`` for writes; no token anywhere unless a test sets one."""
    from huggingface_hub import constants

    hub_server.token = TOKEN
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")  # read at import (subprocesses) ...
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)  # ... and at call time here
    home = tmp_path / "hf_home"
    home.mkdir()
    monkeypatch.setenv("HF_HOME", str(home))  # a subprocess finds no saved login
    monkeypatch.setenv("HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))  # nor does this process
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE", "HF_HUB_DISABLE_IMPLICIT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    return hub_server


def run_cli(*args, env_extra: dict[str, str] | None = None, drop: tuple[str, ...] = ()):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(env_extra or {})
    for name in drop:
        env.pop(name, None)
    return subprocess.run([sys.executable, "-m", "sgnsep", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


def _front_matter(readme: str) -> dict:
    import yaml

    assert readme.startswith("---\n")
    return yaml.safe_load(readme.split("\n---\n", 1)[0][4:])


def _error_text(excinfo) -> str:
    err = excinfo.value
    assert isinstance(err, ModelError) and err.exit_code == 5
    text = str(err)
    assert "Traceback" not in text and "\n" not in text
    return text


# ------------------------------------------------------------------------------------------------- happy paths


def test_push_then_download_gives_identical_bytes(push_hub, tmp_path):
    folder = make_checkpoint(tmp_path / "runs" / "x" / "best", metrics=EVAL)

    result = push_checkpoint(folder, REPO, token=TOKEN)

    assert result.changed and result.revision == "main" and result.repo_id == REPO
    assert result.commit_id == push_hub.commit_for(REPO)
    assert str(result) == result.commit_url == f"{push_hub.endpoint}/{REPO}/commit/{result.commit_id}"
    assert set(result.files) == {"config.json", "model.safetensors", "README.md"}
    assert result.classes == tuple(CLASSES)
    # Exactly the checkpoint and its card, next to the Hub's initial .gitattributes.
    assert sorted(push_hub.files(REPO)) == [".gitattributes", "README.md", "config.json", "model.safetensors"]
    assert not push_hub.is_private(REPO)

    snapshot = download_checkpoint(REPO)
    for name in ("config.json", "model.safetensors"):
        assert (snapshot / name).read_bytes() == (folder / name).read_bytes(), name
    assert snapshot.name == result.commit_id
    assert load_checkpoint(snapshot).meta.classes == CLASSES

    readme = push_hub.files(REPO)["README.md"].decode()
    meta = _front_matter(readme)
    assert meta["library_name"] == "sgnsep" and meta["license"] == "mit"
    assert {"audio-source-separation", "sgn"} <= set(meta["tags"])
    assert "`violin`, `cello`" in readme
    assert f"sgnsep separate song.wav --sources violin,cello --model {REPO}" in readme
    assert "Semantic Grouping Network for Audio Source Separation" in readme and "Mo" in readme
    assert "| `sgn` | overall | 4.25 ± 2.50 (n=40) | 3.50 ± 1.50 (n=40) |" in readme

    # The upload went through the library's LFS path and every endpoint it called is one the server implements.
    assert push_hub.unknown_requests == []
    routes = push_hub.routes()
    for route in ("create-repo", "validate-yaml", "preupload", "lfs-batch", "lfs-upload", "lfs-verify", "commit"):
        assert route in routes, route
    assert routes.index("create-repo") < routes.index("lfs-upload") < routes.index("commit")
    for request in push_hub.write_requests:
        if request.route != "lfs-upload":  # the pre-signed upload URL carries its own authorization
            assert request.header("Authorization") == f"Bearer {TOKEN}", request.route
    upload = next(r for r in push_hub.requests if r.route == "lfs-upload")
    assert upload.body == (folder / "model.safetensors").read_bytes()
    commit = next(r for r in push_hub.requests if r.route == "commit")
    lines = [json.loads(line) for line in commit.body.splitlines()]
    assert lines[0]["key"] == "header" and lines[0]["value"]["summary"] == "Upload sgnsep checkpoint tiny-strings"
    kinds = {line["value"]["path"]: line["key"] for line in lines[1:]}
    assert kinds == {"config.json": "file", "README.md": "file", "model.safetensors": "lfsFile"}


def test_push_twice_makes_a_second_commit(push_hub, tmp_path):
    folder = make_checkpoint(tmp_path / "best", steps=100)
    first = push_checkpoint(folder, REPO, token=TOKEN)
    assert push_hub.count("PUT") == 1

    # Same weights, new training record: a second commit; the unchanged weights are not uploaded again.
    make_checkpoint(folder, steps=200)
    second = push_checkpoint(folder, REPO, token=TOKEN, message="200 steps")

    assert second.changed and second.commit_id != first.commit_id
    assert push_hub.count("PUT") == 1
    log = push_hub.commit_log(REPO)
    assert [c["commit"] for c in log] == [second.commit_id, first.commit_id, log[2]["commit"]]
    assert [c["message"] for c in log] == ["200 steps", "Upload sgnsep checkpoint tiny-strings", "initial commit"]
    assert log[0]["parent"] == first.commit_id
    assert json.loads(download_checkpoint(REPO).joinpath("config.json").read_text())["training"]["steps"] == 200

    # New weights: a third commit with a new LFS object.
    make_checkpoint(folder, seed=1, steps=300)
    third = push_checkpoint(folder, REPO, token=TOKEN)
    assert third.commit_id not in (first.commit_id, second.commit_id)
    assert push_hub.count("PUT") == 2
    assert (download_checkpoint(REPO) / "model.safetensors").read_bytes() == (folder / "model.safetensors").read_bytes()

    # Nothing changed: no empty commit, the current head is reported.
    again = push_checkpoint(folder, REPO, token=TOKEN)
    assert not again.changed and again.commit_id == third.commit_id == push_hub.commit_for(REPO)
    assert len(push_hub.commit_log(REPO)) == 4


def test_push_to_a_branch(push_hub, tmp_path):
    folder = make_checkpoint(tmp_path / "best")

    result = push_checkpoint(folder, REPO, revision="candidate", token=TOKEN)

    assert result.revision == "candidate" and result.repo_url.endswith(f"/{REPO}/tree/candidate")
    assert set(push_hub.refs(REPO)) == {"main", "candidate"}
    assert push_hub.commit_for(REPO, "candidate") == result.commit_id
    assert sorted(push_hub.files(REPO, "main")) == [".gitattributes"]  # main is untouched
    snapshot = download_checkpoint(f"{REPO}@candidate")
    assert (snapshot / "model.safetensors").read_bytes() == (folder / "model.safetensors").read_bytes()
    with pytest.raises(ModelError):
        download_checkpoint(REPO)  # main has no checkpoint

    # owner/name@branch says the same; the branch exists now, so the push adds a commit on top of it.
    make_checkpoint(folder, steps=500)
    second = push_checkpoint(folder, f"{REPO}@candidate", token=TOKEN)
    assert push_hub.commit_log(REPO, "candidate")[0]["parent"] == result.commit_id
    assert second.commit_id == push_hub.commit_for(REPO, "candidate")


def test_private_repo_needs_the_token_to_download(push_hub, tmp_path, monkeypatch):
    folder = make_checkpoint(tmp_path / "best")
    push_checkpoint(folder, REPO, private=True, token=TOKEN)
    assert push_hub.is_private(REPO)

    with pytest.raises(ModelError) as excinfo:
        download_checkpoint(REPO)
    assert "hf auth login" in _error_text(excinfo)

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    snapshot = download_checkpoint(REPO)
    assert (snapshot / "config.json").read_bytes() == (folder / "config.json").read_bytes()


def test_token_from_hf_token_env(push_hub, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    result = push_checkpoint(make_checkpoint(tmp_path / "best"), REPO)
    assert result.commit_id == push_hub.commit_for(REPO)


def test_cli_push(push_hub, tmp_path):
    folder = make_checkpoint(tmp_path / "runs" / "x" / "best")

    r = run_cli("push", "--model", folder, "--repo", REPO, "--message", "first upload",
                env_extra={"HF_TOKEN": TOKEN})

    assert r.returncode == 0, r.stderr
    commit = push_hub.commit_for(REPO)
    assert r.stdout.strip() == f"{push_hub.endpoint}/{REPO}/commit/{commit}"
    assert "pushed" in r.stderr and f"{push_hub.endpoint}/{REPO}" in r.stderr and commit[:12] in r.stderr
    assert f"sgnsep separate song.wav --sources violin,cello --model {REPO}" in r.stderr
    assert push_hub.commit_log(REPO)[0]["message"] == "first upload"
    assert push_hub.files(REPO)["model.safetensors"] == (folder / "model.safetensors").read_bytes()
    assert push_hub.unknown_requests == []


# ------------------------------------------------------------------------------------------------------ errors


def test_cli_push_without_token(push_hub, tmp_path):
    folder = make_checkpoint(tmp_path / "best")

    r = run_cli("push", "--model", folder, "--repo", REPO)

    assert r.returncode == 5, r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""
    assert "hf auth login" in r.stderr and "--token" in r.stderr and "No Hugging Face token" in r.stderr
    assert not push_hub.has_repo(REPO)
    assert [r.status for r in push_hub.write_requests] == [401]  # refused at create-repo: nothing else was sent


def test_no_token_for_an_existing_public_repo(push_hub, tmp_path):
    """create_repo(exist_ok=True) accepts the 401 when the repo can be read; the upload is refused next."""
    commits = push_hub.add_repo(REPO, {"README.md": b"# old\n"})
    folder = make_checkpoint(tmp_path / "best")

    with pytest.raises(ModelError) as excinfo:
        push_checkpoint(folder, REPO)

    text = _error_text(excinfo)
    assert "No Hugging Face token" in text and "hf auth login" in text and "--token" in text
    assert push_hub.commit_for(REPO) == commits["main"]
    assert all(r.status == 401 for r in push_hub.write_requests)


def test_rejected_token(push_hub, tmp_path, monkeypatch):
    folder = make_checkpoint(tmp_path / "best")

    with pytest.raises(ModelError) as excinfo:
        push_checkpoint(folder, REPO, token="hf_not_the_right_one")
    text = _error_text(excinfo)
    assert "rejected the token from --token" in text and "HTTP 401" in text and "--token" in text

    monkeypatch.setenv("HF_TOKEN", "hf_also_wrong")
    with pytest.raises(ModelError) as excinfo:
        push_checkpoint(folder, REPO)
    assert "token from HF_TOKEN" in _error_text(excinfo)
    assert not push_hub.has_repo(REPO)


def test_mismatched_checkpoint_is_refused_before_any_request(push_hub, tmp_path):
    folder = make_checkpoint(tmp_path / "best")
    config = json.loads((folder / "config.json").read_text())
    config["model"]["embed_dim"] = 16  # the weights were made with 8
    (folder / "config.json").write_text(json.dumps(config))

    with pytest.raises(ModelError) as excinfo:
        push_checkpoint(folder, REPO, token=TOKEN)

    assert "do not match its config.json" in _error_text(excinfo)
    assert push_hub.requests == []


def test_cli_mismatched_checkpoint(push_hub, tmp_path):
    folder = make_checkpoint(tmp_path / "best")
    config = json.loads((folder / "config.json").read_text())
    config["classes"] = ["violin", "cello", "flute"]  # 3 names for a 2-class model
    (folder / "config.json").write_text(json.dumps(config))

    r = run_cli("push", "--model", folder, "--repo", REPO, env_extra={"HF_TOKEN": TOKEN})

    assert r.returncode == 5 and "Traceback" not in r.stderr
    assert "num_classes" in r.stderr
    assert push_hub.write_requests == []


def test_pickle_files_are_refused(push_hub, tmp_path):
    folder = make_checkpoint(tmp_path / "best")
    (folder / "optimizer.pt").write_bytes(b"\x80\x04pickle")

    with pytest.raises(ModelError) as excinfo:
        push_checkpoint(folder, REPO, token=TOKEN)

    text = _error_text(excinfo)
    assert "optimizer.pt" in text and "pickle" in text
    assert push_hub.requests == []


def test_run_folder_points_at_its_checkpoint(push_hub, tmp_path):
    make_checkpoint(tmp_path / "runs" / "x" / "best")
    with pytest.raises(ModelError) as excinfo:
        push_checkpoint(tmp_path / "runs" / "x", REPO, token=TOKEN)
    assert f"--model {tmp_path / 'runs' / 'x' / 'best'}" in _error_text(excinfo)
    assert push_hub.requests == []


def test_checkpoint_rewritten_while_reading_is_refused(push_hub, tmp_path, monkeypatch):
    """E.g. runs/x/best replaced by a training run that is still going: never push a mix of two checkpoints."""
    import sgnsep.models.checkpoint

    folder = make_checkpoint(tmp_path / "best")
    real_load = sgnsep.models.checkpoint.load_checkpoint

    def load_then_training_saves_again(path):
        loaded = real_load(path)
        make_checkpoint(folder, seed=7)
        return loaded

    monkeypatch.setattr(sgnsep.models.checkpoint, "load_checkpoint", load_then_training_saves_again)
    with pytest.raises(ModelError) as excinfo:
        push_checkpoint(folder, REPO, token=TOKEN)
    assert "changed while it was being read" in _error_text(excinfo)
    assert push_hub.requests == []


@pytest.mark.parametrize("repo", ["acme", "acme/bad name", "acme/x--y", "acme/m@", "./runs/x"])
def test_invalid_repo_id(push_hub, tmp_path, repo):
    folder = make_checkpoint(tmp_path / "best")
    with pytest.raises(ModelError) as excinfo:
        push_checkpoint(folder, repo, token=TOKEN)
    assert "--repo" in _error_text(excinfo)
    assert push_hub.requests == []


def test_invalid_branches(push_hub, tmp_path):
    folder = make_checkpoint(tmp_path / "best")
    with pytest.raises(ModelError) as excinfo:
        push_checkpoint(folder, f"{REPO}@one", revision="two", token=TOKEN)
    assert "'one' and 'two'" in _error_text(excinfo)
    with pytest.raises(ModelError) as excinfo:
        push_checkpoint(folder, REPO, revision="a" * 40, token=TOKEN)
    assert "commit id" in _error_text(excinfo)
    assert push_hub.requests == []


def test_unreachable_hub_fails_fast(push_hub, tmp_path, monkeypatch):
    folder = make_checkpoint(tmp_path / "best")
    monkeypatch.setenv("HF_ENDPOINT", closed_port_endpoint())

    t0 = time.monotonic()
    with pytest.raises(ModelError) as excinfo:
        push_checkpoint(folder, REPO, token=TOKEN)

    assert time.monotonic() - t0 < 10
    text = _error_text(excinfo)
    assert "Cannot reach the Hugging Face Hub" in text and "HF_ENDPOINT" in text and "network" in text


def test_offline_mode_refuses(push_hub, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError) as excinfo:
        push_checkpoint(make_checkpoint(tmp_path / "best"), REPO, token=TOKEN)
    assert "HF_HUB_OFFLINE" in _error_text(excinfo)
    assert push_hub.requests == []


def test_hub_outage(push_hub, tmp_path):
    folder = make_checkpoint(tmp_path / "best")
    push_hub.outage = 503
    with pytest.raises(ModelError) as excinfo:
        push_checkpoint(folder, REPO, token=TOKEN)
    text = _error_text(excinfo)
    assert "HTTP 503" in text and "try again" in text


# --------------------------------------------------------------------------------------------------- model card


def test_model_card_without_scores():
    meta = CheckpointMeta(classes=["low", "high", "hiss"], model=SGNConfig(num_classes=3), name="tones",
                          training={"license": "apache-2.0"})
    card = model_card(meta, repo_id="me/tones")
    assert _front_matter(card) == {"library_name": "sgnsep", "license": "apache-2.0",
                                   "tags": ["audio-source-separation", "sgn"], "pipeline_tag": "audio-to-audio"}
    assert "No scores were recorded" in card and "sgnsep eval --model me/tones" in card
    assert "sgnsep separate song.wav --sources low,high --model me/tones" in card
    assert "11025 Hz" in card and "`low`, `high`, `hiss`" in card
    assert card.endswith("\n")


def test_model_card_renders_eval_tables():
    meta = CheckpointMeta(
        classes=list(CLASSES), model=SGNConfig(num_classes=2, embed_dim=64), metrics={
            "eval": {"solos": {"summary": {"sgn": {"overall": {"sdr": {"mean": 1.0, "std": 0.5, "n": 3}}}},
                               "data": {"mixtures": 3}},
                     "quick": {"sdr": 2.0, "si-sdr": 1.5}},
            "val_loss": 0.25,
        })
    card = model_card(meta, repo_id="acme/m")
    assert "### solos" in card and "| `sgn` | overall | 1.00 ± 0.50 (n=3) |" in card
    assert "Data: mixtures = 3." in card
    assert "### quick" in card and "| SDR | SI-SDR |" in card and "| 2.00 | 1.50 |" in card
    assert "`val_loss`: 0.25" in card
    assert "| embedding size D | 64 | 256 |" in card  # this model vs the paper's configuration


@pytest.mark.parametrize("architecture", ["unet", "cunet"])
def test_model_card_describes_a_baseline_as_what_it_is(architecture):
    meta = CheckpointMeta(classes=["low", "high"], model=SGNConfig(num_classes=2, unet_ngf=16),
                          architecture=architecture, name="base")
    card = model_card(meta, repo_id="me/base")
    about = card.split("## Classes")[0]
    assert "Semantic Grouping Network** (SGN) checkpoint" not in about and "class tokens attend" not in about
    assert ("U-Net baseline" if architecture == "unet" else "Conditioned U-Net") in about
    tags = _front_matter(card)["tags"]
    assert tags == ["audio-source-separation", "unet" if architecture == "unet" else "conditioned-unet"]
    size = card.split("## Model size")[1].split("## ")[0]
    assert "| U-Net base channels (ngf) | 16 | 64 |" in size
    # SGN's transformer and grouping settings mean nothing for a U-Net: not listed.
    assert "embedding size D" not in size and "grouping" not in size and "attention heads" not in size
    assert ("FiLM at" in size) == (architecture == "cunet")
    assert ("Slizovskaia" in card) == (architecture == "cunet")


def _with_config(folder: Path, change) -> Path:
    config = json.loads((folder / "config.json").read_text())
    change(config)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_cli_push_with_odd_metadata_types_names_the_field(push_hub, tmp_path):
    """Issue 24: `push` with numbers / lists / null where the card expects text, or a count that is not a count,
    ended in "internal error" (or published a wrong card). Now exit 5 naming the field, before anything is sent."""
    from tests.test_hardening import assert_clean_failure, run_cli_many

    def scores(n):
        return {"eval": {"solos": {"sgn": {"overall": {"sdr": {"mean": 1.5, "n": n}}}}}}

    cases = {
        "sgnsep_version": lambda c: c.update(sgnsep_version=None),
        "training.license": lambda c: c["training"].update(license=3),
        "training.sgnsep_version": lambda c: c["training"].update(sgnsep_version=["0.1"]),
        "metrics.eval.solos.sgn.overall.sdr.n": lambda c: c.update(metrics=scores(float("nan"))),
        "metrics.eval.solos.sgn.overall.sdr.mean": lambda c: c.update(metrics={"eval": {"solos": {"sgn": {
            "overall": {"sdr": {"mean": 10 ** 400}}}}}}),
    }
    folders = {field: _with_config(make_checkpoint(tmp_path / field.replace(".", "_")), change)
               for field, change in cases.items()}

    results = run_cli_many([["push", "--model", folders[f], "--repo", REPO] for f in cases], tmp_path,
                           env={"HF_TOKEN": TOKEN})

    for field, r in zip(cases, results):
        assert_clean_failure(r, 5, f'"{field}"', str(folders[field] / "config.json"), "push again")
    assert push_hub.write_requests == []  # the card is built, and refused, before any request


def test_cli_push_quotes_class_names_in_the_commands_it_shows(push_hub, tmp_path):
    folder = _with_config(make_checkpoint(tmp_path / "best"), lambda c: c.update(classes=["low tone", "$(touch x)"]))

    r = run_cli("push", "--model", folder, "--repo", REPO, env_extra={"HF_TOKEN": TOKEN})

    assert r.returncode == 0, r.stderr
    line = next(ln for ln in r.stderr.splitlines() if ln.startswith("Use it with: "))
    assert shlex.split(line.removeprefix("Use it with: ")) == [
        "sgnsep", "separate", "song.wav", "--sources", "low tone,$(touch x)", "--model", REPO]
    card = push_hub.files(REPO)["README.md"].decode()
    assert "--sources 'low tone,$(touch x)'" in card


def _code_blocks(markdown: str) -> list[tuple[str, str]]:
    """``(info, content)`` of each fenced code block, closed as CommonMark closes them (a line of at least as many
    backticks as the opening fence, and nothing else)."""
    blocks, lines, i = [], markdown.split("\n"), 0
    while i < len(lines):
        opening = re.match(r"^(`{3,})(\w*)$", lines[i])
        i += 1
        if opening is None:
            continue
        fence, body = opening.group(1), []
        while i < len(lines) and not re.fullmatch(rf" {{0,3}}`{{{len(fence)},}}\s*", lines[i]):
            body.append(lines[i])
            i += 1
        blocks.append((opening.group(2), "\n".join(body)))
        i += 1
    return blocks


def test_model_card_shell_example_is_safe_to_paste(tmp_path):
    """Class names go into the card's shell example quoted (shlex.quote), inside a fence no name can close."""
    classes = ["low tone", "$(touch pwned); echo `id`", "x\n```\ntouch pwned2"]
    meta = CheckpointMeta(classes=classes, model=SGNConfig(num_classes=3), name="odd")
    card = model_card(meta, repo_id="me/odd")

    shell = [body for info, body in _code_blocks(card) if info == "bash"]
    assert len(shell) == 1
    assert shlex.split(shell[0]) == ["sgnsep", "separate", "song.wav", "--sources", ",".join(classes[:2]),
                                     "--model", "me/odd"]
    # Pasted into a real shell (with `sgnsep` replaced by printf), it runs nothing but the one command.
    out = subprocess.run(["bash", "-c", shell[0].replace("sgnsep", "printf '%s\\n'", 1)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and out.stdout.splitlines()[3] == ",".join(classes[:2])
    assert list(tmp_path.iterdir()) == []
    python = [body for info, body in _code_blocks(card) if info == "python"]
    assert len(python) == 1 and json.dumps(classes[:2]) in python[0]
    # The class list stays one line, each name one inline code span (a backtick there would end it early).
    listed = card.split("## Classes\n\n")[1].split("\n\n")[0]
    assert "\n" not in listed and "`x ''' touch pwned2`" in listed


# ----------------------------------------------------------------------------------------- the server itself


def test_hub_server_upload_protocol(push_hub):
    """The server's write endpoints refuse what the Hub refuses (no token, bad upload URL, unknown LFS object)."""
    endpoint = push_hub.endpoint

    def call(method, path, payload=None, token=TOKEN, raw=None):
        data = raw if raw is not None else (json.dumps(payload).encode() if payload is not None else None)
        request = urllib.request.Request(endpoint + path, data=data, method=method)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()

    status, headers, _ = call("POST", "/api/repos/create", {"name": "m", "organization": "acme"}, token=None)
    assert status == 401 and headers["X-Error-Message"] == "Invalid username or password."
    status, headers, _ = call("POST", "/api/repos/create", {"name": "m", "organization": "acme"}, token="hf_bad")
    assert status == 401 and headers["X-Error-Message"] == "Invalid credentials in Authorization header"
    assert call("POST", "/api/repos/create", {"name": "m", "organization": "acme"})[0] == 200
    assert call("POST", "/api/repos/create", {"name": "m", "organization": "acme"})[0] == 409
    assert call("POST", "/api/repos/create", {"name": "bad name", "organization": "acme"})[0] == 400

    data = b"weights" * 100
    oid = sha256(data)
    status, _, body = call("POST", "/acme/m.git/info/lfs/objects/batch",
                           {"operation": "upload", "objects": [{"oid": oid, "size": len(data)}]})
    href = json.loads(body)["objects"][0]["actions"]["upload"]["href"]
    assert href.startswith(endpoint)
    assert call("PUT", href[len(endpoint):].replace("signature=", "signature=0"), raw=data, token=None)[0] == 403
    assert call("PUT", href[len(endpoint):], raw=data[:-1], token=None)[0] == 400
    assert call("PUT", href[len(endpoint):], raw=data, token=None)[0] == 200

    def commit(*lines, token=TOKEN):
        header = {"key": "header", "value": {"summary": "test"}}
        return call("POST", "/api/models/acme/m/commit/main",
                    raw=b"".join(json.dumps(x).encode() + b"\n" for x in (header, *lines)), token=token)

    lfs_line = {"key": "lfsFile", "value": {"path": "w.safetensors", "algo": "sha256", "oid": oid, "size": len(data)}}
    missing = {"key": "lfsFile", "value": {"path": "x.safetensors", "algo": "sha256", "oid": "0" * 64, "size": 1}}
    assert commit(lfs_line, token=None)[0] == 401
    assert commit(missing)[0] == 422
    status, _, body = commit(lfs_line, {"key": "file", "value": {"path": "a.txt", "content": "aGk=",
                                                                    "encoding": "base64"}})
    assert status == 200 and json.loads(body)["commitOid"] == push_hub.commit_for("acme/m")
    assert push_hub.files("acme/m")["w.safetensors"] == data and push_hub.files("acme/m")["a.txt"] == b"hi"
    assert call("GET", "/api/models/acme/m/xet-write-token/main")[0] == 501
    assert push_hub.unknown_requests == []
