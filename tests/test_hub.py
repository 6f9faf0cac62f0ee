"""The real Hub download path (huggingface_hub.hf_hub_download) against a local Hub file server.

No network: the ``hub_server`` fixture (tests/conftest.py) serves repos from memory on 127.0.0.1 and points
HF_ENDPOINT / HF_HUB_CACHE at it and at a fresh cache folder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sgnsep.core.errors import ModelError
from sgnsep.hub import download_checkpoint, parse_repo_id

try:
    from hub_server import blackhole_endpoint, closed_port_endpoint, flip_byte, git_blob_sha1, sha256
except ImportError:  # tests/ imported as a package
    from tests.hub_server import blackhole_endpoint, closed_port_endpoint, flip_byte, git_blob_sha1, sha256

REPO = "acme/sgn-tiny"


def _safetensors(payload: bytes) -> bytes:
    """A valid safetensors file holding ``payload`` as one uint8 tensor (downloads are parsed before caching)."""
    from safetensors.numpy import save

    import numpy as np

    return save({"payload": np.frombuffer(payload, dtype=np.uint8)})


def _checkpoint(tag: str, size: int = 300_000) -> dict[str, bytes]:
    config = json.dumps({"arch": "sgn", "tag": tag}).encode()
    weights = _safetensors((tag.encode() * (size // len(tag) + 1))[:size])  # distinct bytes per tag
    return {"config.json": config, "model.safetensors": weights, "README.md": f"# {tag}\n".encode()}


MAIN = _checkpoint("main", size=3_000_000)
V1 = _checkpoint("v1")


def _assert_checkpoint(folder: Path, files: dict[str, bytes]) -> None:
    assert folder.is_dir()
    for name in ("config.json", "model.safetensors"):
        assert (folder / name).read_bytes() == files[name], name


def _message(excinfo) -> str:
    err = excinfo.value
    assert isinstance(err, ModelError)
    assert err.exit_code == 5
    text = str(err)
    assert "Traceback" not in text and "\n" not in text
    return text


# ------------------------------------------------------------------------------------------------- happy paths


def test_download_by_repo_id(hub_server):
    commits = hub_server.add_repo(REPO, MAIN)

    folder = download_checkpoint(REPO)

    _assert_checkpoint(folder, MAIN)
    assert folder.name == commits["main"]
    assert folder.parent.name == "snapshots"
    assert folder.is_relative_to(hub_server.cache_dir)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]  # README not fetched
    # Standard Hugging Face cache layout: blobs named by git sha1 (regular files) / sha256 (LFS files), a ref.
    repo_cache = hub_server.cache_dir / "models--acme--sgn-tiny"
    blobs = {p.name for p in (repo_cache / "blobs").iterdir()}
    assert blobs == {git_blob_sha1(MAIN["config.json"]), sha256(MAIN["model.safetensors"])}
    assert (repo_cache / "refs" / "main").read_text() == commits["main"]
    # The weights went through the LFS redirect to the "CDN", exactly once.
    assert hub_server.count("GET", "model.safetensors", server="cdn") == 1
    assert hub_server.count("GET", "config.json") == 1


def test_explicit_cache_dir(hub_server, tmp_path):
    hub_server.add_repo(REPO, MAIN)
    folder = download_checkpoint(REPO, cache_dir=tmp_path / "elsewhere")
    assert folder.is_relative_to((tmp_path / "elsewhere").resolve())
    _assert_checkpoint(folder, MAIN)
    assert not hub_server.cache_dir.exists()


def test_revision_pinning(hub_server):
    commits = hub_server.add_repo(REPO, MAIN, revisions={"v1": V1, "refs/pr/1": _checkpoint("pr")})

    main = download_checkpoint(REPO)
    v1 = download_checkpoint(*parse_repo_id(f"{REPO}@v1"))
    v1_again = download_checkpoint(f"{REPO}@v1")  # the @revision form is accepted directly too
    by_commit = download_checkpoint(REPO, commits["v1"])
    pr = download_checkpoint(REPO, "refs/pr/1")  # revision with '/' (URL-encoded on the wire)

    _assert_checkpoint(main, MAIN)
    _assert_checkpoint(v1, V1)
    _assert_checkpoint(pr, _checkpoint("pr"))
    assert main.name == commits["main"] and v1.name == commits["v1"] and pr.name == commits["refs/pr/1"]
    assert v1_again == v1 == by_commit
    assert main != v1
    assert any(r.path.startswith(f"/{REPO}/resolve/refs%2Fpr%2F1/") for r in hub_server.requests)


def test_conflicting_revisions_rejected(hub_server):
    with pytest.raises(ModelError) as excinfo:
        download_checkpoint(f"{REPO}@v1", "v2")
    assert "v1" in _message(excinfo) and "v2" in str(excinfo.value)
    assert hub_server.requests == []


def test_cached_second_download_makes_no_file_get(hub_server):
    hub_server.add_repo(REPO, MAIN)
    first = download_checkpoint(REPO)
    gets_before = hub_server.count("GET", "model.safetensors"), hub_server.count("GET", "config.json")

    second = download_checkpoint(REPO)

    assert second == first
    assert (hub_server.count("GET", "model.safetensors"), hub_server.count("GET", "config.json")) == gets_before
    _assert_checkpoint(second, MAIN)


def test_branch_update_is_picked_up(hub_server):
    hub_server.add_repo(REPO, V1)
    old = download_checkpoint(REPO)
    commits = hub_server.add_repo(REPO, MAIN)  # main moves to a new commit

    new = download_checkpoint(REPO)

    assert new.name == commits["main"] != old.name
    _assert_checkpoint(new, MAIN)
    _assert_checkpoint(old, V1)  # the old snapshot stays valid


def test_cached_commit_needs_no_network(hub_server):
    commits = hub_server.add_repo(REPO, MAIN)
    first = download_checkpoint(REPO)
    hub_server.stop()
    hub_server.clear_requests()

    t0 = time.monotonic()
    again = download_checkpoint(REPO, commits["main"])  # not offline: a cached commit id needs no look-up

    assert again == first
    assert time.monotonic() - t0 < 2
    _assert_checkpoint(again, MAIN)


# ------------------------------------------------------------------------------------------------ offline / cache


def test_offline_env_uses_cache_with_server_stopped(hub_server, monkeypatch):
    hub_server.add_repo(REPO, MAIN, revisions={"v1": V1})
    main = download_checkpoint(REPO)
    v1 = download_checkpoint(REPO, "v1")
    # Set after huggingface_hub was imported: sgnsep.hub reads the variable at call time.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub_server.clear_requests()
    assert download_checkpoint(REPO) == main
    assert hub_server.requests == []  # server still up: offline really means no request
    hub_server.stop()

    assert download_checkpoint(REPO) == main
    assert download_checkpoint(f"{REPO}@v1") == v1
    _assert_checkpoint(main, MAIN)
    _assert_checkpoint(v1, V1)


def test_offline_constant_uses_cache(hub_server, monkeypatch):
    """What a process started with HF_HUB_OFFLINE=1 sees: the library's own constant is set."""
    from huggingface_hub import constants

    hub_server.add_repo(REPO, MAIN)
    folder = download_checkpoint(REPO)
    hub_server.stop()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)

    assert download_checkpoint(REPO) == folder


