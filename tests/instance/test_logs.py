"""What `dreamloom serve` tells its admin (issue 15): one access line per request, the
workers' events, `[logging]` level and format from config, and a clean stop on SIGTERM.

The serve tests run the real `dreamloom serve` as a subprocess on a loopback port."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from generator.testing import FakePipeline
from instance.accounts import NewAccount, create_account
from instance.errors import ConfigError
from instance.generation.requests import enqueue
from instance.generation.worker import GenerationWorker
from instance.inbound.worker import InboxWorker
from instance.outbound.delivery import DeliveryWorker
from instance.runtime import Runtime, open_runtime
from instance.settings import load_settings
from instance.setup import ensure_instance, write_config
from tests.instance.delivery_helpers import add_follower, post_to_followers
from tests.instance.generation_fixtures import GEN, run_generation, share_cache, tiny_cache
from tests.instance.inbox_helpers import post
from tests.instance_fixtures import free_port, make_settings

DREAMLOOM = Path(sys.executable).with_name("dreamloom")
SIGNATURE = 'keyId="https://peer.example:8443/users/alice#main-key",signature="c2ln"'


__all__ = ["tiny_cache"]  # a fixture, used by name


def _instance(directory: Path, port: int, extra: str = "") -> Path:
    write_config(directory, f"127.0.0.1:{port}", "http", allow_private_addresses=True)
    config = directory / "config.toml"
    config.write_text(config.read_text() + extra)
    return directory


def _serve_and_stop(directory: Path, port: int, *requests: tuple[str, str, dict[str, str]]
                    ) -> tuple[int, str]:  # fmt: skip
    """Start `dreamloom serve`, make `requests` once it answers, SIGTERM it; its exit code
    and everything it wrote to stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DREAMLOOM_")}
    log = directory / "serve.log"
    with log.open("wb") as stderr:
        proc = subprocess.Popen(
            [str(DREAMLOOM), "serve", "--dir", str(directory), "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                httpx.get(f"{base}/.well-known/nodeinfo", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        for method, path, headers in requests:
            httpx.request(method, base + path, headers=headers, timeout=10)
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return code, log.read_text()


def test_serve_logs_each_request_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    """Text format: one access line per request (method, path, status, ms; the signing host
    of a signed request), then `Dreamloom stopped (SIGTERM, ...)` and exit code 0."""
    port = free_port()
    directory = _instance(tmp_path / "inst", port)
    code, text = _serve_and_stop(
        directory, port,
        ("GET", "/.well-known/webfinger?resource=acct:nobody@127.0.0.1", {}),
        ("POST", "/inbox", {"Signature": SIGNATURE, "Content-Type": "application/activity+json"}),
    )  # fmt: skip
    assert code == 0, text
    lines = text.splitlines()
    access = [line for line in lines if "dreamloom.access" in line]
    assert any(
        "GET /.well-known/webfinger?resource=acct:nobody@127.0.0.1 404 " in line
        and line.endswith(" ms")
        for line in access
    ), text
    signed = [line for line in access if "POST /inbox " in line]
    assert len(signed) == 1 and signed[0].endswith("signed by peer.example:8443"), text
    assert " INFO " in signed[0]
    assert "Dreamloom stopped (SIGTERM" in lines[-1], text
    assert "Traceback" not in text


def test_json_logs_when_configured(tmp_path: Path) -> None:
    """[logging] format = "json": every line serve writes is one JSON object; an access line
    has method, path, status, duration_ms (and signer when signed)."""
    port = free_port()
    directory = _instance(tmp_path / "inst", port, '\n[logging]\nformat = "json"\n')
    code, text = _serve_and_stop(
        directory, port,
        ("GET", "/.well-known/nodeinfo", {}),
        ("POST", "/inbox", {"Signature": SIGNATURE}),
    )  # fmt: skip
    assert code == 0, text
    records = [json.loads(line) for line in text.splitlines()]  # each line parses
    access = [r for r in records if r["logger"] == "dreamloom.access"]
    nodeinfo = next(r for r in access if r["path"] == "/.well-known/nodeinfo")
    assert nodeinfo["method"] == "GET" and nodeinfo["status"] == 200
    assert isinstance(nodeinfo["duration_ms"], float) and nodeinfo["level"] == "info"
    inbox = next(r for r in access if r["path"] == "/inbox")
    assert inbox["signer"] == "peer.example:8443" and "signer" not in nodeinfo
    assert records[-1]["message"].startswith("Dreamloom stopped (SIGTERM")
    assert records[-1]["signal"] == "SIGTERM"


def test_level_warning_hides_the_access_log(tmp_path: Path) -> None:
    """[logging] level = "warning": no access lines, still exit 0 on SIGTERM."""
    port = free_port()
    directory = _instance(tmp_path / "inst", port, '\n[logging]\nlevel = "warning"\n')
    code, text = _serve_and_stop(directory, port, ("GET", "/.well-known/nodeinfo", {}))
    assert code == 0, text
    assert "dreamloom.access" not in text


@pytest.mark.parametrize(
    ("section", "expected"),
    [('level = "loud"', "[logging] level must be"), ('format = "xml"', "[logging] format must")],
)
def test_bad_logging_settings_name_the_key_and_file(
    tmp_path: Path, section: str, expected: str
) -> None:
    """A wrong [logging] value is a ConfigError naming the key and the file."""
    config = tmp_path / "config.toml"
    config.write_text(f'[instance]\ndomain = "a.example"\n[logging]\n{section}\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(config, env={})
    assert expected in str(caught.value) and str(config) in str(caught.value)


class _Inboxes(BaseHTTPRequestHandler):
    """A remote server on loopback: /users/good/inbox takes deliveries, bad answers 500."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(202 if self.path.startswith("/users/good/") else 500)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def remote() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Inboxes)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def test_delivery_outcomes_are_logged_at_info(
    tmp_path: Path, remote: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A delivery answered 202 logs `delivered to HOST`; one answered 500 logs `delivery to
    HOST failed: REASON`, with the host, at info."""
    rt = await open_runtime(make_settings(tmp_path / "instance"))
    try:
        await ensure_instance(rt)
        async with rt.session() as session:
            bot = await create_account(session, rt.urls, NewAccount("painter", ai=True))
        await add_follower(rt, bot, "good", remote, shared=False, scheme="http")
        await add_follower(rt, bot, "bad", remote, shared=False, scheme="http")
        await post_to_followers(rt, bot)
        caplog.set_level(logging.INFO, logger="dreamloom")
        worker = DeliveryWorker(rt)
        for _ in range(20):
            await worker.run_once()
            infos = [r for r in caplog.records if r.name == "dreamloom.delivery"]
            if len(infos) >= 2:
                break
    finally:
        await rt.aclose()
    messages = [r.getMessage() for r in infos if r.levelno == logging.INFO]
    assert f"delivered to {remote} (202)" in messages, messages
    failed = [m for m in messages if m.startswith(f"delivery to {remote} failed: ")]
    assert len(failed) == 1 and "500" in failed[0] and "retried later" in failed[0], messages


async def test_generation_outcomes_are_logged_at_info(
    tmp_path: Path, tiny_cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A generated image logs `generation job N done in M ms`; a job whose pipeline raises
    logs `generation job N failed: REASON`."""
    settings = make_settings(tmp_path / "instance", generator=GEN)
    share_cache(settings, tiny_cache)
    rt = await open_runtime(settings)
    try:
        await ensure_instance(rt)
        async with rt.session() as session:
            bot = await create_account(session, rt.urls, NewAccount("painter", ai=True))
            done = await enqueue(session, rt, bot, "a heron", size=(32, 32), steps=1)
        caplog.set_level(logging.INFO, logger="dreamloom")
        await run_generation(rt)
        async with rt.session() as session:
            broken = await enqueue(session, rt, bot, "a crane", size=(32, 32), steps=1)
        worker = GenerationWorker(
            rt, pipeline_factory=lambda: FakePipeline(error=RuntimeError("the GPU caught fire"))
        )
        try:
            while await worker.run_once():
                pass
        finally:
            await worker.aclose()
    finally:
        await rt.aclose()
    messages = [r.getMessage() for r in caplog.records if r.name == "dreamloom.generation"]
    assert any(m.startswith(f"generation job {done.id} done in ") and " ms " in m
               for m in messages), messages  # fmt: skip
    assert any(m.startswith(f"generation job {broken.id} failed") and "caught fire" in m
               for m in messages), messages  # fmt: skip


async def test_inbox_items_are_logged_at_info(
    runtime: Runtime, client: httpx.AsyncClient, fedi: Any, new_account: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """An inbox activity handled logs `inbox item N (TYPE) from HOST handled`; one about an
    cannot be handled (its object is not found) is logged as failed, with why."""
    bob = await new_account("bob", ai=True)
    alice = fedi.actor("alice")
    caplog.set_level(logging.INFO, logger="dreamloom")
    boosted = "https://remote.example/notes/1"  # the fake remote answers 404 for it
    for kind, target in (("Follow", bob.uri), ("Announce", boosted)):
        r = await post(client, runtime, alice, alice.activity(kind, target))
        assert r.status_code == 202, r.text
        await InboxWorker(runtime).run_once()
    messages = [r.getMessage() for r in caplog.records if r.name == "dreamloom.inbox"]
    assert any(m.endswith("(Follow) from remote.example handled") for m in messages), messages
    failed = [m for m in messages if m.startswith("inbox item 2 from remote.example failed: ")]
    assert len(failed) == 1 and "404" in failed[0] and boosted in failed[0], messages


async def test_a_request_cannot_forge_a_log_line() -> None:
    """Text logs: a path whose percent-decoding holds CR/LF (or a terminal escape), and an
    activity type that does, still make exactly one line each; the control characters are
    written as \\xNN, so no forged `dreamloom.access` line appears."""
    import io

    from instance.logs import AccessLog, configure_logging
    from instance.settings import LoggingSettings

    stream = io.StringIO()
    handler = configure_logging(LoggingSettings(level="info", format="text"), stream=stream)
    forged = "\r\n2026-01-01 00:00:00,000 INFO dreamloom.access: GET /admin 200 1.0 ms\x1b[2J"

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        pass

    try:
        scope = {"type": "http", "method": "GET", "path": "/x" + forged, "headers": []}
        await AccessLog(app)(scope, receive, send)
        logging.getLogger("dreamloom.inbound").info("inbox item 1 (%s) from a handled", forged)
    finally:
        logging.getLogger().removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert "GET /admin" not in "".join(line.split(": ", 1)[0] for line in lines)
    assert all("\x1b" not in line and "\r" not in line for line in lines)
    assert "\\x0d\\x0a2026-01-01" in lines[0]
