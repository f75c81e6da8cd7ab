"""What `dreamloom serve` tells its admin: the `[logging]` settings applied in one place.

The rules:

- Every Dreamloom logger lives under `dreamloom.` and logs at the configured level
  (`[logging] level`); other libraries' loggers (uvicorn, httpx, SQLAlchemy) only from
  warning up, so `info` is our own lines and nothing else.
- `[logging] format`: "text" is `TIME LEVEL LOGGER: MESSAGE`; "json" is one JSON object a
  line with `time`, `level`, `logger`, `message` and the event's own fields (an access line
  carries `method`, `path`, `status`, `duration_ms` and, when signed, `signer`).
- One access line per HTTP request at info, written by `AccessLog` (uvicorn's own access log
  is off): `GET /@painter 200 3.2 ms`, plus `signed by HOST` for a request carrying an HTTP
  signature (the host of its keyId; the route verifies it, the log only names it).
- A text line is one line: control characters in it (CR, LF, escapes; a path is
  percent-decoded, an activity's type is the sender's) are written as `\\xNN`, so nothing a
  request carries can forge a second log line or drive the admin's terminal.
- A signal ends `serve` cleanly: the workers and the database are closed by the app's
  lifespan, then one line `Dreamloom stopped (SIGTERM, ...)` and exit code 0.
"""

from __future__ import annotations

import json
import logging
import re
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

import uvicorn

from instance.settings import LoggingSettings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ROOT = "dreamloom"
access_log = logging.getLogger(f"{ROOT}.access")
server_log = logging.getLogger(f"{ROOT}.server")

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
_KEY_ID = re.compile(r'keyid\s*=\s*"([^"]+)"', re.IGNORECASE)
_RECORD_FIELDS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message"}


_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text: str) -> str:
    """`text` with every control character (tab excepted) written as `\\xNN`."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class TextFormatter(logging.Formatter):
    """`TIME LEVEL LOGGER: MESSAGE`, the line itself never more than one line (a traceback
    after it keeps its own lines)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return one_line(super().formatMessage(record))


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, and the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


def configure_logging(config: LoggingSettings, stream: Any = None) -> logging.Handler:
    """Send every log line to stderr (or `stream`) in the configured format and level."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if config.format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    level = LEVELS[config.level]
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(max(level, logging.WARNING))
    logging.getLogger(ROOT).setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uv = logging.getLogger(name)
        uv.handlers.clear()
        uv.propagate = True
        uv.setLevel(max(level, logging.WARNING))
    return handler


def signer_host(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The host named by the keyId of a request's HTTP signature (draft-cavage `Signature`
    or RFC 9421 `Signature-Input`), or None for an unsigned request."""
    for name, value in headers:
        if name.lower() in (b"signature", b"signature-input"):
            found = _KEY_ID.search(value.decode("latin-1"))
            if found:
                parts = urlsplit(found.group(1))
                return parts.netloc or found.group(1)[:200]
    return None


class AccessLog:
    """ASGI middleware: one info line per HTTP request, when its response is complete."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.requests = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception before any response: uvicorn answers 500
        logged = False

        def line() -> None:
            nonlocal logged
            if logged:
                return
            logged = True
            self.requests += 1
            ms = round((time.perf_counter() - started) * 1000, 1)
            path = scope.get("path", "")
            if scope.get("query_string"):
                path += "?" + scope["query_string"].decode("latin-1")
            signer = signer_host(scope.get("headers") or [])
            fields: dict[str, Any] = {
                "method": scope.get("method", ""),
                "path": path,
                "status": status,
                "duration_ms": ms,
            }
            if signer:
                fields["signer"] = signer
            text = f"{fields['method']} {path} {status} {ms} ms"
            access_log.info(text + (f" signed by {signer}" if signer else ""), extra=fields)

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                line()

        try:
            await self.app(scope, receive, sending)
        finally:
            line()


class Server(uvicorn.Server):
    """uvicorn's server, but a SIGTERM or SIGINT is the end of a clean run (exit code 0),
    not re-raised once the app has shut down; it remembers which signal it was."""

    stopped_by: str | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.stopped_by is None:
            self.stopped_by = signal.Signals(sig).name
        super().handle_exit(sig, frame)
        self._captured_signals.clear()


def serve(
    app: ASGIApp,
    config: LoggingSettings,
    banner: str,
    *,
    stopped_as: str = "Dreamloom stopped",
    sockets: list[socket.socket] | None = None,
    **uvicorn_options: Any,
) -> None:
    """Run `app` under uvicorn with our logging and access log, until a signal: `banner`
    first, one line `stopped_as (why, ...)` last. `sockets`: accept on these (a web
    process of the supervisor, instance/supervisor.py) instead of binding host and port."""
    configure_logging(config)
    server_log.info(banner)
    logged = AccessLog(app)
    server = Server(
        uvicorn.Config(
            logged, log_config=None, access_log=False, log_level=None, **uvicorn_options
        )
    )
    began = time.monotonic()
    server.run(sockets=sockets)
    took = time.monotonic() - began
    why = server.stopped_by or "shut down"
    server_log.info(
        "%s (%s, after %d requests in %.1f s)",
        stopped_as,
        why,
        logged.requests,
        took,
        extra={"signal": server.stopped_by, "requests": logged.requests},
    )