def test_local_files_only_uses_cache_and_no_network(hub_server):
    hub_server.add_repo(REPO, MAIN)
    folder = download_checkpoint(REPO)
    hub_server.clear_requests()

    assert download_checkpoint(REPO, local_files_only=True) == folder
    assert hub_server.requests == []  # server still running: really no request

    hub_server.stop()
    assert download_checkpoint(REPO, local_files_only=True) == folder


def test_unreachable_hub_falls_back_to_cache(hub_server):
    hub_server.add_repo(REPO, MAIN)
    folder = download_checkpoint(REPO)
    hub_server.stop()  # not offline mode: the Hub just went away

    t0 = time.monotonic()
    assert download_checkpoint(REPO) == folder
    assert time.monotonic() - t0 < 10


def test_hub_outage_falls_back_to_cache(hub_server):
    hub_server.add_repo(REPO, MAIN)
    folder = download_checkpoint(REPO)
    hub_server.outage = 503

    t0 = time.monotonic()
    assert download_checkpoint(REPO) == folder
    assert time.monotonic() - t0 < 10
    assert hub_server.count("GET", "model.safetensors") == 1


def test_offline_without_cache(hub_server, monkeypatch):
    hub_server.add_repo(REPO, MAIN)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    with pytest.raises(ModelError) as excinfo:
        download_checkpoint(REPO)

    text = _message(excinfo)
    assert "Offline mode" in text and "HF_HUB_OFFLINE" in text
    assert REPO in text and str(hub_server.cache_dir) in text
    assert f"sgnsep pull {REPO}" in text and "--model /path/to/folder" in text
    assert hub_server.requests == []


