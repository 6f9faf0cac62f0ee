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

Uploads: it also speaks what ``HfApi.create_repo`` / ``create_branch`` / ``create_commit`` (huggingface_hub 2.4)
send on the legacy LFS path, i.e. with ``HF_HUB_DISABLE_XET=1`` (with ``hf_xet`` installed the library uploads LFS
content through the Xet CAS protocol instead, which this server does not implement; it answers the Xet token
request with a ``501`` that says so):

* ``POST /api/repos/create`` (JSON ``{name, organization, visibility?, type?}``): a new repo whose ``main`` holds
  one "initial commit" with ``.gitattributes``, like the Hub; ``409`` if it exists (``exist_ok=True`` accepts that);
* ``POST /api/models/{repo}/branch/{branch}`` (JSON ``{startingPoint?}``): a branch at ``main`` or the starting
  point; ``409`` if it exists;
* ``POST /api/validate-yaml`` (JSON ``{content, repoType}``): checks the README's YAML front matter;
* ``POST /api/models/{repo}/preupload/{revision}`` (JSON ``{files: [{path, sample, size}]}``): answers each file's
  ``uploadMode`` (``lfs`` for the LFS suffixes, files over 10 MiB and binary samples, else ``regular``),
  ``shouldIgnore: false`` and the ``oid`` of the file already at that path (git sha1, or sha256 for LFS), which the
  client uses to skip unchanged files;
* ``POST /{repo}.git/info/lfs/objects/batch`` (git-lfs batch API, ``operation: upload``): for each object not
  stored yet an ``upload`` action (a pre-signed ``PUT {endpoint}/_lfs/upload/{oid}?size=..&signature=..``, no
  Authorization needed, like S3) and a ``verify`` action (``POST /{repo}.git/info/lfs/objects/verify``); objects
  already stored get no actions;
* ``PUT /_lfs/upload/{oid}``: the bytes, checked against the oid (sha256) and size;
* ``POST /api/models/{repo}/commit/{revision}`` (NDJSON: a ``header`` line ``{summary, description,
  parentCommit?}``, then ``file`` lines with base64 ``content``, ``lfsFile`` lines ``{path, algo, oid, size}``
  naming uploaded objects, ``deletedFile`` / ``deletedFolder`` lines): a new commit on that branch whose files the
  download endpoints then serve; answers ``{commitOid, commitUrl, success, pullRequestUrl}``;
* ``GET /api/models/{repo}[/revision/{revision}]`` (repo info: ``id``, ``sha``, ``private``, ``siblings``),
  ``GET /api/whoami-v2`` and ``GET /api/agent-harnesses`` (an empty telemetry registry).

Faults, for tests of what a client does with a server that misbehaves (each applies to the next ``times``
requests of one file, or to all of them; :meth:`HubServer.clear_faults` ends them):

* :meth:`HubServer.tamper` sends other bytes in ``GET`` answers (e.g. :func:`flip_byte`: the announced length but
  not the announced sha256, or a shorter file) while ``HEAD`` still announces the real file's size and hashes;
* :meth:`HubServer.trickle` sends a ``GET`` body (or the header block of a ``HEAD`` / ``GET`` answer) a few bytes at
  a time, with a pause after each.

A file that is not what its name says (a ``model.safetensors`` that is not safetensors) needs no fault: serve those
bytes, and the server announces their real hashes, like a Hub hosting a broken upload.

Authorization: with ``token=`` set (constructor or attribute), every write endpoint wants
``Authorization: Bearer <token>`` and answers ``401`` otherwise (``X-Error-Message: Invalid username or
password.`` without a header, ``Invalid credentials in Authorization header`` with a wrong one), and private repos
(``visibility: private``) are answered ``401`` + ``X-Error-Code: RepoNotFound`` to readers without it. Requests that
match no endpoint are answered ``404`` and listed in :attr:`HubServer.unknown_requests`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from contextlib import contextmanager
from typing import Callable
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".onnx", ".h5", ".msgpack", ".npz", ".wav", ".flac")
_COMMIT_RE = re.compile(r"[0-9a-f]{40}")
_RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)")
_OID_RE = re.compile(r"[0-9a-f]{64}")
# One part of a repo name as the Hub accepts it.
_NAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?")
#: Files of at least this size are LFS files whatever their name (the Hub's threshold is 10 MB).
LFS_SIZE_THRESHOLD = 10 * 1024 * 1024
#: What the Hub puts in a new repo's initial commit.
GITATTRIBUTES = b"".join(
    b"*%s filter=lfs diff=lfs merge=lfs -text\n" % suffix.encode() for suffix in LFS_SUFFIXES
)
#: Routes that change something (and need the token when one is configured).
WRITE_ROUTES = frozenset({"create-repo", "create-branch", "preupload", "lfs-batch", "lfs-upload", "lfs-verify",
                          "commit"})


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a blob, which the Hub sends as the ETag of non-LFS files."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def flip_byte(data: bytes, at: int | None = None) -> bytes:
    """``data`` with one byte changed (the middle one by default): same length, other hashes."""
    at = len(data) // 2 if at is None else at
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]


