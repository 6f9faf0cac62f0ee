"""A tiny local stand-in for the Hugging Face Hub's file protocol, for tests of the real download path.

It speaks what ``huggingface_hub.hf_hub_download`` (2.x, httpx2 based) uses:

* ``HEAD``/``GET /{owner}/{name}/resolve/{revision}/{filename}`` (revision URL-encoded, e.g. ``refs%2Fpr%2F1``):

  - regular ("git") files: ``200`` with ``X-Repo-Commit`` (40-hex), ``ETag: "<git blob sha1>"``,
    ``Content-Length``, ``Accept-Ranges: bytes``; ``GET`` sends the bytes (``206`` for a ``Range`` request);
  - LFS files (``*.safetensors``, ``*.bin``, ... or anything listed in ``lfs=``): like the real Hub, a ``302``
    redirect to a separate "CDN" server (another port, so a different origin: the client does not follow it on
    ``HEAD`` and reads the metadata from the redirect itself) carrying ``X-Repo-Commit``,
    ``X-Linked-Etag: "<sha256>"`` and ``X-Linked-Size``; the client then ``GET``s the CDN URL directly.
    With ``HubServer(cdn=False)`` LFS files are answered with ``200`` + those headers instead.

* errors the way the Hub sends them: ``404`` with ``X-Error-Code: RepoNotFound`` / ``RevisionNotFound`` /
  ``EntryNotFound`` (the last one with ``X-Repo-Commit``, which the client caches in ``.no_exist``) and an
  ``X-Error-Message``, so the client raises its real ``RepositoryNotFoundError`` / ``RevisionNotFoundError`` /
  ``RemoteEntryNotFoundError``.

Repos live in memory: ``{repo_id: {ref: {filename: bytes}}}`` where a ref is a branch or tag name (``main`` is the
default branch). Each ref gets a deterministic commit id (sha1 of repo id, ref and file hashes) and can also be
requested by that commit id. Every request is recorded in :attr:`HubServer.requests`.

The server answers with HTTP/1.0 (one request per connection), so after :meth:`HubServer.stop` no pooled
keep-alive connection can still reach it: the port is really closed.
"""

from __future__ import annotations

import hashlib
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".onnx", ".h5", ".msgpack", ".npz", ".wav", ".flac")
_COMMIT_RE = re.compile(r"[0-9a-f]{40}")
_RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)")


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a blob, which the Hub sends as the ETag of non-LFS files."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class RecordedRequest:
    """One request the server saw."""

    server: str  # "hub" or "cdn"
    method: str  # "HEAD" / "GET" / ...
    path: str  # raw request path
    status: int
    repo_id: str | None = None
    revision: str | None = None  # as requested (decoded), e.g. "main", "v1", a commit id
    filename: str | None = None  # for CDN requests: the repo filename of that blob, when known
    range: str | None = None  # the Range header, if any
    headers: dict[str, str] = field(default_factory=dict, compare=False, repr=False)


@dataclass
class _Revision:
    commit: str
    files: dict[str, bytes]


class _Repo:
    def __init__(self) -> None:
        self.refs: dict[str, _Revision] = {}  # branch/tag name -> revision
        self.commits: dict[str, _Revision] = {}  # commit id -> revision

    def resolve(self, revision: str) -> _Revision | None:
        if revision in self.refs:
            return self.refs[revision]
        if _COMMIT_RE.fullmatch(revision):
            return self.commits.get(revision)
        return None