def test_local_files_only_revision_not_cached(hub_server):
    hub_server.add_repo(REPO, MAIN, revisions={"v1": V1})
    download_checkpoint(REPO)

    with pytest.raises(ModelError) as excinfo:
        download_checkpoint(REPO, "v1", local_files_only=True)

    text = _message(excinfo)
    assert f"{REPO}@v1" in text and "not in the Hugging Face cache" in text


# ------------------------------------------------------------------------------------------------------- errors


def test_unknown_repo(hub_server):
    hub_server.add_repo(REPO, MAIN)

    with pytest.raises(ModelError) as excinfo:
        download_checkpoint("acme/does-not-exist")

    text = _message(excinfo)
    assert "'acme/does-not-exist' was not found" in text
    assert hub_server.endpoint in text
    assert "hf auth login" in text and "--model" in text


def test_unknown_revision(hub_server):
    hub_server.add_repo(REPO, MAIN)

    with pytest.raises(ModelError) as excinfo:
        download_checkpoint(f"{REPO}@v9")

    text = _message(excinfo)
    assert "revision 'v9' does not exist" in text and REPO in text
    assert "branch, tag or commit id" in text


def test_unknown_commit(hub_server):
    hub_server.add_repo(REPO, MAIN)

    with pytest.raises(ModelError) as excinfo:
        download_checkpoint(REPO, "0" * 40)

    assert "revision '" + "0" * 40 + "' does not exist" in _message(excinfo)


def test_missing_weights_file(hub_server):
    hub_server.add_repo(REPO, {"config.json": MAIN["config.json"], "README.md": b"# no weights\n"})

    with pytest.raises(ModelError) as excinfo:
        download_checkpoint(REPO)

    text = _message(excinfo)
    assert "has no file 'model.safetensors'" in text and REPO in text
    assert "config.json and model.safetensors" in text


def test_missing_config_file(hub_server):
    hub_server.add_repo(REPO, {"model.safetensors": MAIN["model.safetensors"]})

    with pytest.raises(ModelError) as excinfo:
        download_checkpoint(REPO)

    assert "has no file 'config.json'" in _message(excinfo)
    assert hub_server.count("GET", "model.safetensors") == 0


def test_unreachable_hub_without_cache_fails_fast(hub_server, monkeypatch):
    from huggingface_hub import constants

    dead = closed_port_endpoint()
    monkeypatch.setenv("HF_ENDPOINT", dead)
    monkeypatch.setattr(constants, "ENDPOINT", dead)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", dead + "/{repo_id}/resolve/{revision}/{filename}")

    t0 = time.monotonic()
    with pytest.raises(ModelError) as excinfo:
        download_checkpoint(REPO)
    elapsed = time.monotonic() - t0

    assert elapsed < 10, f"took {elapsed:.1f} s"
    text = _message(excinfo)
    assert "Cannot reach the Hugging Face Hub" in text and dead in text
    assert "HF_ENDPOINT" in text and "network" in text
    assert f"sgnsep pull {REPO}" in text
    assert "--model /path/to/folder" in text


