"""The real Hub download path (huggingface_hub.hf_hub_download) against a local Hub file server.

No network: the ``hub_server`` fixture (tests/conftest.py) serves repos from memory on 127.0.0.1 and points
HF_ENDPOINT / HF_HUB_CACHE at it and at a fresh cache folder.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from sgnsep.errors import ModelError
from sgnsep.hub import download_checkpoint, parse_repo_id

try:
    from hub_server import blackhole_endpoint, closed_port_endpoint, git_blob_sha1, sha256
except ImportError:  # tests/ imported as a package
    from tests.hub_server import blackhole_endpoint, closed_port_endpoint, git_blob_sha1, sha256

REPO = "acme/sgn-tiny"


def _checkpoint(tag: str, size: int = 300_000) -> dict[str, bytes]:
    config = json.dumps({"arch": "sgn", "tag": tag}).encode()
    weights = (tag.encode() * (size // len(tag) + 1))[:size]  # distinct bytes per tag
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
