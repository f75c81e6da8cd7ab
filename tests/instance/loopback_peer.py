"""A remote server on real loopback HTTP, in a thread: it serves actor and note documents at
`http://localhost:PORT/...` and records every request it gets (GETs such as key fetches,
POSTs such as deliveries). Addressed as `localhost`, so a block of that domain does not
cover the instance under test (which lives at 127.0.0.1)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.instance.fediverse import RemoteActor, keypair

ACTIVITY_JSON = "application/activity+json"


class HttpActor(RemoteActor):
    @property
    def uri(self) -> str:
        return f"http://{self.host}/users/{self.username}"

    @property
    def shared_inbox(self) -> str:
        return f"http://{self.host}/inbox"


@dataclass(frozen=True)
class Redirect:
    location: str


@dataclass
class LoopbackPeer:
    host: str  # localhost:PORT
    documents: dict[str, Any] = field(default_factory=dict)  # path -> JSON
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path)

    def actor(self, username: str, key: int = 1) -> HttpActor:
        private_pem, public_pem = keypair(key)
        actor = HttpActor(username, self.host, private_pem, public_pem)
        self.serve(actor.uri, actor.document())
        return actor

    def serve(self, url: str, document: Any) -> None:
        self.documents[url.split(self.host, 1)[1]] = document

    def gets(self) -> list[str]:
        return [path for method, path in self.requests if method == "GET"]

    def posts(self) -> list[str]:
        return [path for method, path in self.requests if method == "POST"]


@contextmanager
def loopback_peer(name: str = "localhost") -> Iterator[LoopbackPeer]:
    peer = LoopbackPeer("")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            peer.requests.append(("GET", self.path))
            document = peer.documents.get(self.path.split("?")[0].split("#")[0])
            if document is None:
                self.send_response(404)
                self.send_header("content-length", "0")
                self.end_headers()
                return
            if isinstance(document, Redirect):
                self.send_response(302)
                self.send_header("location", document.location)
                self.send_header("content-length", "0")
                self.end_headers()
                return
            body = json.dumps(document).encode()
            self.send_response(200)
            self.send_header("content-type", ACTIVITY_JSON)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            self.rfile.read(length)
            peer.requests.append(("POST", self.path))
            self.send_response(202)
            self.send_header("content-length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    peer.host = f"{name}:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield peer
    finally:
        server.shutdown()
        server.server_close()
