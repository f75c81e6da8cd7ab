"""Ask by mention: a remote actor mentions an AI account with a prompt and gets a picture back
as a reply; refusals (empty, blocked, over quota, failed generation) are replies that say why."""

from __future__ import annotations

import html
import json

import pytest
from sqlalchemy import select

from instance.generation.asks import QUOTA_PER_ACCOUNT
from instance.inbound.worker import InboxWorker
from instance.storage.models import GenerationJob, OutboundActivity
from tests.instance.fediverse import PUBLIC
from tests.instance.generation_fixtures import gen_settings, run_generation, tiny_cache  # noqa: F401
from tests.instance.inbox_helpers import post


@pytest.fixture
def settings(gen_settings):  # noqa: F811
    return gen_settings(max_queue=32)  # remote asks may fill half: more than one asker's quota


@pytest.fixture
async def bot(new_account):
    return await new_account("painter", ai=True, persona={"style": "linocut"})


@pytest.fixture
def alice(fedi):
    return fedi.actor("alice")


MENTION_MARKUP = {
    # app/lib/text_formatter.rb (link_to_mention)
    "mastodon": '<span class="h-card" translate="no"><a href="{url}" class="u-url mention">'
    "@<span>painter</span></a></span>",
    # internal/text/replace.go: the same shape, without translate="no"
    "gotosocial": '<span class="h-card"><a href="{url}" class="u-url mention">@<span>painter'
    "</span></a></span>",
    # Akkoma: the h-card with data-user and rel attributes, class before href
    "akkoma": '<span class="h-card"><a class="u-url mention" data-user="9x" href="{url}" '
    'rel="ugc">@<span>painter</span></a></span>',
    # a plain link, the whole handle as its text and no class (Misskey's MFM to HTML):
    # known as a mention only because its href is the Mention tag's
    "misskey": '<a href="{uri}">@painter@{host}</a>',
}


@pytest.fixture
def mention(client, runtime, bot, alice):
    async def send(text: str, markup: str = "mastodon") -> dict:
        link = MENTION_MARKUP[markup].format(url=bot.url, uri=bot.uri, host=runtime.settings.host)
        note = alice.note(
            f"<p>{link} {text}</p>",
            tag=[{"type": "Mention", "href": bot.uri, "name": f"@painter@{runtime.settings.host}"}],
            cc=[bot.uri],
        )
        r = await post(client, runtime, alice, alice.create(note))
        assert r.status_code == 202, r.text
        await InboxWorker(runtime).run_once()
        return note

    return send


async def replies_to(runtime, note_id: str) -> list[dict]:
    """The Creates our bot sent in reply to `note_id`, with their recipients."""
    async with runtime.sessions() as s:
        rows = await s.scalars(select(OutboundActivity).where(OutboundActivity.kind == "Create"))
        notes = [json.loads(r.body)["object"] for r in rows]
    return [n for n in notes if n.get("inReplyTo") == note_id]


async def test_mention_with_prompt_gets_an_image_reply(runtime, mention, alice, bot) -> None:
    note = await mention("a red fox in the snow")
    assert await replies_to(runtime, note["id"]) == []  # the image comes when it is made
    await run_generation(runtime)
    (reply,) = await replies_to(runtime, note["id"])
    assert reply["attributedTo"] == bot.uri
    (image,) = reply["attachment"]
    assert image["mediaType"] == "image/png"
    assert image["name"] == "AI-generated image: a red fox in the snow, linocut"  # + style
    assert {"type": "Mention", "href": alice.uri, "name": "@alice@remote.example"} in reply["tag"]
    assert alice.uri in reply["to"] + reply["cc"]  # mentioned and addressed: notified
    assert reply["recipe"]["prompt"] == "a red fox in the snow, linocut"
    async with runtime.sessions() as s:
        job = await s.scalar(select(GenerationJob))
    assert job.requested_by == alice.uri


@pytest.mark.parametrize("markup", sorted(MENTION_MARKUP))
async def test_the_bots_own_mention_is_not_in_the_prompt(runtime, mention, markup) -> None:
    """Each server's mention markup is left out of the prompt by its structure (the link's
    class, or its href being a Mention tag's): the picture is of what was asked, and a bare
    mention gets the "describe a picture" answer rather than a picture of "@ painter"."""
    note = await mention("a red fox in the snow", markup)
    await run_generation(runtime)
    (reply,) = await replies_to(runtime, note["id"])
    assert reply["attachment"][0]["name"].endswith(": a red fox in the snow, linocut")
    bare = await mention("", markup)
    (refused,) = await replies_to(runtime, bare["id"])
    assert "Mention me with a description" in html.unescape(refused["content"])
    assert refused["attachment"] == []


async def test_same_mention_twice_is_answered_once(runtime, client, mention, alice, bot) -> None:
    note = await mention("an owl")
    # the same note again under another activity id (shared + personal inbox copies)
    r = await post(client, runtime, alice, alice.create(note))
    assert r.status_code == 202
    await InboxWorker(runtime).run_once()
    await run_generation(runtime)
    assert len(await replies_to(runtime, note["id"])) == 1


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "Mention me with a description"),
        ("nude portrait", "something I don't draw"),
    ],
)
async def test_refusals_are_replies_that_say_why(runtime, mention, text, says) -> None:
    note = await mention(text)
    (reply,) = await replies_to(runtime, note["id"])
    assert says in html.unescape(reply["content"])
    assert reply["attachment"] == []


async def test_quota_per_asker(runtime, mention) -> None:
    for n in range(QUOTA_PER_ACCOUNT):
        await mention(f"a heron number {n}")
    note = await mention("one more heron")
    (reply,) = await replies_to(runtime, note["id"])
    assert "my limit per person" in html.unescape(reply["content"])


async def test_failed_generation_says_why(runtime, mention) -> None:
    # 100 words: fine for the character limit, too many tokens for CLIP, which would truncate
    note = await mention(" ".join(["lighthouse"] * 100))
    await run_generation(runtime)
    (reply,) = await replies_to(runtime, note["id"])
    assert "couldn't make that picture" in html.unescape(reply["content"])
    assert "prompt too long" in reply["content"]


async def test_bots_do_not_answer_bots(runtime, fedi, client, bot) -> None:
    robo = fedi.actor("robo", host="bots.example", type="Service")
    note = robo.note("<p>@painter a cat</p>",
                     tag=[{"type": "Mention", "href": bot.uri, "name": "@painter"}])  # fmt: skip
    assert (await post(client, runtime, robo, robo.create(note))).status_code == 202
    await InboxWorker(runtime).run_once()
    async with runtime.sessions() as s:
        assert await s.scalar(select(GenerationJob)) is None
    assert await replies_to(runtime, note["id"]) == []


async def test_public_mention_reply_is_unlisted(runtime, mention) -> None:
    note = await mention("a teapot")
    await run_generation(runtime)
    (reply,) = await replies_to(runtime, note["id"])
    assert PUBLIC in reply["cc"] and PUBLIC not in reply["to"]
