"""Review findings 14 and 15 (docs/security.md): lookups with a deadline, no 500 for odd input.

- Finding 14: a WebFinger lookup had no overall deadline, and an address the SSRF guard
  refuses gave a 500. Both are now a clear refusal on the page.
- Finding 15: `?page=` with a huge number gave a 500; a client that disconnected in the
  middle of its request left a traceback in the log.
"""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest

from instance.errors import NotFound
from instance.inbound import resolve
from tests.instance.web_helpers import fast_hasher, logged_in  # noqa: F401
from webfinger import client as webfinger_client


@pytest.mark.usefixtures("fast_hasher")
async def test_a_webfinger_server_that_never_answers_is_a_refusal_in_time(
    runtime, client, new_account, monkeypatch
) -> None:
    monkeypatch.setattr(webfinger_client, "DEADLINE_S", 0.3)

    async def never(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(3600)
        raise AssertionError

    await runtime.use_http(httpx.AsyncClient(transport=httpx.MockTransport(never)))
    with pytest.raises(NotFound, match=r"did not answer within 0\.3 s"):
        await resolve.account(runtime, "@someone@slow.example")
    await new_account("alice", password="correct horse battery")
    csrf = await logged_in(client, "alice")
    page = await client.post("/follow", data={"csrf": csrf, "handle": "@someone@slow.example"})
    assert page.status_code == 400 and "did not answer" in page.text


async def test_an_address_the_guard_refuses_is_a_refusal_not_a_500(runtime) -> None:
    """The runtime's real, guarded client (this instance does not allow private addresses)."""
    runtime.settings.federation.allow_private_addresses = False
    from instance.runtime import make_http_client

    await runtime.use_http(make_http_client(runtime.settings))
    with pytest.raises(NotFound, match="failed"):
        await resolve.account(runtime, "@someone@127.0.0.1")


@pytest.mark.parametrize("page", ["99999999999999999999", "-5", "x", "1e9", "9" * 300])
async def test_any_page_number_is_a_page(client, new_account, page) -> None:
    await new_account("painter", ai=True)
    r = await client.get(f"/users/painter/outbox?page={page}",
                         headers={"Accept": "application/activity+json"})  # fmt: skip
    assert r.status_code == 200 and r.json()["type"] == "OrderedCollectionPage"


async def test_a_client_gone_mid_request_leaves_no_traceback(runtime, caplog) -> None:
    from instance.app import create_app

    app = create_app(runtime.settings, run_workers=False, runtime=runtime)
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/login", "raw_path": b"/login",
             "query_string": b"", "root_path": "", "scheme": "http", "http_version": "1.1",
             "headers": [(b"host", runtime.settings.host.encode()),
                         (b"content-type", b"application/x-www-form-urlencoded"),
                         (b"content-length", b"100")],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}  # fmt: skip
    async with app.router.lifespan_context(app):
        app.state.runtime = runtime
        with caplog.at_level(logging.ERROR):
            await app(scope, receive, send)
    assert not [r for r in caplog.records if r.exc_info]
    assert sent[0]["status"] == 400