def test_blackholed_hub_without_cache_fails_fast(hub_server, monkeypatch):
    """Packets dropped (firewall): the connect timeout, not the library's 60 s retry, bounds the wait."""
    from huggingface_hub import constants

    with blackhole_endpoint() as dead:
        if dead is None:
            pytest.skip("cannot simulate a black-holed endpoint on this OS")
        monkeypatch.setenv("HF_ENDPOINT", dead)
        monkeypatch.setattr(constants, "ENDPOINT", dead)
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", dead + "/{repo_id}/resolve/{revision}/{filename}")

        t0 = time.monotonic()
        with pytest.raises(ModelError) as excinfo:
            download_checkpoint(REPO)
        elapsed = time.monotonic() - t0

    assert elapsed < 10, f"took {elapsed:.1f} s"
    text = _message(excinfo)
    assert "Cannot reach the Hugging Face Hub" in text and "no connection within" in text
    assert "--model /path/to/folder" in text


def test_not_a_hub_endpoint(hub_server, monkeypatch):
    """HF_ENDPOINT pointing at some other web server: the 404 without Hub headers is reported as such."""
    from huggingface_hub import constants

    wrong = hub_server.endpoint + "/not-the-hub"
    monkeypatch.setenv("HF_ENDPOINT", wrong)
    monkeypatch.setattr(constants, "ENDPOINT", wrong)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", wrong + "/{repo_id}/resolve/{revision}/{filename}")
    hub_server.add_repo(REPO, MAIN)

    with pytest.raises(ModelError) as excinfo:
        download_checkpoint(REPO)

    text = _message(excinfo)
    assert "HTTP 404" in text and "HF_ENDPOINT" in text and "no cached copy" in text


def test_server_stopped_without_cache_fails_fast(hub_server):
    hub_server.add_repo(REPO, MAIN)
    hub_server.stop()

    t0 = time.monotonic()
    with pytest.raises(ModelError) as excinfo:
        download_checkpoint(REPO)
    assert time.monotonic() - t0 < 10
    assert "--model" in _message(excinfo)


def test_invalid_id_makes_no_request(hub_server):
    with pytest.raises(ModelError):
        download_checkpoint("not a repo")
    assert hub_server.requests == []


# ------------------------------------------------- poisoned caches, deadlines, leftovers: through `sgnsep pull`
#
# Each case is what issue 24 found (a server that lies, corrupts, serves a file that is not safetensors, or
# trickles; a pull killed mid-download) and runs the real CLI in a subprocess, checking its exit code, its one-line
# message and what is left in the cache.

PULL_REPO = "acme/sgn-pull"


@pytest.fixture(scope="module")
def real_checkpoint(tmp_path_factory) -> dict[str, bytes]:
    """The files of a small but real sgnsep checkpoint (`pull` reads the config), about 2.5 MB of weights."""
    import torch

    from sgnsep.models.checkpoint import CheckpointMeta, save_checkpoint
    from sgnsep.models.config import SGNConfig
    from sgnsep.models.sgn import SGN

    torch.manual_seed(0)
    cfg = SGNConfig(num_classes=2, unet_ngf=8, embed_dim=16, depth=1, num_heads=2)
    meta = CheckpointMeta(classes=["low", "high"], model=cfg, name="pull-test")
    folder = save_checkpoint(tmp_path_factory.mktemp("ckpt") / "pull-test", SGN(cfg, input_size=meta.audio.warp_bins),
                             meta)
    return {name: (folder / name).read_bytes() for name in ("config.json", "model.safetensors")}


def _pull_env(hub_server, tmp_path, **extra: str) -> dict[str, str]:
    # The hub_server fixture has removed the developer's own SGNSEP_HUB_* / HF_HUB_*_TIMEOUT settings.
    env = {"HF_ENDPOINT": hub_server.endpoint, "HF_HUB_CACHE": str(hub_server.cache_dir),
           "HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_OFFLINE": "0"}
    return {**env, **extra}


def _pull(hub_server, tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    from tests.test_hardening import run_cli

    return run_cli("pull", PULL_REPO, *args, env=_pull_env(hub_server, tmp_path, **env), timeout=120)


def _repo_cache(hub_server) -> Path:
    return hub_server.cache_dir / f"models--{PULL_REPO.replace('/', '--')}"


def _cache_files(hub_server) -> list[str]:
    root = _repo_cache(hub_server)
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink()) \
        if root.exists() else []


def _leftovers(hub_server) -> list[str]:
    return [name for name in _cache_files(hub_server) if name.endswith(".incomplete")]


