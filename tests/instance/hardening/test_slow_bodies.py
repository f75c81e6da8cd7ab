"""Review finding 5 (docs/security.md): slow bodies cannot lock the inbox.

256 connections that send their headers and one byte, then nothing, used to hold every
intake slot for as long as the attacker liked, with no signature needed. Now a body is read
before the request counts against the inbox's bound, under a deadline, and one client
address reads at most READS_PER_IP bodies at once: the attacker's own address is refused
(429) while a sender on another address is answered at once.
"""

from __future__ import annotations

import asyncio
import contextlib

import httpx

from instance.routes import inbox as inbox_route
from tests.instance.inbox_helpers import inbox_rows, post


async def slow_request(host: str, port: int, path: str = "/inbox") -> asyncio.StreamWriter:
    _reader, writer = await asyncio.open_connection(host, port, local_addr=("127.0.0.1", 0))
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Type: application/activity+json\r\nContent-Length: 1000\r\n\r\n{".encode()
    )
    await writer.drain()
    return writer


async def test_many_slow_bodies_from_one_address_do_not_hold_up_another_sender(
    runtime, live, fedi
) -> None:
    host, _, port = runtime.settings.host.rpartition(":")
    writers = [await slow_request(host, int(port)) for _ in range(300)]
    try:
        await asyncio.sleep(0.2)  # every slow request is in, reading or refused
        alice = fedi.actor("alice")
        transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
        async with httpx.AsyncClient(transport=transport, base_url=live, timeout=5) as honest:
            r = await post(honest, runtime, alice, alice.create())
        assert r.status_code == 202
        transport = httpx.AsyncHTTPTransport(local_address="127.0.0.1")
        async with httpx.AsyncClient(transport=transport, base_url=live, timeout=5) as same:
            r = await post(same, runtime, alice, alice.create())
        assert r.status_code == 429 and r.headers["retry-after"]
        assert len(await inbox_rows(runtime)) == 1
    finally:
        for w in writers:
            w.close()
            with contextlib.suppress(Exception):
                await w.wait_closed()


async def test_a_body_that_never_finishes_is_cut_off(runtime, live, monkeypatch) -> None:
    monkeypatch.setattr(inbox_route, "BODY_DEADLINE_S", 0.3)
    host, _, port = runtime.settings.host.rpartition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"POST /inbox HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Type: application/activity+json\r\nContent-Length: 1000\r\n\r\n{".encode()
    )
    status = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    assert status.split()[1] == b"408"
    assert runtime.service(inbox_route.Intake).reading == {}  # the slot is given back