@dataclass
class _Fault:
    filename: str
    methods: tuple[str, ...]
    times: int | None  # requests left to apply to (None: all)
    change: Callable[[bytes], bytes] | None = None  # tamper: what GET bodies become
    chunk: int = 0  # trickle: bytes per write ...
    interval: float = 0.0  # ... and the pause after each
    headers: bool = False  # trickle the header block instead of the body


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
    #: The endpoint it matched: "resolve", "cdn", "repo-info", "whoami", "agent-harnesses", "validate-yaml",
    #: "create-repo", "create-branch", "preupload", "lfs-batch", "lfs-upload", "lfs-verify", "commit", "xet-token";
    #: None for a request that matched no endpoint.
    route: str | None = field(default=None, compare=False)
    body: bytes = field(default=b"", compare=False, repr=False)  # the request body (POST / PUT)

    @property
    def is_write(self) -> bool:
        return self.route in WRITE_ROUTES

    def header(self, name: str) -> str | None:
        """A request header, whatever the case the client sent it in."""
        name = name.lower()
        return next((value for key, value in self.headers.items() if key.lower() == name), None)


@dataclass
class _Revision:
    commit: str
    files: dict[str, bytes]
    parent: str | None = None  # the commit this one was made on (None: a root, or added with add_repo)
    message: str = ""
    description: str = ""


class _Repo:
    def __init__(self, private: bool = False) -> None:
        self.refs: dict[str, _Revision] = {}  # branch/tag name -> revision
        self.commits: dict[str, _Revision] = {}  # commit id -> revision
        self.private = private

    def resolve(self, revision: str) -> _Revision | None:
        if revision in self.refs:
            return self.refs[revision]
        if _COMMIT_RE.fullmatch(revision):
            return self.commits.get(revision)
        return None