def test_cli_pull_refuses_other_bytes_than_announced_and_keeps_nothing(hub_server, tmp_path, real_checkpoint):
    """Issue 24: a server that sends the announced size but other bytes; pull used to cache them under the sha256."""
    from tests.test_hardening import assert_clean_failure

    weights = real_checkpoint["model.safetensors"]
    hub_server.add_repo(PULL_REPO, real_checkpoint)
    hub_server.tamper("model.safetensors", flip_byte, times=1)  # one byte changed: same length, other sha256

    r = _pull(hub_server, tmp_path)

    assert_clean_failure(r, 5, "sent other bytes", "'model.safetensors'", PULL_REPO, hub_server.endpoint,
                         f"instead of the announced {sha256(weights)[:12]}", "HF_ENDPOINT")
    cached = _cache_files(hub_server)
    assert f"blobs/{sha256(weights)}" not in cached
    assert not any(name.endswith("/model.safetensors") for name in cached)
    assert "refs/main" not in cached and not _leftovers(hub_server)

    # The same pull from the (now) honest server downloads the real bytes.
    r = _pull(hub_server, tmp_path)
    assert r.returncode == 0, r.stderr
    assert (Path(r.stdout.strip()) / "model.safetensors").read_bytes() == weights
    assert (_repo_cache(hub_server) / "blobs" / sha256(weights)).read_bytes() == weights


def test_cli_pull_refuses_a_shortened_config(hub_server, tmp_path, real_checkpoint):
    from tests.test_hardening import assert_clean_failure

    config = real_checkpoint["config.json"]
    hub_server.add_repo(PULL_REPO, real_checkpoint)
    hub_server.tamper("config.json", lambda data: data[:-10], times=1)  # Content-Length says 10 bytes less

    r = _pull(hub_server, tmp_path)

    assert_clean_failure(r, 5, "sent other bytes", "'config.json'", f"{len(config) - 10:,} bytes instead of the "
                         f"announced {len(config):,}")
    assert _cache_files(hub_server) == []


