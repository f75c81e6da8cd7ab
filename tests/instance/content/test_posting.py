"""Image posts as Notes, as Mastodon, Pixelfed, GoToSocial and Misskey read them; edits,
deletes, addressing."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from instance.content.posting import Draft, delete, edit, publish
from instance.errors import PostingError
from instance.storage.models import (
    Account,
    Delivery,
    Follow,
    MediaAttachment,
    OutboundActivity,
    PostTag,
)
from tests.instance_fixtures import AP_ACCEPT

AS_PUBLIC = "https://www.w3.org/ns/activitystreams#Public"


async def remote_follower(session, bot, n: int, host: str = "remote.example", shared=True):
    acct = Account(
        username=f"f{n}", username_key=f"f{n}", domain=host, local=False,
        uri=f"https://{host}/users/f{n}", inbox_uri=f"https://{host}/users/f{n}/inbox",
        shared_inbox_uri=f"https://{host}/inbox" if shared else None,
    )  # fmt: skip
    session.add(acct)
    await session.flush()
    session.add(Follow(follower_id=acct.id, followee_id=bot.id, uri=f"{acct.uri}#f", accepted=True))
    return acct


@pytest.fixture
async def image_post(runtime, new_account):
    bot = await new_account("painter", ai=True)
    async with runtime.session() as s:
        bot = await s.get(Account, bot.id)
        for n in range(3):
            await remote_follower(s, bot, n)
        media = MediaAttachment(
            account_id=bot.id, file_name="0" * 26 + ".png", media_type="image/png",
            width=512, height=512, blurhash="LEHV6nWB2yk8pyo0adR*.7kCMdnj",
            description="Foggy harbour at dawn",
        )  # fmt: skip
        s.add(media)
        await s.flush()
        post = await publish(
            s, runtime, bot,
            Draft(text="Foggy harbour at dawn #aiart", media=[media],
                  recipe={"prompt": "Foggy harbour at dawn", "seed": 7, "steps": 1}),
        )  # fmt: skip
    return bot, post


async def note_of(client, post):
    r = await client.get(post.uri, headers=AP_ACCEPT)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/activity+json"
    return r.json()


async def test_note_is_a_note_with_image_attachment(client, image_post) -> None:
    _, post = image_post
    note = await note_of(client, post)
    assert note["type"] == "Note"  # never a top-level Image: Mastodon shows those as a link
    assert isinstance(note["attachment"], list)  # an array, always
    (att,) = note["attachment"]
    assert att["type"] == "Image"
    # Pixelfed drops attachments without a PNG/JPEG mediaType
    assert att["mediaType"] == "image/png"
    assert att["url"].endswith(".png") and att["url"].startswith("http://127.0.0.1")


async def test_alt_text_in_name_and_summary(client, image_post) -> None:
    _, post = image_post
    (att,) = (await note_of(client, post))["attachment"]
    # alt text in both: readers differ
    assert att["name"] == att["summary"] == "Foggy harbour at dawn"


async def test_media_extensions(client, image_post) -> None:
    _, post = image_post
    (att,) = (await note_of(client, post))["attachment"]
    # the blurhash charset, <= 5 components
    assert att["blurhash"] == "LEHV6nWB2yk8pyo0adR*.7kCMdnj"
    assert att["focalPoint"] == [0.0, 0.0]
    assert (att["width"], att["height"]) == (512, 512)


async def test_public_addressing_and_context(client, image_post) -> None:
    bot, post = image_post
    note = await note_of(client, post)
    # Mastodon needs this exact string
    assert note["@context"][0] == "https://www.w3.org/ns/activitystreams"
    assert note["to"] == [AS_PUBLIC]  # the full IRI: not every server reads as:Public
    assert note["cc"] == [bot.followers_uri]
    assert note["attributedTo"] == bot.uri
    assert note["id"].startswith(bot.uri + "/posts/")  # ten failures #1: same host as actor
    assert note["url"].startswith("http://127.0.0.1")


async def test_hashtag_has_tag_entry(client, image_post) -> None:
    _, post = image_post
    note = await note_of(client, post)
    assert {
        "type": "Hashtag",
        "name": "#aiart",
        "href": f"{str(client.base_url).rstrip('/')}/tags/aiart",
    } in note["tag"]
    assert 'class="mention hashtag" rel="tag"' in note["content"]  # Mastodon keeps these classes


async def test_quote_policy_and_recipe(client, image_post) -> None:
    _, post = image_post
    note = await note_of(client, post)
    # others may quote (remix) our posts
    assert note["interactionPolicy"]["canQuote"]["automaticApproval"] == [AS_PUBLIC]
    assert note["recipe"]["seed"] == 7  # our namespace, re-runnable by other Dreamlooms
    ctx = note["@context"][1]
    assert (
        ctx["dreamloom"] == "https://dreamloom.dev/ns#"
        and ctx["recipe"]["@id"] == "dreamloom:recipe"
    )
    assert "quote" not in note  # a quote without a stamp shows "pending" on Mastodon


async def test_create_delivered_once_per_shared_inbox(runtime, image_post) -> None:
    _, post = image_post
    async with runtime.session() as s:
        act = await s.scalar(
            select(OutboundActivity).where(OutboundActivity.object_uri == post.uri)
        )
        inboxes = list(
            await s.scalars(select(Delivery.inbox_uri).where(Delivery.activity_id == act.id))
        )
    # a mention goes to the mentioned person's inbox
    assert inboxes == ["https://remote.example/inbox"]
    body = json.loads(act.body)
    assert body["type"] == "Create"
    # to/cc mirrored on the activity
    assert body["to"] == body["object"]["to"] and body["cc"] == body["object"]["cc"]


async def test_html_permalink_shows_recipe(client, image_post) -> None:
    _, post = image_post
    r = await client.get(post.url, headers={"Accept": "text/html"})
    assert r.status_code == 200
    assert f'href="{post.uri}"' in r.text  # the page links to its ActivityPub twin
    assert "Recipe" in r.text and "Foggy harbour at dawn" in r.text


async def test_edit_sends_update_with_updated(runtime, client, image_post) -> None:
    bot, post = image_post
    async with runtime.session() as s:
        bot, post = await s.get(Account, bot.id), await s.get(type(post), post.id)
        await edit(s, runtime, bot, post, text="Foggy harbour, edited")
    note = await note_of(client, post)
    assert "edited" in note["content"]
    assert note["updated"] and note["published"]  # Mastodon drops an edit without `updated`
    async with runtime.session() as s:
        update = await s.scalar(select(OutboundActivity).where(OutboundActivity.kind == "Update"))
    assert json.loads(update.body)["object"]["updated"] == note["updated"]


async def test_an_edit_that_removes_a_hashtag_no_longer_lists_it(runtime, image_post) -> None:
    """Mastodon replaces a post's tags with the Update's `tag`: a hashtag removed from the
    text must be gone from it (and from our tag pages), a new one there."""
    bot, post = image_post
    async with runtime.session() as s:
        bot, post = await s.get(Account, bot.id), await s.get(type(post), post.id)
        assert {"#aiart"} <= {t["name"] for t in post.tags if t["type"] == "Hashtag"}
        await edit(s, runtime, bot, post, text="Foggy harbour #sea")
    async with runtime.sessions() as s:
        update = await s.scalar(select(OutboundActivity).where(OutboundActivity.kind == "Update"))
        names = set(await s.scalars(select(PostTag.name).where(PostTag.post_id == post.id)))
    hashtags = {t["name"] for t in json.loads(update.body)["object"]["tag"]
                if t["type"] == "Hashtag"}  # fmt: skip
    assert hashtags == {"#sea"} and names == {"sea"}


async def test_delete_sends_tombstone_and_410(runtime, client, image_post) -> None:
    bot, post = image_post
    async with runtime.session() as s:
        bot, post = await s.get(Account, bot.id), await s.get(type(post), post.id)
        await delete(s, runtime, bot, post)
    r = await client.get(post.uri, headers=AP_ACCEPT)
    assert r.status_code == 410  # Gone
    async with runtime.session() as s:
        act = await s.scalar(select(OutboundActivity).where(OutboundActivity.kind == "Delete"))
    body = json.loads(act.body)
    assert body["object"] == {"id": post.uri, "type": "Tombstone"}


@pytest.mark.parametrize(
    ("visibility", "to_public", "cc_public"),
    [("public", True, False), ("unlisted", False, True), ("followers", False, False)],
)
async def test_visibility_addressing(runtime, new_account, visibility, to_public, cc_public):
    bot = await new_account("v" + visibility[:5], ai=True)
    async with runtime.session() as s:
        bot = await s.get(Account, bot.id)
        post = await publish(s, runtime, bot, Draft(text="hi", visibility=visibility))
    assert (AS_PUBLIC in post.to) is to_public
    assert (AS_PUBLIC in post.cc) is cc_public
    assert bot.followers_uri in post.to + post.cc


async def test_followers_only_post_not_served(runtime, client, new_account) -> None:
    bot = await new_account("private", ai=True)
    async with runtime.session() as s:
        bot = await s.get(Account, bot.id)
        post = await publish(s, runtime, bot, Draft(text="shh", visibility="followers"))
    assert (await client.get(post.uri, headers=AP_ACCEPT)).status_code == 404


@pytest.mark.parametrize("visibility", ["followers", "direct"])
async def test_a_private_post_lets_only_its_author_quote(runtime, new_account, visibility):
    """GoToSocial and Mastodon 4.5 read `interactionPolicy.canQuote.automaticApproval` as
    who may quote without asking: a followers-only or direct post never says Public there."""
    bot = await new_account("q" + visibility[:5], ai=True)
    async with runtime.session() as s:
        bot = await s.get(Account, bot.id)
        post = await publish(s, runtime, bot, Draft(text="hi", visibility=visibility))
    async with runtime.sessions() as s:
        ours = (OutboundActivity.kind == "Create", OutboundActivity.object_uri == post.uri)
        create = await s.scalar(select(OutboundActivity).where(*ours))
    note = json.loads(create.body)["object"]
    assert note["interactionPolicy"]["canQuote"]["automaticApproval"] == [bot.uri]


async def test_bad_visibility_is_an_error(runtime, new_account) -> None:
    bot = await new_account("badvis", ai=True)
    async with runtime.session() as s:
        bot = await s.get(Account, bot.id)
        with pytest.raises(PostingError, match="unknown visibility 'secret'"):
            await publish(s, runtime, bot, Draft(text="x", visibility="secret"))


async def test_a_post_its_activity_and_deliveries_read_the_runtime_clock(
    runtime, new_account
) -> None:
    """One clock: the post's `published`, its stored activity and its delivery rows (and the
    edit's `updated`) all take the runtime's time, so a test that moves the clock moves them."""
    moment = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
    runtime.clock = lambda: moment
    bot = await new_account("painter", ai=True)
    async with runtime.session() as s:
        bot = await s.get(Account, bot.id)
        await remote_follower(s, bot, 1)
        post = await publish(s, runtime, bot, Draft(text="on time"))
        await edit(s, runtime, bot, post, text="still on time")
    async with runtime.sessions() as s:
        activities = list(await s.scalars(select(OutboundActivity)))
        deliveries = list(await s.scalars(select(Delivery)))
    assert post.published == moment and post.edited_at == moment
    assert [a.created_at for a in activities] == [moment, moment]
    assert {(d.run_at, d.created_at) for d in deliveries} == {(moment, moment)}
