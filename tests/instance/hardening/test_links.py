"""Review finding 1 (docs/security.md): links from other servers never become script.

A remote actor's or post's `url`, an attachment's `url`, or the profile link of someone we
mention may be `javascript:...`. Whatever arrives, what we store and what we render as an
`href` or `src` is an http(s) URL or the object's id, and every HTML page forbids scripts
with a Content-Security-Policy, so even a link that slipped through could not run.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from activitypub.urls import safe_link
from instance.inbound.worker import InboxWorker
from instance.storage.models import Account, MediaAttachment, OutboundActivity, Post
from tests.instance.inbox_helpers import post

HOSTILE = "javascript:alert(document.cookie)"


@pytest.mark.parametrize(
    "value",
    [HOSTILE, "JavaScript:alert(1)", " javascript:alert(1)", "java\tscript:alert(1)",
     "data:text/html,<script>alert(1)</script>", "//evil.example/x", "/relative",
     "https://ok.example/\nx", "vbscript:msgbox(1)", "", None, 42,
     # red-team note: a bidi override or a zero-width mark makes a link read as another
     "https://evil.example/\u202egro.elpmaxe.knab", "https://bank\u200b.example/"],
)  # fmt: skip
def test_only_http_urls_are_links(value) -> None:
    assert safe_link(value, "fallback") == "fallback"


def test_http_urls_stay_as_they_are() -> None:
    for url in ("https://a.example/@alice", "http://127.0.0.1:8000/users/x?page=1#frag"):
        assert safe_link(url) == url


@pytest.fixture
async def bot(new_account):
    return await new_account("painter", ai=True)


async def test_a_hostile_url_on_a_remote_actor_never_reaches_our_pages_or_our_posts(
    runtime, client, fedi, bot
) -> None:
    """The attack: an actor whose `url` is `javascript:` mentions an AI account; the bot's
    automatic reply would carry that link into our own post, and our pages would show it."""
    mallory = fedi.actor("mallory", url=HOSTILE, icon={"type": "Image", "url": HOSTILE})
    note = mallory.note(
        f'<p><a href="{HOSTILE}">@painter</a></p>', url=HOSTILE,
        tag=[{"type": "Mention", "href": bot.uri}], cc=[bot.uri],
        attachment=[{"type": "Image", "mediaType": "image/png", "url": HOSTILE, "name": "x"}],
    )  # fmt: skip
    assert (await post(client, runtime, mallory, mallory.create(note))).status_code == 202
    await InboxWorker(runtime).run_once()
    async with runtime.sessions() as s:
        account = await s.scalar(select(Account).where(Account.uri == mallory.uri))
        stored = await s.scalar(select(Post).where(Post.uri == note["id"]))
        media = list(await s.scalars(select(MediaAttachment)))
        replies = [json.loads(r.body) for r in await s.scalars(select(OutboundActivity))]
    assert account.url is None and account.avatar_url is None
    assert stored.url == note["id"] and "javascript" not in stored.content
    assert media == []  # an attachment without an http(s) URL is not kept
    (reply,) = replies  # "mention me with a description": our own post, with a link to her
    assert "javascript" not in reply["object"]["content"]
    assert f'href="{mallory.uri}"' in reply["object"]["content"]
    for path in ("/federated", f"/@painter/{reply['object']['id'].rsplit('/', 1)[1]}"):
        page = await client.get(path)
        assert page.status_code == 200
        assert "javascript" not in page.text.lower()


async def test_every_html_page_forbids_scripts_and_framing(client) -> None:
    for path in ("/", "/about", "/local", "/federated", "/login"):
        headers = (await client.get(path)).headers
        policy = headers["content-security-policy"]
        assert "default-src 'none'" in policy and "script-src" not in policy
        assert "frame-ancestors 'none'" in policy and headers["x-frame-options"] == "DENY"
