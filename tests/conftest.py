import os
from pathlib import Path

import pytest


@pytest.fixture
def hub_server(monkeypatch, tmp_path):
    """A local Hugging Face Hub file server (tests/hub_server.py) that hf_hub_download talks to for this test.

    Yields a started ``HubServer``: ``.endpoint`` (http://127.0.0.1:PORT), ``.add_repo(repo_id, files, revisions=)``,
    ``.requests`` / ``.count(method, filename)``, ``.commit_for(repo_id, ref)``, ``.stop()``, and ``.cache_dir``
    (the empty Hugging Face cache folder of this test).

    huggingface_hub reads HF_ENDPOINT, HF_HUB_CACHE and HF_HUB_OFFLINE once, at import, into
    ``huggingface_hub.constants``; setting the environment alone is not enough for code that calls the library
    directly. So both are patched: the environment variables (for code that reads them at call time, like
    ``sgnsep.hub``, and for subprocesses) and the constants ``ENDPOINT``, ``HUGGINGFACE_CO_URL_TEMPLATE`` (the
    resolve-URL template is built from ENDPOINT at import), ``HF_HUB_CACHE`` and ``HF_HUB_OFFLINE`` (off).
    The library's shared HTTP client is closed before and after, so no pooled connection leaks between tests.
    """
    from huggingface_hub import constants
    from huggingface_hub.utils import close_session

    try:
        from hub_server import HubServer
    except ImportError:  # tests/ imported as a package
        from tests.hub_server import HubServer

    server = HubServer().start()
    endpoint = server.endpoint
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}")

    cache = tmp_path / "hf_cache"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))

    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_ETAG_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT",
                 "SGNSEP_HUB_TIMEOUT", "SGNSEP_HUB_MIN_RATE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    no_proxy = ",".join(filter(None, ["127.0.0.1", "localhost", os.environ.get("NO_PROXY")]))
    monkeypatch.setenv("NO_PROXY", no_proxy)  # a developer's HTTP(S)_PROXY must not intercept 127.0.0.1

    # huggingface_hub 2.x fetches an "agent harnesses" telemetry registry from {ENDPOINT}/api/agent-harnesses
    # (3 s timeout, once per process, cached under HF_HOME) the first time it builds request headers. Pre-load an
    # empty one so that this request neither shows up in server.requests nor adds its timeout to timing tests.
    try:
        from huggingface_hub.utils import _detect_agent

        monkeypatch.setattr(_detect_agent, "_registry", {"standardEnvVars": [], "harnesses": {}})
    except (ImportError, AttributeError):  # other huggingface_hub versions
        pass

    server.cache_dir = cache
    close_session()
    try:
        yield server
    finally:
        server.stop()
        close_session()


# --- A tiny trained model shared by the separation, CLI and evaluation tests ------------------------------


@pytest.fixture(scope="session")
def tone_model_dir(tmp_path_factory):
    """A checkpoint folder of a tiny SGN trained for a few seconds on synthetic tones (tests/tone_model.py)."""
    from tests.tone_model import train_tone_model

    return train_tone_model(tmp_path_factory.mktemp("models") / "tone-tiny")


@pytest.fixture(scope="session")
def presence_model_dir(tmp_path_factory):
    """The tiny tone model trained longer (200 steps, about 15 s), until its presence head is reliable.

    The 70 steps of ``tone_model_dir`` are enough for masks, not for eq. 7's presence head: detection, ``--sources
    auto`` and the embedding pictures test with this one. On pairs of tones it gives p > 0.95 for the two
    classes present and p < 0.05 for the third.
    """
    from tests.tone_model import train_tone_model

    return train_tone_model(tmp_path_factory.mktemp("models") / "tone-presence", steps=200)


@pytest.fixture(scope="session")
def timgm() -> Path:
    """TimGM6mb.sf2 as pretty_midi bundles it (6 MB): the soundfont the rendering tests use."""
    pretty_midi = pytest.importorskip("pretty_midi")
    pytest.importorskip("tinysoundfont")
    path = Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"
    if not path.is_file():
        pytest.skip("pretty_midi does not bundle TimGM6mb.sf2")
    return path