def test_cli_pull_replaces_a_damaged_cached_file(hub_server, tmp_path, real_checkpoint):
    """Issue 24: pulling again from a good server kept the bad file. Now the cached copy is checked each time it is
    used (by `pull` and by loading) and a damaged one is downloaded again."""
    weights = real_checkpoint["model.safetensors"]
    hub_server.add_repo(PULL_REPO, real_checkpoint)
    assert _pull(hub_server, tmp_path).returncode == 0
    blob = _repo_cache(hub_server) / "blobs" / sha256(weights)
    blob.write_bytes(flip_byte(weights))  # what an earlier, unchecked pull from a lying server left
    gets = hub_server.count("GET", "model.safetensors")

    r = _pull(hub_server, tmp_path)

    assert r.returncode == 0, r.stderr
    assert "damaged" in r.stderr and "downloading it again" in r.stderr and "Traceback" not in r.stderr
    assert blob.read_bytes() == weights
    assert hub_server.count("GET", "model.safetensors") == gets + 1
    assert (Path(r.stdout.strip()) / "model.safetensors").read_bytes() == weights

    # Loading a Hub model goes through the same check (here in-process, as `separate -m owner/name` does).
    blob.write_bytes(weights[: len(weights) // 2])  # a truncated copy this time
    folder = download_checkpoint(PULL_REPO)
    assert (folder / "model.safetensors").read_bytes() == weights
    assert hub_server.count("GET", "model.safetensors") == gets + 2


def test_cli_pull_offline_reports_and_removes_a_damaged_cached_file(hub_server, tmp_path, real_checkpoint):
    from tests.test_hardening import assert_clean_failure

    weights = real_checkpoint["model.safetensors"]
    hub_server.add_repo(PULL_REPO, real_checkpoint)
    assert _pull(hub_server, tmp_path).returncode == 0
    blob = _repo_cache(hub_server) / "blobs" / sha256(weights)
    blob.write_bytes(flip_byte(weights))

    r = _pull(hub_server, tmp_path, HF_HUB_OFFLINE="1")

    assert_clean_failure(r, 5, "cached copy of 'model.safetensors'", "damaged", "has been removed",
                         "offline mode is on", "Unset HF_HUB_OFFLINE")
    assert not blob.exists()  # a bad file never stays in the cache to be loaded later
    hub_server.clear_requests()
    # Back online, the next pull downloads a good copy.
    r = _pull(hub_server, tmp_path)
    assert r.returncode == 0, r.stderr
    assert blob.read_bytes() == weights


def test_cli_pull_refuses_weights_that_are_not_safetensors(hub_server, tmp_path, real_checkpoint):
    """Issue 24: a `model.safetensors` that is not safetensors was accepted by `pull`."""
    from tests.test_hardening import assert_clean_failure

    not_safetensors = b"PK\x03\x04" + bytes(range(256)) * 100  # e.g. a zip (a torch pickle) renamed
    hub_server.add_repo(PULL_REPO, {**real_checkpoint, "model.safetensors": not_safetensors})

    r = _pull(hub_server, tmp_path)

    assert_clean_failure(r, 5, "'model.safetensors'", PULL_REPO, "is not a safetensors file",
                         "no usable sgnsep checkpoint")
    assert f"blobs/{sha256(not_safetensors)}" not in _cache_files(hub_server)
    assert not _leftovers(hub_server)


def test_cli_pull_gives_up_on_a_server_that_trickles(hub_server, tmp_path, real_checkpoint):
    """Issue 24: a Hub that sends one byte every 2 s kept `pull` running with no deadline. Here one byte every
    0.2 s, with a 1 s rate window (HF_HUB_DOWNLOAD_TIMEOUT) to keep the test short."""
    from tests.test_hardening import assert_clean_failure

    hub_server.add_repo(PULL_REPO, real_checkpoint)
    hub_server.trickle("model.safetensors", chunk=1, interval=0.2)

    t0 = time.monotonic()
    r = _pull(hub_server, tmp_path, HF_HUB_DOWNLOAD_TIMEOUT="1", SGNSEP_HUB_MIN_RATE="1000")
    elapsed = time.monotonic() - t0

    assert_clean_failure(r, 5, "'model.safetensors'", hub_server.endpoint, "too slow",
                         "below the minimum of 1000 bytes/s", "SGNSEP_HUB_MIN_RATE")
    assert elapsed < 30, f"took {elapsed:.0f} s"  # about 1 s of trickle; the rest is starting Python and torch
    assert not _leftovers(hub_server) and not any(n.endswith("/model.safetensors") for n in _cache_files(hub_server))


def test_cli_pull_stops_at_the_overall_deadline(hub_server, tmp_path, real_checkpoint):
    """Fast enough for the minimum rate (20 kB/s), far too slow to finish: SGNSEP_HUB_TIMEOUT ends it."""
    from tests.test_hardening import assert_clean_failure

    hub_server.add_repo(PULL_REPO, real_checkpoint)
    hub_server.trickle("model.safetensors", chunk=2000, interval=0.1)

    t0 = time.monotonic()
    r = _pull(hub_server, tmp_path, SGNSEP_HUB_TIMEOUT="2", HF_HUB_DOWNLOAD_TIMEOUT="1", SGNSEP_HUB_MIN_RATE="1000")
    elapsed = time.monotonic() - t0

    assert_clean_failure(r, 5, "'model.safetensors'", hub_server.endpoint, "did not finish within 2 s",
                         "bytes had arrived", "SGNSEP_HUB_TIMEOUT=SECONDS")
    assert elapsed < 30, f"took {elapsed:.0f} s"
    assert not _leftovers(hub_server)


def test_cli_pull_bounds_a_metadata_answer_that_trickles(hub_server, tmp_path, real_checkpoint):
    """The header block of the first HEAD arrives a byte at a time: bounded by connect + HF_HUB_ETAG_TIMEOUT."""
    from tests.test_hardening import assert_clean_failure

    hub_server.add_repo(PULL_REPO, real_checkpoint)
    hub_server.trickle("config.json", chunk=1, interval=0.2, method="HEAD", headers=True)

    r = _pull(hub_server, tmp_path, HF_HUB_ETAG_TIMEOUT="1")

    assert_clean_failure(r, 5, hub_server.endpoint, "did not answer within 2 s", "HF_HUB_ETAG_TIMEOUT",
                         "not in the cache")


def _wait_for(predicate, seconds: float = 60.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_killed_pull_leaves_nothing_the_next_pull_does_not_remove(hub_server, tmp_path, real_checkpoint):
    """Issue 24: a killed `pull` left an `.incomplete` file that nothing removed. The next pull removes those of
    dead processes, and never the file of a pull that is still running."""
    from tests.test_hardening import popen_cli

    hub_server.add_repo(PULL_REPO, real_checkpoint)
    hub_server.trickle("model.safetensors", chunk=1000, interval=0.2, times=2)  # 5 kB/s: minutes for 2.5 MB
    env = _pull_env(hub_server, tmp_path, SGNSEP_HUB_MIN_RATE="0")
    killed = popen_cli("pull", PULL_REPO, env=env)
    try:
        assert _wait_for(lambda: len(_leftovers(hub_server)) == 1), killed.stderr.read() if killed.poll() else ""
        # The temporary file exists before the request is sent: kill only once the server has the request, or
        # (on a loaded machine) the kill can come before it, and the trickled answers go to the next pulls.
        assert _wait_for(lambda: hub_server.count("GET", "model.safetensors") == 1)
        stale = _leftovers(hub_server)
        killed.kill()  # SIGKILL: no clean-up code runs
        killed.wait(timeout=30)
        assert _leftovers(hub_server) == stale and ".sgnsep-" in stale[0]  # the kill really left one

        running = popen_cli("pull", PULL_REPO, env=env)  # removes the dead pull's file, then trickles itself
        try:
            assert _wait_for(lambda: _leftovers(hub_server) not in ([], stale)), _leftovers(hub_server)
            live = _leftovers(hub_server)
            assert len(live) == 1 and live != stale
            # Its temporary file exists before its request is sent: wait until that request has taken the second
            # trickled answer, or (on a loaded machine) the next pull could get it and trickle for minutes.
            gets = lambda: hub_server.count("GET", "model.safetensors")  # noqa: E731
            assert _wait_for(lambda: gets() == 2), gets()

            r = _pull(hub_server, tmp_path)  # the trickle is used up: this one downloads at full speed

            assert r.returncode == 0, r.stderr
            assert _leftovers(hub_server) == live  # the running pull's file is never taken for abandoned
        finally:
            running.kill()
            running.wait(timeout=30)
    finally:
        if killed.poll() is None:
            killed.kill()
            killed.wait(timeout=30)
    assert (_repo_cache(hub_server) / "blobs" / sha256(real_checkpoint["model.safetensors"])).is_file()


def test_bad_hub_settings_are_usage_errors(hub_server, tmp_path, real_checkpoint):
    from tests.test_hardening import assert_clean_failure

    hub_server.add_repo(PULL_REPO, real_checkpoint)
    r = _pull(hub_server, tmp_path, SGNSEP_HUB_TIMEOUT="soon")
    assert_clean_failure(r, 2, "SGNSEP_HUB_TIMEOUT", "'soon'", "number of seconds")
    assert hub_server.requests == []


# ------------------------------------------------------------------------------------------------ parse_repo_id


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("acme/sgn-base", ("acme/sgn-base", None)),
        ("  acme/sgn-base  ", ("acme/sgn-base", None)),
        ("Acme-Labs/SGN_base.v2", ("Acme-Labs/SGN_base.v2", None)),
        ("acme/sgn-base@main", ("acme/sgn-base", "main")),
        ("acme/sgn-base@v1.0", ("acme/sgn-base", "v1.0")),
        ("acme/sgn-base@release/2024-06", ("acme/sgn-base", "release/2024-06")),
        ("acme/sgn-base@refs/pr/3", ("acme/sgn-base", "refs/pr/3")),
        ("acme/sgn-base@" + "a1" * 20, ("acme/sgn-base", "a1" * 20)),
        ("a/b", ("a/b", None)),
    ],
)
def test_parse_repo_id_accepts(spec, expected):
    assert parse_repo_id(spec) == expected


@pytest.mark.parametrize(
    ("spec", "hub_like"),
    [("acme/sgn", True), ("acme/sgn@v1", True), ("acme/sgn@release/2024", True), ("./acme/sgn", False),
     ("/acme/sgn", False), ("~/sgn", False), ("sgn-gm-small", False), ("acme/sgn/base", False), ("acme/sgn base", False)],
)
def test_only_specs_shaped_like_hub_ids_are_sent_to_the_hub(spec, hub_like):
    from sgnsep.hub.repo_id import looks_like_repo_id

    assert looks_like_repo_id(spec) is hub_like


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "   ",
        "sgn-base",  # no owner
        "acme/",
        "/sgn-base",
        "acme/sgn/base",  # too many parts
        "./models/sgn",
        "/abs/path/to/folder",
        "~/ckpt",
        "acme/sgn base",
        "acme/sgn--base",
        "acme/sgn..base",
        "acme/-sgn",
        "acme/sgn.",
        "acme/sgn.git",
        "acme/caf\u00e9",
        "a" * 97 + "/sgn",
        "acme/sgn@",
        "acme/sgn@v 1",
        "acme/sgn@../main",
        "acme/sgn@-x",
        "acme/sgn@main.lock",
        "acme/sgn@a:b",
        "acme/sgn@feature/",
        "acme@v1/sgn",
    ],
)
def test_parse_repo_id_rejects(spec):
    with pytest.raises(ModelError) as excinfo:
        parse_repo_id(spec)
    text = str(excinfo.value)
    assert "owner/name" in text or "--model" in text


