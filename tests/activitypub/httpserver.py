"""A tiny HTTP/1.1 server on 127.0.0.1 for fetch tests, with full control of the bytes sent.

Routes map a path (with query) to a `Reply` or to a callable returning one. A reply can be
plain, chunked, or stalled (headers sent, then the body trickles until the client gives up).
Every request is recorded, so tests can count fetches and inspect signatures.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

AP_JSON = "application/activity+json"


@dataclass
class Reply:
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    chunked: bool = False
    chunk_size: int = 65536
    trickle: float | None = None  # seconds between 1-byte writes, forever

    @classmethod
    def json(cls, document: Any, content_type: str = AP_JSON, **kw: Any) -> Reply:
        return cls(
            headers=[("Content-Type", content_type)], body=json.dumps(document).encode(), **kw
        )

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> Reply:
        return cls(status=status, headers=[("Location", location)])


@dataclass
class Seen:
    method: str
    target: str
    headers: list[tuple[str, str]]


Handler = Reply | Callable[[Seen], Reply]


class TestServer:
    __test__ = False

    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self.requests: list[Seen] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def hits(self, path: str) -> int:
        return sum(1 for r in self.requests if r.target == path)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            seen = await self._read_request(reader)
            if seen is None:
                return
            self.requests.append(seen)
            handler = self.routes.get(seen.target, Reply(404, body=b"not found"))
            reply = handler(seen) if callable(handler) else handler
            await self._write(writer, reply)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _read_request(self, reader: asyncio.StreamReader) -> Seen | None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:] if line]
        return Seen(method, target, headers)  # type: ignore[arg-type]

    async def _write(self, writer: asyncio.StreamWriter, reply: Reply) -> None:
        head = [f"HTTP/1.1 {reply.status} X", "Connection: close"]
        head += [f"{k}: {v}" for k, v in reply.headers]
        names = {k.lower() for k, _ in reply.headers}
        if reply.chunked:
            head.append("Transfer-Encoding: chunked")
        elif "content-length" not in names:
            head.append(f"Content-Length: {len(reply.body)}")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        if reply.trickle is not None:
            while True:
                writer.write(b" ")
                await writer.drain()
                await asyncio.sleep(reply.trickle)
        if reply.chunked:
            for start in range(0, len(reply.body), reply.chunk_size):
                chunk = reply.body[start : start + reply.chunk_size]
                writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                await writer.drain()
            writer.write(b"0\r\n\r\n")
        else:
            writer.write(reply.body)
        await writer.drain()
