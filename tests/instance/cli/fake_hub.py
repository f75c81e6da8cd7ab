"""A model hub on loopback, for tests: serves diffusers directories the way the public hub API
does, and records every request.

    with FakeHub({"test/tiny": some_dir}) as hub:
        fetch("test/tiny", cache, endpoint=hub.url)

Endpoints (the ones :mod:`generator.hub` and huggingface_hub use):

- ``GET /api/models/{owner}/{name}/revision/{rev}``: ``{"id", "sha", "siblings": [{"rfilename",
  "size"}]}``;
- ``GET|HEAD /{owner}/{name}/resolve/{rev}/{path}``: the file, with ``ETag``,
  ``X-Repo-Commit``, ``Accept-Ranges``, ``Content-Length``; ``Range: bytes=N-`` answers 206 with
  ``Content-Range`` (``If-Range`` with a stale ETag answers the whole file).

``break_once[path] = n`` makes the next GET of ``path`` send its headers and ``n`` bytes, then
close the connection mid-file, once.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    range: str | None


class FakeHub:
    def __init__(self, repos: dict[str, Path]) -> None:
        self.repos = repos
        self.requests: list[Request] = []
        self.break_once: dict[str, int] = {}
        self.lock = threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_HEAD(self) -> None:
                hub._handle(self, head=True)

            def do_GET(self) -> None:
                hub._handle(self, head=False)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self.thread.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- what tests look at -----------------------------------------------------------------
    def file_gets(self) -> list[Request]:
        return [r for r in self.requests if r.method == "GET" and "/resolve/" in r.path]

    # -- serving ------------------------------------------------------------------------------
    def _files(self, repo: str) -> dict[str, Path]:
        base = self.repos[repo]
        return {p.relative_to(base).as_posix(): p for p in sorted(base.rglob("*")) if p.is_file()}

    def _handle(self, h: BaseHTTPRequestHandler, *, head: bool) -> None:
        path = h.path.split("?", 1)[0]
        with self.lock:
            self.requests.append(Request(h.command, path, h.headers.get("Range")))
        parts = path.strip("/").split("/")
        if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "revision":
            repo = "/".join(parts[2:4])
            if repo not in self.repos:
                return self._send(h, 404, b'{"error": "Repository not found"}', head)
            siblings = [
                {"rfilename": name, "size": p.stat().st_size}
                for name, p in self._files(repo).items()
            ]
            body = json.dumps({"id": repo, "sha": COMMIT, "siblings": siblings}).encode()
            return self._send(h, 200, body, head, {"Content-Type": "application/json"})
        if len(parts) >= 5 and parts[2] == "resolve":
            repo, name = "/".join(parts[:2]), "/".join(parts[4:])
            files = self._files(repo) if repo in self.repos else {}
            if name not in files:
                return self._send(h, 404, b"Entry not found", head)
            return self._send_file(h, name, files[name].read_bytes(), head)
        self._send(h, 404, b"not found", head)

    def _send_file(self, h: BaseHTTPRequestHandler, name: str, data: bytes, head: bool) -> None:
        etag = '"' + hashlib.sha256(data).hexdigest() + '"'
        headers = {"ETag": etag, "X-Repo-Commit": COMMIT, "Accept-Ranges": "bytes"}
        start = 0
        wanted = h.headers.get("Range")
        if_range = h.headers.get("If-Range")
        if wanted and wanted.startswith("bytes=") and (if_range is None or if_range == etag):
            start = int(wanted[6:].split("-", 1)[0])
            if start >= len(data):
                headers["Content-Range"] = f"bytes */{len(data)}"
                return self._send(h, 416, b"", head, headers)
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        status = 206 if start else 200
        body = data[start:]
        cut = None if head else self.break_once.pop(name, None)
        if cut is None:
            return self._send(h, status, body, head, headers)
        h.send_response(status)
        for k, v in {**headers, "Content-Length": str(len(body))}.items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body[:cut])
        h.wfile.flush()
        h.close_connection = True  # the connection drops mid-file

    @staticmethod
    def _send(
        h: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        head: bool,
        headers: dict[str, str] | None = None,
    ) -> None:
        h.send_response(status)
        for k, v in {**(headers or {}), "Content-Length": str(len(body))}.items():
            h.send_header(k, v)
        h.end_headers()
        if not head:
            h.wfile.write(body)