class _BadRequest(Exception):
    """Raised by a route handler: answered as ``status`` with ``X-Error-Code`` / ``X-Error-Message``."""

    def __init__(self, status: int, code: str | None, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _read_body(h: BaseHTTPRequestHandler) -> bytes:
    """The request body: ``Content-Length`` or ``Transfer-Encoding: chunked`` (a streamed upload)."""
    if "chunked" in h.headers.get("Transfer-Encoding", "").lower():
        parts = []
        while True:
            size_line = h.rfile.readline()
            if not size_line:
                break
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while h.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                    pass
                break
            parts.append(h.rfile.read(size))
            h.rfile.readline()  # the CRLF after each chunk
        return b"".join(parts)
    length = int(h.headers.get("Content-Length") or 0)
    return h.rfile.read(length) if length > 0 else b""


class HubServer:
    """Local Hub file server. ``start()`` it (or use it as a context manager), then point HF_ENDPOINT at
    :attr:`endpoint`.

    Args:
        repos: initial ``{repo_id: {ref: {filename: bytes}}}``.
        cdn: serve LFS files through a 302 redirect to a second ("CDN") server, as the real Hub does.
        lfs: extra filenames to treat as LFS files (besides the :data:`LFS_SUFFIXES`).
        token: require ``Authorization: Bearer <token>`` on write endpoints and for private repos.
        user: the token's user name (``/api/whoami-v2``; the namespace when create-repo names no organization).
    """

    def __init__(self, repos: dict[str, dict[str, dict[str, bytes]]] | None = None, *, cdn: bool = True,
                 lfs: set[str] | frozenset[str] = frozenset(), token: str | None = None, user: str = "tester"):
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
        self._faults: list[_Fault] = []
        self._stopping = threading.Event()  # ends trickles when the server stops
        #: When set, write endpoints (and private repos) need ``Authorization: Bearer <token>``; 401 otherwise.
        self.token: str | None = token
        #: The user the token belongs to (whoami, and the namespace of a repo created without organization).
        self.user = user
        self._upload_key = secrets.token_bytes(16)  # signs the pre-signed LFS upload URLs
        self._commit_counter = 0
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

    def has_repo(self, repo_id: str) -> bool:
        with self._lock:
            return repo_id in self._repos

    def is_private(self, repo_id: str) -> bool:
        with self._lock:
            return self._repos[repo_id].private

    def refs(self, repo_id: str) -> dict[str, str]:
        """``{branch_or_tag: commit_id}`` of a repo."""
        with self._lock:
            return {ref: rev.commit for ref, rev in self._repos[repo_id].refs.items()}

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """The files of ``repo_id`` at a branch, tag or commit id (a copy)."""
        with self._lock:
            rev = self._repos[repo_id].resolve(revision)
            if rev is None:
                raise KeyError(f"{repo_id} has no revision {revision!r}")
            return dict(rev.files)

    def commit_log(self, repo_id: str, revision: str = "main") -> list[dict[str, str | None]]:
        """The commits reachable from ``revision``, newest first: ``{commit, parent, message, description}``."""
        log = []
        with self._lock:
            repo = self._repos[repo_id]
            rev = repo.resolve(revision)
            while rev is not None:
                log.append({"commit": rev.commit, "parent": rev.parent, "message": rev.message,
                            "description": rev.description})
                rev = repo.commits.get(rev.parent) if rev.parent else None
        return log

    @staticmethod
    def _commit_id(repo_id: str, ref: str, files: dict[str, bytes]) -> str:
        h = hashlib.sha1(f"{repo_id}\n{ref}\n".encode())
        for name in sorted(files):
            h.update(f"{name}\0{sha256(files[name])}\n".encode())
        return h.hexdigest()

    def _is_lfs(self, filename: str) -> bool:
        return filename in self._lfs_names or filename.lower().endswith(LFS_SUFFIXES)

    # ---------------------------------------------------------------- faults

    def tamper(self, filename: str, change: Callable[[bytes], bytes] = flip_byte, *, times: int | None = None) -> None:
        """Answer the next ``times`` GETs of ``filename`` (all if None; Hub or CDN) with ``change(data)`` instead of
        the file, while HEAD keeps announcing the real file's size, ETag and sha256."""
        with self._lock:
            self._faults.append(_Fault(filename, ("GET",), times, change=change))

    def trickle(self, filename: str, *, chunk: int = 1, interval: float = 0.2, times: int | None = None,
                headers: bool = False, method: str = "GET") -> None:
        """Send the answers to the next ``times`` ``method`` requests of ``filename`` ``chunk`` bytes at a time with
        ``interval`` seconds after each: the body, or with ``headers=True`` the status line and headers."""
        with self._lock:
            self._faults.append(_Fault(filename, (method,), times, chunk=chunk, interval=interval, headers=headers))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _faults_for(self, h: BaseHTTPRequestHandler, filename: str | None) -> list[_Fault]:
        """The faults that apply to the request ``h`` answers, taken (and counted as used) once per request."""
        taken = getattr(h, "_faults_taken", None)
        if taken is not None:
            return taken
        taken = []
        with self._lock:
            for fault in list(self._faults):
                if filename is None or fault.filename != filename or h.command not in fault.methods:
                    continue
                taken.append(fault)
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
        h._faults_taken = taken  # type: ignore[attr-defined]
        return taken

    def _write_slowly(self, h: BaseHTTPRequestHandler, data: bytes, chunk: int, interval: float) -> None:
        for start in range(0, len(data), max(1, chunk)):
            if self._stopping.is_set():
                return
            h.wfile.write(data[start : start + max(1, chunk)])
            h.wfile.flush()
            time.sleep(interval)

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

    @property
    def write_requests(self) -> list[RecordedRequest]:
        """The requests that went to a write endpoint (create repo/branch, preupload, LFS, commit), answered or not."""
        return [r for r in self.requests if r.is_write]

    @property
    def unknown_requests(self) -> list[RecordedRequest]:
        """Requests to the Hub server that matched no endpoint it implements (answered 404)."""
        return [r for r in self.requests if r.server == "hub" and r.route is None]

    def routes(self) -> list[str | None]:
        """The endpoint of every Hub request, oldest first (see :attr:`RecordedRequest.route`)."""
        return [r.route for r in self.requests if r.server == "hub"]

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
        self._stopping.clear()
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
        self._stopping.set()
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

            def do_POST(self):
                self._handle(send_body=True)

            def do_PUT(self):
                self._handle(send_body=True)

            def do_DELETE(self):
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
        faults = self._faults_for(h, record.filename)
        slow_headers = next((f for f in faults if f.chunk and f.headers), None)
        slow_body = next((f for f in faults if f.chunk and not f.headers), None)
        h.send_response(status)
        for key, value in headers.items():
            h.send_header(key, value)
        if "Content-Length" not in headers:
            h.send_header("Content-Length", str(len(body)))
        try:
            if slow_headers is not None:
                # http.server collects the header block in _headers_buffer until end_headers() sends it at once.
                h._headers_buffer.append(b"\r\n")  # type: ignore[attr-defined]
                block = b"".join(h._headers_buffer)  # type: ignore[attr-defined]
                h._headers_buffer = []  # type: ignore[attr-defined]
                self._write_slowly(h, block, slow_headers.chunk, slow_headers.interval)
            else:
                h.end_headers()
            if send_body and body:
                if slow_body is not None:
                    self._write_slowly(h, body, slow_body.chunk, slow_body.interval)
                else:
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
        """200 with the whole file, or 206 / 416 for a Range request (of what a tamper fault makes of it)."""
        headers = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes", **headers}
        if send_body:
            for fault in self._faults_for(h, record.filename):
                if fault.change is not None:
                    data = fault.change(data)
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

    # (methods, path pattern matched against the raw, still URL-encoded path, route name, handler)
    _ROUTES: tuple[tuple[tuple[str, ...], str, str, str], ...] = (
        (("GET", "HEAD"), r"/api/whoami-v2", "whoami", "_route_whoami"),
        (("GET", "HEAD"), r"/api/agent-harnesses", "agent-harnesses", "_route_agent_harnesses"),
        (("POST",), r"/api/repos/create", "create-repo", "_route_create_repo"),
        (("POST",), r"/api/validate-yaml", "validate-yaml", "_route_validate_yaml"),
        (("GET", "HEAD"), r"/api/models/(?P<repo>[^/]+/[^/]+)(?:/revision/(?P<rev>[^/]+))?", "repo-info",
         "_route_repo_info"),
        (("POST",), r"/api/models/(?P<repo>[^/]+/[^/]+)/preupload/(?P<rev>[^/]+)", "preupload", "_route_preupload"),
        (("POST",), r"/api/models/(?P<repo>[^/]+/[^/]+)/commit/(?P<rev>[^/]+)", "commit", "_route_commit"),
        (("POST",), r"/api/models/(?P<repo>[^/]+/[^/]+)/branch/(?P<rev>[^/]+)", "create-branch",
         "_route_create_branch"),
        (("GET", "HEAD", "POST"), r"/api/models/(?P<repo>[^/]+/[^/]+)/xet-(?:write|read)-token/(?P<rev>[^/]+)",
         "xet-token", "_route_xet_token"),
        (("POST",), r"/(?P<repo>[^/]+/[^/]+)\.git/info/lfs/objects/batch", "lfs-batch", "_route_lfs_batch"),
        (("POST",), r"/(?P<repo>[^/]+/[^/]+)\.git/info/lfs/objects/verify", "lfs-verify", "_route_lfs_verify"),
        (("PUT",), r"/_lfs/upload/(?P<oid>[^/]+)", "lfs-upload", "_route_lfs_upload"),
        (("GET", "HEAD"), r"/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)", "resolve", "_route_resolve"),
    )

    def _handle_hub(self, h: BaseHTTPRequestHandler, send_body: bool) -> None:
        split = urlsplit(h.path)
        raw_path = split.path
        body = _read_body(h) if h.command in ("POST", "PUT", "PATCH", "DELETE") else b""
        base = RecordedRequest(server="hub", method=h.command, path=h.path, status=0, range=h.headers.get("Range"),
                               headers=dict(h.headers.items()), body=body)
        send_body = send_body and h.command != "HEAD"
        route = None
        for methods, pattern, name, handler_name in self._ROUTES:
            match = re.fullmatch(pattern, raw_path)
            if match is not None and h.command in methods:
                route = (name, handler_name, match)
                break
        if route is not None:
            base = replace(base, route=route[0])
            groups = route[2].groupdict()
            if groups.get("repo"):
                base = replace(base, repo_id=unquote(groups["repo"]))
            if groups.get("rev"):
                base = replace(base, revision=unquote(groups["rev"]))
        if self.outage is not None:
            self._error(h, self.outage, None, "Service unavailable (simulated outage)", send_body, base)
            return
        if route is None:
            self._error(h, 404, None, "Not found", send_body, base)
            return
        name, handler_name, match = route
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        try:
            getattr(self, handler_name)(h, match, query, base, send_body)
        except _BadRequest as exc:
            self._error(h, exc.status, exc.code, exc.message, send_body, base)

    # ---------------------------------------------------------------- auth

    def _auth_problem(self, h: BaseHTTPRequestHandler) -> str | None:
        """None if the request may write (no token configured, or the right one sent), else the Hub's message."""
        if self.token is None:
            return None
        header = h.headers.get("Authorization")
        if not header:
            return "Invalid username or password."
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), self.token.encode()):
            return "Invalid credentials in Authorization header"
        return None

    def _require_write(self, h: BaseHTTPRequestHandler) -> None:
        problem = self._auth_problem(h)
        if problem is not None:
            raise _BadRequest(401, None, problem)

    def _repo_for(self, h: BaseHTTPRequestHandler, repo_id: str) -> _Repo:
        """The repo, or the Hub's 404 (unknown) / 401 (private and no valid token: indistinguishable from unknown)."""
        with self._lock:
            repo = self._repos.get(repo_id)
        if repo is None:
            raise _BadRequest(404, "RepoNotFound", "Repository not found")
        if repo.private and self._auth_problem(h) is not None:
            raise _BadRequest(401, "RepoNotFound", "Invalid username or password.")
        return repo

    @staticmethod
    def _json_body(record: RecordedRequest) -> dict:
        try:
            data = json.loads(record.body or b"{}")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _BadRequest(400, None, f"Invalid JSON body: {exc}") from None
        if not isinstance(data, dict):
            raise _BadRequest(400, None, "The JSON body must be an object")
        return data

    def _json(self, h, status: int, payload, send_body: bool, record: RecordedRequest,
              content_type: str = "application/json") -> None:
        self._reply(h, status, {"Content-Type": content_type}, json.dumps(payload).encode(), send_body, record)

    # ---------------------------------------------------------------- read endpoints

    def _route_whoami(self, h, match, query, record, send_body) -> None:
        if self.token is not None:
            problem = self._auth_problem(h)
        else:  # no token configured: any token will do, but there must be one
            problem = None if h.headers.get("Authorization") else "Invalid username or password."
        if problem is not None:
            raise _BadRequest(401, None, problem)
        self._json(h, 200, {"type": "user", "id": "0" * 24, "name": self.user, "fullname": self.user,
                            "orgs": [], "auth": {"type": "access_token",
                                                 "accessToken": {"displayName": "test", "role": "write"}}},
                   send_body, record)

    def _route_agent_harnesses(self, h, match, query, record, send_body) -> None:
        self._json(h, 200, {"standardEnvVars": [], "harnesses": {}}, send_body, record)

    def _route_repo_info(self, h, match, query, record, send_body) -> None:
        repo_id = record.repo_id
        repo = self._repo_for(h, repo_id)
        revision = record.revision or "main"
        with self._lock:
            rev = repo.resolve(revision)
        if rev is None:
            raise _BadRequest(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        author = repo_id.split("/")[0]
        self._json(h, 200, {
            "_id": rev.commit[:24], "id": repo_id, "modelId": repo_id, "author": author, "sha": rev.commit,
            "private": repo.private, "disabled": False, "gated": False, "downloads": 0, "likes": 0, "tags": [],
            "siblings": [{"rfilename": name} for name in sorted(rev.files)],
        }, send_body, record)

    def _route_validate_yaml(self, h, match, query, record, send_body) -> None:
        import yaml

        data = self._json_body(record)
        content = data.get("content")
        if not isinstance(content, str):
            raise _BadRequest(400, None, "content must be a string")
        errors: list[dict[str, str]] = []
        warnings: list[dict[str, str]] = []
        meta_match = re.match(r"^---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|$)", content, re.DOTALL)
        if meta_match is None:
            warnings.append({"message": "Empty or missing yaml metadata in repo card"})
        else:
            try:
                meta = yaml.safe_load(meta_match.group(1))
            except yaml.YAMLError as exc:
                meta = None
                errors.append({"message": f"Invalid YAML in the metadata: {exc}"})
            if not errors and not isinstance(meta, dict):
                errors.append({"message": "The metadata must be a YAML mapping"})
            elif not errors:
                for key in ("library_name", "license", "pipeline_tag"):
                    if key in meta and not isinstance(meta[key], str):
                        errors.append({"message": f'"{key}" must be a string'})
                if "tags" in meta and not (isinstance(meta["tags"], list)
                                           and all(isinstance(t, str) for t in meta["tags"])):
                    errors.append({"message": '"tags" must be a list of strings'})
        self._json(h, 400 if errors else 200, {"errors": errors, "warnings": warnings}, send_body, record)

    def _route_xet_token(self, h, match, query, record, send_body) -> None:
        raise _BadRequest(501, None, "This test Hub speaks the LFS upload protocol only, not Xet: set "
                                     "HF_HUB_DISABLE_XET=1 (huggingface_hub then uploads through the LFS batch API)")

    def _route_resolve(self, h, match, query, base, send_body) -> None:
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
        if repo.private and self._auth_problem(h) is not None:
            self._error(h, 401, "RepoNotFound", "Invalid username or password.", send_body, record)
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

    # ---------------------------------------------------------------- write endpoints

    def _route_create_repo(self, h, match, query, record, send_body) -> None:
        self._require_write(h)
        data = self._json_body(record)
        name, organization = data.get("name"), data.get("organization") or self.user
        repo_type = data.get("type") or "model"
        if repo_type != "model":
            raise _BadRequest(400, None, f"This test Hub only hosts model repos, not {repo_type!r}")
        for part in (organization, name):
            if not isinstance(part, str) or not _NAME_RE.fullmatch(part) or "--" in part or ".." in part:
                raise _BadRequest(400, None, f"Invalid repo name: {organization}/{name}")
        repo_id = f"{organization}/{name}"
        record = replace(record, repo_id=repo_id)
        visibility = data.get("visibility", "public")
        if visibility not in ("public", "private"):
            raise _BadRequest(400, None, f"Invalid visibility {visibility!r}")
        url = f"{self.endpoint}/{repo_id}"
        with self._lock:
            exists = repo_id in self._repos
        if exists:
            self._reply(h, 409, {"Content-Type": "application/json",
                                 "X-Error-Message": "You already created this model repo"},
                        json.dumps({"error": "You already created this model repo", "url": url}).encode(),
                        send_body, record)
            return
        with self._lock:
            if repo_id in self._repos:  # created in between
                raise _BadRequest(409, None, "Cannot create repo: another conflicting operation is in progress")
            repo = _Repo(private=visibility == "private")
            files = {".gitattributes": GITATTRIBUTES}
            commit = self._new_commit_id(repo_id, None, "initial commit", files)
            revision = _Revision(commit=commit, files=files, message="initial commit")
            repo.refs["main"] = revision
            repo.commits[commit] = revision
            self._repos[repo_id] = repo
        self._json(h, 200, {"url": url, "name": repo_id, "id": commit[:24]}, send_body, record)

    def _route_create_branch(self, h, match, query, record, send_body) -> None:
        self._require_write(h)
        repo = self._repo_for(h, record.repo_id)
        branch = record.revision
        if _COMMIT_RE.fullmatch(branch) or branch.startswith("refs/") or not branch.strip():
            raise _BadRequest(400, None, f"Invalid reference for a branch: {branch}")
        start = self._json_body(record).get("startingPoint") or "main"
        with self._lock:
            if branch in repo.refs:
                raise _BadRequest(409, None, "Reference already exists")
            rev = repo.resolve(start)
            if rev is None:
                raise _BadRequest(404, "RevisionNotFound", f"Invalid rev id: {start}")
            repo.refs[branch] = rev
        self._json(h, 200, {}, send_body, record)

    def _upload_mode(self, path: str, size: int, sample: bytes) -> str:
        return "lfs" if self._is_lfs(path) or size >= LFS_SIZE_THRESHOLD or b"\0" in sample else "regular"

    def _route_preupload(self, h, match, query, record, send_body) -> None:
        self._require_write(h)
        repo = self._repo_for(h, record.repo_id)
        with self._lock:
            rev = repo.resolve(record.revision)
        if rev is None:
            raise _BadRequest(404, "RevisionNotFound", f"Invalid rev id: {record.revision}")
        answers = []
        for item in self._json_body(record).get("files", []):
            path, size = item.get("path"), item.get("size")
            if not isinstance(path, str) or not isinstance(size, int):
                raise _BadRequest(400, None, "Each file needs a path and a size")
            try:
                sample = base64.b64decode(item.get("sample", ""), validate=True)
            except ValueError:
                raise _BadRequest(400, None, f"Invalid base64 sample for {path}") from None
            mode = self._upload_mode(path, size, sample)
            existing = rev.files.get(path)
            oid = None
            if existing is not None:
                oid = sha256(existing) if self._is_lfs(path) or mode == "lfs" else git_blob_sha1(existing)
            answers.append({"path": path, "uploadMode": mode, "shouldIgnore": False, "oid": oid})
        self._json(h, 200, {"files": answers, "commitOid": rev.commit}, send_body, record)

    def _upload_signature(self, oid: str, size: int) -> str:
        return hmac.new(self._upload_key, f"{oid}:{size}".encode(), hashlib.sha256).hexdigest()

    def _route_lfs_batch(self, h, match, query, record, send_body) -> None:
        self._require_write(h)
        repo_id = record.repo_id
        self._repo_for(h, repo_id)
        data = self._json_body(record)
        if data.get("operation") != "upload":
            raise _BadRequest(400, None, "This test Hub only supports the 'upload' operation of the batch API")
        objects = []
        for obj in data.get("objects", []):
            oid, size = obj.get("oid"), obj.get("size")
            if not isinstance(oid, str) or not _OID_RE.fullmatch(oid) or not isinstance(size, int) or size < 0:
                objects.append({"oid": str(oid), "size": size if isinstance(size, int) else 0,
                                "error": {"code": 422, "message": "Invalid oid or size"}})
                continue
            with self._lock:
                stored = self._blobs.get(oid)
            if stored is not None and len(stored) == size:
                objects.append({"oid": oid, "size": size})  # already there: no actions
                continue
            upload = f"{self.endpoint}/_lfs/upload/{oid}?size={size}&signature={self._upload_signature(oid, size)}"
            objects.append({
                "oid": oid, "size": size, "authenticated": True,
                "actions": {
                    "upload": {"href": upload, "expires_in": 3600},
                    "verify": {"href": f"{self.endpoint}/{quote(repo_id)}.git/info/lfs/objects/verify"},
                },
            })
        self._json(h, 200, {"transfer": "basic", "objects": objects, "hash_algo": "sha256"}, send_body, record,
                   content_type="application/vnd.git-lfs+json")

    def _route_lfs_upload(self, h, match, query, record, send_body) -> None:
        # Pre-signed like an S3 URL: the signature is the authorization, no Authorization header is sent.
        oid = match["oid"]
        try:
            size = int(query.get("size", ""))
        except ValueError:
            raise _BadRequest(403, None, "Missing or invalid size in the upload URL") from None
        if not _OID_RE.fullmatch(oid) or not hmac.compare_digest(query.get("signature", ""),
                                                                  self._upload_signature(oid, size)):
            raise _BadRequest(403, None, "Invalid upload URL signature")
        data = record.body
        if len(data) != size or sha256(data) != oid:
            raise _BadRequest(400, None, f"Uploaded content does not match oid {oid} and size {size}")
        with self._lock:
            self._blobs[oid] = data
        self._reply(h, 200, {}, b"", send_body, record)

    def _route_lfs_verify(self, h, match, query, record, send_body) -> None:
        self._require_write(h)
        self._repo_for(h, record.repo_id)
        data = self._json_body(record)
        with self._lock:
            stored = self._blobs.get(str(data.get("oid")))
        if stored is None or len(stored) != data.get("size"):
            raise _BadRequest(404, None, f"Object {data.get('oid')} was not uploaded")
        self._json(h, 200, {"success": True}, send_body, record)

    def _new_commit_id(self, repo_id: str, parent: str | None, message: str, files: dict[str, bytes]) -> str:
        self._commit_counter += 1  # callers hold the lock
        h = hashlib.sha1(f"{repo_id}\n{parent}\n{message}\n{self._commit_counter}\n".encode())
        for name in sorted(files):
            h.update(f"{name}\0{sha256(files[name])}\n".encode())
        return h.hexdigest()

    def _route_commit(self, h, match, query, record, send_body) -> None:
        self._require_write(h)
        repo_id, branch = record.repo_id, record.revision
        repo = self._repo_for(h, repo_id)
        if query.get("create_pr"):
            raise _BadRequest(501, None, "This test Hub does not implement pull requests (create_pr)")
        lines = []
        for number, raw in enumerate(record.body.splitlines(), 1):
            if not raw.strip():
                continue
            try:
                line = json.loads(raw)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise _BadRequest(400, None, f"Line {number} of the NDJSON payload is not JSON: {exc}") from None
            if not isinstance(line, dict) or not isinstance(line.get("value"), dict):
                raise _BadRequest(400, None, f"Line {number} of the NDJSON payload has no value object")
            lines.append(line)
        if not lines or lines[0].get("key") != "header":
            raise _BadRequest(400, None, "The first line of the commit payload must be the header")
        header = lines[0]["value"]
        summary = header.get("summary")
        if not isinstance(summary, str) or not summary.strip():
            raise _BadRequest(400, None, "The commit needs a summary")
        with self._lock:
            head = repo.refs.get(branch)
            if head is None:
                if _COMMIT_RE.fullmatch(branch) and branch in repo.commits:
                    raise _BadRequest(400, None, "Commits can only be pushed to a branch, not to a commit id")
                raise _BadRequest(404, "RevisionNotFound", f"Invalid rev id: {branch}")
            parent = header.get("parentCommit")
            if parent is not None and not head.commit.startswith(str(parent)):
                raise _BadRequest(412, None, "A commit has happened since. Please refresh and try again.")
            files = dict(head.files)
            for number, line in enumerate(lines[1:], 2):
                key, value = line.get("key"), line["value"]
                path = value.get("path")
                if not isinstance(path, str) or not path or path.startswith("/") or ".." in path.split("/"):
                    raise _BadRequest(400, None, f"Line {number}: invalid path {path!r}")
                if key == "file":
                    if value.get("encoding", "base64") != "base64":
                        raise _BadRequest(400, None, f"Line {number}: unsupported encoding {value.get('encoding')}")
                    try:
                        files[path] = base64.b64decode(value.get("content", ""), validate=True)
                    except ValueError:
                        raise _BadRequest(400, None, f"Line {number}: content is not base64") from None
                elif key == "lfsFile":
                    oid = value.get("oid")
                    data = self._blobs.get(str(oid))
                    if value.get("algo", "sha256") != "sha256" or data is None:
                        raise _BadRequest(422, None, f"Your push was rejected because an LFS pointer pointed to a "
                                                     f"file that does not exist ({path}, oid {oid})")
                    if "size" in value and value["size"] != len(data):
                        raise _BadRequest(422, None, f"Line {number}: size {value['size']} does not match the "
                                                     f"uploaded object of {len(data)} bytes")
                    files[path] = data
                elif key == "deletedFile":
                    if path not in files:
                        raise _BadRequest(404, "EntryNotFound", f"A file with this name doesn't exist: {path}")
                    del files[path]
                elif key == "deletedFolder":
                    prefix = path.rstrip("/") + "/"
                    files = {name: data for name, data in files.items() if not name.startswith(prefix)}
                else:
                    raise _BadRequest(400, None, f"Line {number}: unknown key {key!r}")
            commit = self._new_commit_id(repo_id, head.commit, summary, files)
            revision = _Revision(commit=commit, files=files, parent=head.commit, message=summary,
                                 description=str(header.get("description") or ""))
            repo.refs[branch] = revision
            repo.commits[commit] = revision
            for name, data in files.items():
                if self._is_lfs(name):
                    digest = sha256(data)
                    self._blobs.setdefault(digest, data)
                    self._blob_names.setdefault(digest, name)
        commit_url = f"{self.endpoint}/{repo_id}/commit/{commit}"
        self._json(h, 200, {"success": True, "commitOid": commit, "commitUrl": commit_url, "hookOutput": "",
                            "pullRequestUrl": None}, send_body, record)

    def _handle_cdn(self, h: BaseHTTPRequestHandler, send_body: bool) -> None:
        raw_path = urlsplit(h.path).path
        digest = raw_path.rsplit("/", 1)[-1]
        with self._lock:
            data = self._blobs.get(digest)
            name = self._blob_names.get(digest)
        record = RecordedRequest(server="cdn", method=h.command, path=h.path, status=0, filename=name,
                                 range=h.headers.get("Range"), headers=dict(h.headers.items()), route="cdn")
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