def test_parse_repo_id_path_hint():
    with pytest.raises(ModelError) as excinfo:
        parse_repo_id("./checkpoints/sgn")
    assert "--model /path/to/folder" in str(excinfo.value)


# ------------------------------------------------------------------------------------------- the server itself


def test_hub_server_protocol(hub_server):
    """The fake Hub answers like the real one (headers hf_hub_download relies on, errors, Range)."""
    import urllib.error
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    commits = hub_server.add_repo(REPO, MAIN)

    def fetch(url, method="GET", headers=None):
        try:
            with opener.open(urllib.request.Request(url, method=method, headers=headers or {})) as resp:
                return resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.headers, err.read()

    status, headers, body = fetch(hub_server.url(REPO, "config.json"), "HEAD")
    assert status == 200 and body == b""
    assert headers["X-Repo-Commit"] == commits["main"]
    assert headers["ETag"] == f'"{git_blob_sha1(MAIN["config.json"])}"'
    assert int(headers["Content-Length"]) == len(MAIN["config.json"])

    status, headers, _ = fetch(hub_server.url(REPO, "model.safetensors"), "HEAD")
    assert status == 302
    assert headers["X-Linked-Etag"] == f'"{sha256(MAIN["model.safetensors"])}"'
    assert int(headers["X-Linked-Size"]) == len(MAIN["model.safetensors"])
    cdn_url = headers["Location"]
    assert cdn_url.startswith(hub_server.cdn_endpoint)

    status, headers, body = fetch(cdn_url, headers={"Range": "bytes=10-19"})
    assert status == 206 and body == MAIN["model.safetensors"][10:20]
    assert headers["Content-Range"] == f"bytes 10-19/{len(MAIN['model.safetensors'])}"
    status, _, body = fetch(hub_server.url(REPO, "config.json"), headers={"Range": "bytes=-5"})
    assert status == 206 and body == MAIN["config.json"][-5:]
    status, headers, _ = fetch(hub_server.url(REPO, "config.json"), headers={"Range": "bytes=9999-"})
    assert status == 416

    for url, code in [
        (hub_server.url("acme/nope", "config.json"), "RepoNotFound"),
        (hub_server.url(REPO, "config.json", revision="nope"), "RevisionNotFound"),
        (hub_server.url(REPO, "nope.json"), "EntryNotFound"),
    ]:
        status, headers, _ = fetch(url, "HEAD")
        assert (status, headers["X-Error-Code"]) == (404, code)
    assert headers["X-Repo-Commit"] == commits["main"]  # EntryNotFound carries the commit, like the Hub
