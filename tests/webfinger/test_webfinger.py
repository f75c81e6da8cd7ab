"""WebFinger documents and handle parsing, as Mastodon and Akkoma query them, without a
server."""

from __future__ import annotations

import httpx
import pytest

from webfinger.client import WebFingerLookupError, finger, self_link, split_handle
from webfinger.server import FingerTarget, WebFingerError, host_meta_xrd, jrd_for, parse_resource

HOST, BASE = "img.example", "https://img.example"


@pytest.mark.parametrize(
    ("resource", "key"),
    [
        ("acct:Bot@img.example", "bot"),
        ("acct%3Abot%40img.example", "bot"),  # percent-encoded, as some servers send it
        ("bot@IMG.example.", "bot"),
        ("@bot@img.example", "bot"),
        ("https://img.example/users/bot", "https://img.example/users/bot"),  # Akkoma asks by URL
    ],
)
def test_parse_resource(resource: str, key: str) -> None:
    assert parse_resource(resource, HOST, BASE) == key


@pytest.mark.parametrize(
    ("resource", "status"),
    [("", 400), ("acct:bot", 400), ("acct:bot@other.example", 404),
     ("https://other.example/users/bot", 404)],
)  # fmt: skip
def test_parse_resource_refuses(resource: str, status: int) -> None:
    with pytest.raises(WebFingerError) as info:
        parse_resource(resource, HOST, BASE)
    assert info.value.status == status


async def test_jrd_has_subject_and_self_link() -> None:
    async def lookup(key: str) -> FingerTarget | None:
        return FingerTarget("bot", f"{BASE}/users/bot", f"{BASE}/@bot") if key == "bot" else None

    jrd = await jrd_for("acct:BOT@img.example", lookup, host=HOST, base_url=BASE)
    assert jrd["subject"] == "acct:bot@img.example"
    assert self_link(jrd) == f"{BASE}/users/bot"
    with pytest.raises(WebFingerError):
        await jrd_for("acct:nobody@img.example", lookup, host=HOST, base_url=BASE)


def test_host_meta_template() -> None:
    assert 'template="https://img.example/.well-known/webfinger?resource={uri}"' in host_meta_xrd(
        BASE
    )


@pytest.mark.parametrize(
    "handle", ["user@host.example", "@user@host.example", "acct:user@host.example"]
)
def test_split_handle(handle: str) -> None:
    assert split_handle(handle) == ("user", "host.example")


def test_split_handle_refuses_garbage() -> None:
    with pytest.raises(WebFingerLookupError):
        split_handle("not a handle")


async def test_finger_caps_the_document_and_needs_a_self_link() -> None:
    def app(request: httpx.Request) -> httpx.Response:
        user = request.url.params["resource"].split(":")[1].split("@")[0]
        if user == "big":
            return httpx.Response(200, content=b"{" + b" " * 70_000 + b"}")
        if user == "noself":
            return httpx.Response(200, json={"subject": "acct:noself@h.example", "links": []})
        return httpx.Response(
            200,
            json={
                "subject": "acct:ok@h.example",
                "links": [
                    {
                        "rel": "self",
                        "type": "application/activity+json",
                        "href": "https://h.example/u/ok",
                    }
                ],
            },
        )

    async with httpx.AsyncClient(transport=httpx.MockTransport(app)) as client:
        assert (await finger(client, "ok@h.example"))[0] == "https://h.example/u/ok"
        with pytest.raises(WebFingerLookupError, match="too large"):
            await finger(client, "big@h.example")
        with pytest.raises(WebFingerLookupError, match="no ActivityPub self link"):
            await finger(client, "noself@h.example")