class HubServer:
    """Local Hub file server. ``start()`` it (or use it as a context manager), then point HF_ENDPOINT at
    :attr:`endpoint`.

    Args:
        repos: initial ``{repo_id: {ref: {filename: bytes}}}``.
        cdn: serve LFS files through a 302 redirect to a second ("CDN") server, as the real Hub does.
        lfs: extra filenames to treat as LFS files (besides the :data:`LFS_SUFFIXES`).
    """

    def __init__(self, repos: dict[str, dict[str, dict[str, bytes]]] | None = None, *, cdn: bool = True,
                 lfs: set[str] | frozenset[str] = frozenset()):
        self._lock = threading.Lock()
        self._repos: dict[str, _Repo] = {}
        self._blobs: dict[str, bytes] = {}  # sha256 -> bytes (served by the CDN)
        self._blob_names: dict[str, str] = {}  # sha256 -> a filename, for request records
        self._cdn_enabled = cdn
        self._lfs_names = set(lfs)
        self._requests: list[RecordedRequest] = []
        self._hub: ThreadingHTTPServer | None = None
        self._cdn: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        #: When set to an HTTP status (e.g. 503), every Hub request is answered with it (simulates an outage).
        self.outage: int | None = None
        self.endpoint = ""  # set by start()
        self.cdn_endpoint = ""
        for repo_id, revisions in (repos or {}).items():
            self.add_repo(repo_id, revisions=revisions)

    # ---------------------------------------------------------------- repos

    def add_repo(self, repo_id: str, files: dict[str, bytes] | None = None, *,
                 revisions: dict[str, dict[str, bytes]] | None = None) -> dict[str, str]:
        """Add (or replace) a repo. ``files`` are the ``main`` branch; ``revisions`` maps more refs (branches or
        tags) to their files. Returns ``{ref: commit_id}``."""
        all_revisions: dict[str, dict[str, bytes]] = {}
        if files is not None:
            all_revisions["main"] = files
        all_revisions.update(revisions or {})
        if not all_revisions:
            raise ValueError("add_repo needs files for at least one revision")
        repo = _Repo()
        for ref, ref_files in all_revisions.items():
            ref_files = {name: bytes(data) for name, data in ref_files.items()}
            commit = self._commit_id(repo_id, ref, ref_files)
            revision = _Revision(commit=commit, files=ref_files)
            repo.refs[ref] = revision
            repo.commits[commit] = revision
            for name, data in ref_files.items():
                if self._is_lfs(name):
                    digest = sha256(data)
                    with self._lock:
                        self._blobs[digest] = data
                        self._blob_names.setdefault(digest, name)
        with self._lock:
            self._repos[repo_id] = repo
        return {ref: rev.commit for ref, rev in repo.refs.items()}

    def add_repo_from_folder(self, repo_id: str, folder: str | Path, revision: str = "main") -> str:
        """Serve every file under ``folder`` (relative POSIX paths) as ``revision`` of ``repo_id`` (added to the
        repo's other revisions). Returns the commit id."""
        folder = Path(folder)
        files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
        existing = {}
        with self._lock:
            repo = self._repos.get(repo_id)
            if repo is not None:
                existing = {ref: rev.files for ref, rev in repo.refs.items()}
        existing[revision] = files
        return self.add_repo(repo_id, revisions=existing)[revision]

    def commit_for(self, repo_id: str, ref: str = "main") -> str:
        with self._lock:
            return self._repos[repo_id].refs[ref].commit

    def remove_repo(self, repo_id: str) -> None:
        with self._lock:
            self._repos.pop(repo_id, None)

    @staticmethod
    def _commit_id(repo_id: str, ref: str, files: dict[str, bytes]) -> str:
        h = hashlib.sha1(f"{repo_id}\n{ref}\n".encode())
        for name in sorted(files):
            h.update(f"{name}\0{sha256(files[name])}\n".encode())
        return h.hexdigest()

    def _is_lfs(self, filename: str) -> bool:
        return filename in self._lfs_names or filename.lower().endswith(LFS_SUFFIXES)

    # ---------------------------------------------------------------- requests

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot (copy) of every request seen so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def count(self, method: str | None = None, filename: str | None = None, *, server: str | None = None) -> int:
        """Number of requests matching ``method`` / ``filename`` / ``server`` ("hub" or "cdn"); None matches all.
        File GETs through the CDN carry the repo filename too, so ``count("GET", "model.safetensors")`` counts the
        actual transfers of that file whichever server sent them."""
        return sum(
            1
            for r in self.requests
            if (method is None or r.method == method)
            and (filename is None or r.filename == filename)
            and (server is None or r.server == server)
        )

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    # ---------------------------------------------------------------- lifecycle

    def url(self, repo_id: str, filename: str, revision: str = "main") -> str:
        return f"{self.endpoint}/{repo_id}/resolve/{quote(revision, safe='')}/{quote(filename)}"

    def start(self) -> HubServer:
        if self._hub is not None:
            return self
        self._hub = self._serve(self._make_handler("hub"))
        self.endpoint = f"http://127.0.0.1:{self._hub.server_address[1]}"
        if self._cdn_enabled:
            self._cdn = self._serve(self._make_handler("cdn"))
            self.cdn_endpoint = f"http://127.0.0.1:{self._cdn.server_address[1]}"
        return self

    def _serve(self, handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        httpd.daemon_threads = True
        thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
                                  name=f"hub-server-{httpd.server_address[1]}")
        thread.start()
        self._threads.append(thread)
        return httpd

    def stop(self) -> None:
        """Stop both servers and close their ports (later connections are refused). Idempotent."""
        for httpd in (self._hub, self._cdn):
            if httpd is not None:
                httpd.shutdown()
                httpd.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()
        self._hub = self._cdn = None

    @property
    def running(self) -> bool:
        return self._hub is not None

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # ---------------------------------------------------------------- HTTP

    def _make_handler(self, server_name: str) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # one request per connection: nothing survives stop()
            server_version = "FakeHub/1.0"

            def log_message(self, format, *args):  # noqa: A002 - keep pytest output quiet
                pass

            def do_HEAD(self):
                self._handle(send_body=False)

            def do_GET(self):
                self._handle(send_body=True)

            def _handle(self, send_body: bool) -> None:
                if server_name == "hub":
                    hub._handle_hub(self, send_body)
                else:
                    hub._handle_cdn(self, send_body)

        return Handler

    def _reply(self, h: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes,
               send_body: bool, record: RecordedRequest) -> None:
        self._record(replace(record, status=status))
        h.send_response(status)
        for key, value in headers.items():
            h.send_header(key, value)
        if "Content-Length" not in headers:
            h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if send_body and body:
            try:
                h.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

    def _error(self, h, status: int, code: str | None, message: str, send_body: bool, record: RecordedRequest,
               extra: dict[str, str] | None = None) -> None:
        headers = {"Content-Type": "application/json"}
        if code:
            headers["X-Error-Code"] = code
        headers["X-Error-Message"] = message
        headers.update(extra or {})
        body = ('{"error": "%s"}' % message.replace('"', "'")).encode()
        self._reply(h, status, headers, body, send_body, record)

    def _send_bytes(self, h, data: bytes, headers: dict[str, str], send_body: bool, record: RecordedRequest) -> None:
        """200 with the whole file, or 206 / 416 for a Range request."""
        headers = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes", **headers}
        range_header = h.headers.get("Range")
        if range_header:
            match = _RANGE_RE.fullmatch(range_header.strip())
            total = len(data)
            start = end = None
            if match and (match.group(1) or match.group(2)):
                if match.group(1):
                    start = int(match.group(1))
                    end = int(match.group(2)) if match.group(2) else total - 1
                else:  # suffix range: the last N bytes
                    start = max(total - int(match.group(2)), 0)
                    end = total - 1
                end = min(end, total - 1)
            if start is None or start > end or start >= total:
                self._error(h, 416, None, "Requested range not satisfiable", send_body, record,
                            extra={"Content-Range": f"bytes */{total}"})
                return
            part = data[start : end + 1]
            headers["Content-Range"] = f"bytes {start}-{end}/{total}"
            headers["Content-Length"] = str(len(part))
            self._reply(h, 206, headers, part, send_body, record)
            return
        headers["Content-Length"] = str(len(data))
        self._reply(h, 200, headers, data, send_body, record)

    def _handle_hub(self, h: BaseHTTPRequestHandler, send_body: bool) -> None:
        raw_path = urlsplit(h.path).path
        base = RecordedRequest(server="hub", method=h.command, path=h.path, status=0, range=h.headers.get("Range"),
                               headers=dict(h.headers.items()))
        if self.outage is not None:
            self._error(h, self.outage, None, "Service unavailable (simulated outage)", send_body, base)
            return
        match = re.fullmatch(r"/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)", raw_path)
        if match is None:
            self._error(h, 404, None, "Not found", send_body, base)
            return
        repo_id = unquote(match["repo"])
        revision = unquote(match["rev"])
        filename = unquote(match["file"])
        record = replace(base, repo_id=repo_id, revision=revision, filename=filename)

        with self._lock:
            repo = self._repos.get(repo_id)
            rev = repo.resolve(revision) if repo is not None else None
        if repo is None:
            self._error(h, 404, "RepoNotFound", "Repository not found", send_body, record)
            return
        if rev is None:
            self._error(h, 404, "RevisionNotFound", f"Invalid rev id: {revision}", send_body, record)
            return
        data = rev.files.get(filename)
        if data is None:
            self._error(h, 404, "EntryNotFound", "Entry not found", send_body, record,
                        extra={"X-Repo-Commit": rev.commit})
            return

        headers = {"X-Repo-Commit": rev.commit}
        if self._is_lfs(filename):
            digest = sha256(data)
            headers["X-Linked-Etag"] = f'"{digest}"'
            headers["X-Linked-Size"] = str(len(data))
            if self._cdn is not None:
                # The real Hub: 302 to a signed CDN url; ETag is the LFS pointer file's git id.
                pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{digest}\nsize {len(data)}\n"
                headers["ETag"] = f'"{git_blob_sha1(pointer.encode())}"'
                headers["Location"] = f"{self.cdn_endpoint}/lfs/{digest}?filename={quote(filename)}"
                body = f"Found. Redirecting to {headers['Location']}".encode()
                self._reply(h, 302, headers, body, send_body, record)
                return
            headers["ETag"] = f'"{digest}"'
        else:
            headers["ETag"] = f'"{git_blob_sha1(data)}"'
        self._send_bytes(h, data, headers, send_body, record)

    def _handle_cdn(self, h: BaseHTTPRequestHandler, send_body: bool) -> None:
        raw_path = urlsplit(h.path).path
        digest = raw_path.rsplit("/", 1)[-1]
        with self._lock:
            data = self._blobs.get(digest)
            name = self._blob_names.get(digest)
        record = RecordedRequest(server="cdn", method=h.command, path=h.path, status=0, filename=name,
                                 range=h.headers.get("Range"), headers=dict(h.headers.items()))
        if not raw_path.startswith("/lfs/") or data is None:
            self._error(h, 404, None, "Not found", send_body, record)
            return
        self._send_bytes(h, data, {"ETag": f'"{digest}"'}, send_body, record)


@contextmanager
def blackhole_endpoint():
    """Yield an http://127.0.0.1:PORT endpoint where connecting hangs until the client's connect timeout, like a
    firewall that drops packets: a listening socket whose accept queue is full (never accepted), so the kernel
    drops further SYNs. Yields None where the trick does not work on this OS (connections get through)."""
    import socket

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    fillers: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        for _ in range(4):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            try:
                filler.connect(("127.0.0.1", port))
            except (BlockingIOError, OSError):
                pass
            fillers.append(filler)
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        probe.settimeout(0.5)
        try:
            probe.connect(("127.0.0.1", port))
            works = False  # a connection got through: no black hole here
        except OSError:
            works = True
        finally:
            probe.close()
        yield f"http://127.0.0.1:{port}" if works else None
    finally:
        for sock in fillers:
            sock.close()
        listener.close()


def closed_port_endpoint() -> str:
    """An http://127.0.0.1:PORT endpoint where nothing listens (connections are refused at once)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
