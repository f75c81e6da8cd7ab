"""Review finding 13 (docs/security.md): a request signed for another server is not ours.

RFC 9421 signatures covering another authority (`@authority`, `@target-uri`) were accepted,
as were draft-cavage POSTs that did not sign `host`. Mastodon does not always sign `host`,
so those stay acceptable, but whatever was signed, the request's Host must be ours: a
signed request relayed from another server is refused.
"""

from __future__ import annotations

import json

from activitypub.signatures import sign_request_headers
from instance.outbound.domains import signature_schemes
from instance.storage.models import InboxItem
from tests.instance.inbox_helpers import count


def signed(actor, url: str, activity: dict, scheme: str, host: str | None = None):
    body = json.dumps(activity).encode()
    headers = sign_request_headers(
        "POST", url, key_id=actor.key_id, private_pem=actor.private_pem, body=body,
        content_type="application/activity+json", scheme=scheme,
    )  # fmt: skip
    if host is not None:
        headers["Host"] = host
    return body, headers


async def test_rfc9421_signed_for_another_server_is_refused(client, fedi) -> None:
    alice = fedi.actor("alice")
    body, headers = signed(alice, "http://victim.example/inbox", alice.create(), "rfc9421")
    r = await client.post("/inbox", content=body, headers=headers)
    assert r.status_code == 401 and "another host" in r.json()["error"]


async def test_a_request_that_names_another_host_is_refused_even_unsigned_host(
    client, runtime, fedi
) -> None:
    alice = fedi.actor("alice")
    url = f"{runtime.settings.base_url}/inbox"
    body, headers = signed(alice, url, alice.create(), "cavage", host="victim.example")
    r = await client.post("/inbox", content=body, headers=headers)
    assert r.status_code == 401 and "another host" in r.json()["error"]
    assert await count(runtime, InboxItem) == 0


async def test_our_host_with_the_default_port_written_out_is_ours(client, runtime, fedi) -> None:
    alice = fedi.actor("alice")
    url = f"{runtime.settings.base_url}/inbox"
    for scheme in ("cavage", "rfc9421"):
        body, headers = signed(alice, url, alice.create(), scheme)
        assert (await client.post("/inbox", content=body, headers=headers)).status_code == 202


async def test_mastodon_leaves_a_non_default_port_out_of_host(client, runtime, fedi) -> None:
    """Mastodon writes and signs `Host` as the bare host name (its Request sets Host to
    url.host), also for an instance on another port, like this one (127.0.0.1:PORT): the
    bare name is ours, another port on it is not."""
    alice = fedi.actor("alice")
    host = runtime.settings.host.rsplit(":", 1)[0]
    body, headers = signed(alice, f"http://{host}/inbox", alice.create(), "cavage", host=host)
    assert (await client.post("/inbox", content=body, headers=headers)).status_code == 202
    elsewhere = f"{host}:1"
    body, headers = signed(alice, f"http://{elsewhere}/inbox", alice.create(), "cavage",
                           host=elsewhere)  # fmt: skip
    r = await client.post("/inbox", content=body, headers=headers)
    assert r.status_code == 401 and "another host" in r.json()["error"]


async def test_a_server_that_signs_rfc9421_gets_our_deliveries_signed_so(
    client, runtime, fedi
) -> None:
    """A server that signs its requests to us with RFC 9421 verifies them too: it is
    remembered, and our deliveries to it are signed RFC 9421 first (one POST, not two)."""
    alice, bob = fedi.actor("alice"), fedi.actor("bob", "old.example")
    url = f"{runtime.settings.base_url}/inbox"
    for actor, scheme in ((alice, "rfc9421"), (bob, "cavage")):
        body, headers = signed(actor, url, actor.create(), scheme)
        assert (await client.post("/inbox", content=body, headers=headers)).status_code == 202
    async with runtime.sessions() as s:
        known = await signature_schemes(s, ["remote.example", "old.example"])
    assert known == {"remote.example": "rfc9421"}
