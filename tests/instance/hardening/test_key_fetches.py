"""Review findings 6 and 7 (docs/security.md): key fetches cannot tarpit the inbox, and what
we remember about strangers is bounded.

- Finding 6: garbage-signed requests whose keyId points at a server that answers one byte
  every few seconds kept the inbox at 503 and drained the connection pool deliveries share.
  Key fetches now have their own pool and a short deadline, run at most a few at a time per
  host and in all, and a host that failed is not asked again for a while: the tarpit's
  requests are answered 401 quickly while an honest sender is accepted.
- Finding 7: every request with a new keyId left memory behind. The key cache and the
  "do not ask again" lists are LRU/TTL caches with a size bound.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email.utils
import hashlib
import json
import time

import httpx

from activitypub.errors import FetchError
from instance import runtime as runtime_mod
from instance.inbound import keyring as keyring_mod
from instance.inbound.keyring import FETCHES_PER_HOST, KeyRing
from tests.instance.inbox_helpers import post


def garbage_signed(key_id: str, n: int) -> tuple[bytes, dict[str, str]]:
    actor = key_id.partition("#")[0]
    body = json.dumps({"id": f"{actor}/a/{n}", "type": "Like", "actor": actor,
                       "object": "https://x.example/1"}).encode()  # fmt: skip
    digest = "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
    return body, {
        "content-type": "application/activity+json", "digest": digest,
        "date": email.utils.formatdate(usegmt=True),
        "signature": f'keyId="{key_id}",algorithm="rsa-sha256",'
                     'headers="(request-target) host date digest",signature="AAAA"',
    }  # fmt: skip


async def test_a_tarpit_key_server_gets_401s_and_honest_senders_are_accepted(
    client, runtime, fedi, monkeypatch
) -> None:
    monkeypatch.setattr(runtime_mod, "KEY_DEADLINE_S", 0.3)
    asked: list[str] = []

    async def transport(request: httpx.Request) -> httpx.Response:
        if request.url.host == "tarpit.example":
            asked.append(str(request.url))
            await asyncio.sleep(3600)  # one byte every few seconds, as good as never
        return fedi(request)

    await runtime.use_http(httpx.AsyncClient(transport=httpx.MockTransport(transport)))
    alice = fedi.actor("alice")
    started = time.monotonic()
    tarpit = [garbage_signed(f"https://tarpit.example/users/u{n}#main-key", n) for n in range(40)]
    answers = await asyncio.gather(
        *(client.post("/inbox", content=body, headers=headers) for body, headers in tarpit),
        post(client, runtime, alice, alice.create()),
    )
    assert [a.status_code for a in answers[:-1]] == [401] * 40
    assert answers[-1].status_code == 202
    assert time.monotonic() - started < 5
    assert len(asked) <= FETCHES_PER_HOST  # then the host was left alone
    later = garbage_signed("https://tarpit.example/users/late#main-key", 99)
    assert (await client.post("/inbox", content=later[0], headers=later[1])).status_code == 401
    assert len(asked) <= FETCHES_PER_HOST


async def test_key_fetches_have_their_own_pool_and_a_short_deadline(runtime) -> None:
    assert runtime.key_fetcher.client is not runtime.http
    assert runtime.fetcher.client is not runtime.http
    assert runtime.key_fetcher.deadline <= 5 < runtime.fetcher.deadline


async def test_what_is_kept_per_unknown_key_is_bounded(runtime, fedi, monkeypatch) -> None:
    monkeypatch.setattr(keyring_mod, "MAX_QUIET", 50)
    ring = KeyRing(runtime)
    for n in range(200):  # 404s: every key is "not found, do not ask again for a minute"
        with contextlib.suppress(FetchError):
            await ring.resolve(f"https://h{n}.example/users/x#main-key")
    assert len(ring._quiet_keys) <= 50 and len(ring._quiet_hosts) <= 50
    assert ring._inflight == {} and ring._per_host == {}
