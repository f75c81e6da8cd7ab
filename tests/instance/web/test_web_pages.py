"""The local users' pages in-process: compose -> job page -> post, each button changing state
once, remixes, follow, notifications, and the refusals shown on the page."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from instance.generation.worker import GenerationWorker
from instance.storage.models import (
    Account,
    Boost,
    Follow,
    GenerationJob,
    Like,
    OutboundActivity,
    Post,
    QuoteAuthorization,
)
from tests.instance.generation_fixtures import gen_settings, tiny_cache  # noqa: F401
from tests.instance.web_helpers import (
    PASSWORD,
    fast_hasher,  # noqa: F401
    logged_in,
)

pytestmark = pytest.mark.usefixtures("fast_hasher")


@pytest.fixture
def settings(gen_settings):  # noqa: F811
    return gen_settings(width=32, height=32, steps=1, max_queue=2)


@pytest.fixture
async def alice(new_account):
    return await new_account("alice", password=PASSWORD)


@pytest.fixture
async def token(client, alice) -> str:
    return await logged_in(client, "alice")


async def run_jobs(rt) -> None:
    worker = GenerationWorker(rt)
    try:
        while await worker.run_once():
            pass
    finally:
        await worker.aclose()


async def count(rt, model, *where) -> int:
    async with rt.sessions() as s:
        return await s.scalar(select(func.count()).select_from(model).where(*where))


async def compose(client, token, prompt="a red lighthouse", **extra):
    return await client.post("/compose", data={"csrf": token, "prompt": prompt, **extra})


async def test_compose_queues_a_job_and_its_page_shows_the_post(runtime, client, token):
    r = await compose(client, token, negative="fog", visibility="unlisted")
    assert r.status_code == 303 and r.headers["location"].startswith("/jobs/")
    job_url = r.headers["location"]
    waiting = await client.get(job_url)
    assert waiting.status_code == 200 and 'http-equiv="refresh"' in waiting.text
    assert "queued" in waiting.text and "a red lighthouse" in waiting.text
    await run_jobs(runtime)
    done = await client.get(job_url)
    assert 'http-equiv="refresh"' not in done.text and "Posted" in done.text
    assert re.search(r'<img src="[^"]+/media/[^"]+\.png"', done.text)
    async with runtime.sessions() as s:
        post = await s.scalar(select(Post))
    assert post.visibility == "unlisted" and post.recipe["negativePrompt"] == "fog"
    assert f"/posts/{post.public_id}/like" in done.text  # the card carries the buttons


async def test_a_job_page_is_its_owners_only(runtime, client, token, new_account):
    r = await compose(client, token)
    job_url = r.headers["location"]
    await new_account("bob", password=PASSWORD)
    await client.post("/logout", data={"csrf": token})
    await logged_in(client, "bob")
    assert (await client.get(job_url)).status_code == 404


@pytest.fixture
async def post(runtime, new_account):
    from instance.content.posting import Draft, publish

    bob = await new_account("bob")
    async with runtime.session() as s:
        bob = await s.get(Account, bob.id)
        return await publish(s, runtime, bob, Draft(text="bob's picture"))


async def test_like_and_boost_change_state_once(runtime, client, token, post):
    for action in ("like", "like", "boost", "boost"):
        r = await client.post(f"/posts/{post.public_id}/{action}",
                              data={"csrf": token, "back": "/local"})  # fmt: skip
        assert r.status_code == 303 and r.headers["location"] == "/local"
    async with runtime.sessions() as s:
        row = await s.get(Post, post.id)
    assert (row.likes_count, row.boosts_count) == (1, 1)
    assert await count(runtime, Like) == 1 and await count(runtime, Boost) == 1
    page = (await client.get("/local")).text
    assert "♥ Liked" in page and "↻ Boosted" in page and f"/posts/{post.public_id}/unlike" in page
    for action in ("unlike", "unlike", "unboost"):
        await client.post(f"/posts/{post.public_id}/{action}", data={"csrf": token})
    async with runtime.sessions() as s:
        row = await s.get(Post, post.id)
    assert (row.likes_count, row.boosts_count) == (0, 0)


async def test_bob_is_notified_and_sees_it(runtime, client, token, post):
    await client.post(f"/posts/{post.public_id}/like", data={"csrf": token})
    await client.post("/logout", data={"csrf": token})
    async with runtime.session() as s:
        from instance.accounts import hash_password

        (await s.get(Account, post.account_id)).password_hash = hash_password(PASSWORD)
    await logged_in(client, "bob")
    page = (await client.get("/notifications")).text
    assert "@alice" in page and "liked your post" in page


async def test_three_kinds_of_remix_queue_jobs(runtime, client, token):
    await compose(client, token, "a lighthouse")
    await run_jobs(runtime)
    async with runtime.sessions() as s:
        parent = await s.scalar(select(Post))
    kinds = [("seed", ""), ("prompt", "a lighthouse in snow"), ("image", "")]
    for kind, prompt in kinds:
        r = await client.post(f"/posts/{parent.public_id}/remix",
                              data={"csrf": token, "kind": kind, "prompt": prompt})  # fmt: skip
        assert r.status_code == 303 and r.headers["location"].startswith("/jobs/"), r.text
        await run_jobs(runtime)
    async with runtime.sessions() as s:
        remixes = list(await s.scalars(select(Post).where(Post.quote_id == parent.id)))
    assert len(remixes) == 3
    assert {r.recipe["prompt"] for r in remixes} == {"a lighthouse", "a lighthouse in snow"}
    assert any(r.recipe.get("strength") for r in remixes)
    missing = await client.post(f"/posts/{parent.public_id}/remix",
                                data={"csrf": token, "kind": "prompt"})  # fmt: skip
    assert missing.status_code == 400 and "Type the edited prompt" in missing.text


async def test_refusals_are_shown_on_the_page(runtime, client, token):
    empty = await compose(client, token, "  ")
    assert empty.status_code == 400 and "Type a prompt" in empty.text
    long = await compose(client, token, "word " * 900)
    assert long.status_code == 400 and "too long" in long.text
    assert "word word" in long.text  # the prompt is kept in the form
    for _ in range(2):
        assert (await compose(client, token)).status_code == 303
    full = await compose(client, token)
    assert full.status_code == 503 and full.headers["retry-after"] == "60"
    assert "generation queue is full" in full.text
    assert await count(runtime, GenerationJob) == 2


async def test_follow_by_handle(runtime, client, token, alice, new_account, settings):
    await new_account("bob")
    r = await client.post("/follow", data={"csrf": token, "handle": f"@bob@{settings.host}"})
    assert r.status_code == 303
    page = await client.get(r.headers["location"])
    assert "Following @bob" in page.text
    assert await count(runtime, Follow, Follow.follower_id == alice.id) == 1
    bad = await client.post("/follow", data={"csrf": token, "handle": "@nobody"})
    assert bad.status_code == 400 and "no local account named" in bad.text
    me = await client.post("/follow", data={"csrf": token, "handle": "alice"})
    assert me.status_code == 400 and "cannot follow itself" in me.text


async def test_home_needs_login_and_public_timelines_do_not(client):
    r = await client.get("/home")
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/home"
    for path in ("/local", "/federated"):
        page = await client.get(path)
        assert page.status_code == 200 and "Log in" in page.text
        assert "/like" not in page.text


async def test_home_shows_followed_posts_with_buttons(runtime, client, token, post, settings):
    await client.post("/follow", data={"csrf": token, "handle": "bob"})
    page = (await client.get("/home")).text
    assert "bob&#x27;s picture" in page and "@bob@" in page
    assert f"/posts/{post.public_id}/like" in page and "Remix" in page


async def test_the_author_revokes_a_remote_remix_from_the_posts_page(runtime, client, token):
    """On her own post's page, alice sees "Revoke approval" beside each remote remix she
    approved; pressing it withdraws the stamp (a Delete of it is federated) and the remix is
    no longer listed. A remix she never approved is refused with a reason."""
    await compose(client, token, "a lighthouse")
    await run_jobs(runtime)
    async with runtime.session() as s:
        parent = await s.scalar(select(Post))
        rem = Account(username="rem", username_key="rem", domain="remote.example", local=False,
                      uri="https://remote.example/users/rem",
                      inbox_uri="https://remote.example/users/rem/inbox")  # fmt: skip
        s.add(rem)
        await s.flush()
        remix = Post(uri="https://remote.example/users/rem/statuses/1", account_id=rem.id,
                     local=False, content="<p>mine</p>", visibility="public",
                     quote_uri=parent.uri, quote_id=parent.id)  # fmt: skip
        s.add(remix)
        s.add(QuoteAuthorization(post_id=parent.id, quoting_uri=remix.uri, actor_uri=rem.uri))
    page = (await client.get(parent.url, headers={"Accept": "text/html"})).text
    assert "Revoke approval" in page and f'value="{remix.uri}"' in page
    r = await client.post(f"/posts/{parent.public_id}/revoke-remix",
                          data={"csrf": token, "remix": remix.uri})  # fmt: skip
    assert r.status_code == 303
    async with runtime.sessions() as s:
        stamp = await s.scalar(select(QuoteAuthorization))
        kinds = [a.kind for a in await s.scalars(select(OutboundActivity))]
    assert stamp.revoked_at is not None and "Delete" in kinds
    page = (await client.get(parent.url, headers={"Accept": "text/html"})).text
    assert remix.uri not in page
    again = await client.post(f"/posts/{parent.public_id}/revoke-remix",
                              data={"csrf": token, "remix": "https://x.example/1"})  # fmt: skip
    assert again.status_code == 404 and "not approved that remix" in again.text


async def test_every_card_of_a_generated_image_says_so(runtime, client, token):
    """The label is on each card, not only beside an AI account's name: a person's own
    generated image is marked too."""
    await compose(client, token, "a lighthouse")
    await run_jobs(runtime)
    page = (await client.get("/local")).text
    assert page.count('title="Made by an AI model">AI-generated</span>') == 1
    assert "#<span>AIGenerated</span>" in page


async def test_compose_with_a_content_warning_and_edit_from_the_posts_page(
    runtime, client, token
):
    """The compose form takes a content warning, the sensitive flag and the language; the
    card hides the image behind the warning; the author edits text and warning from the
    post's page (an Update is federated). A bad language is refused on the form."""
    bad = await compose(client, token, "a lighthouse", language="not a language")
    assert bad.status_code == 400 and "not a language code" in bad.text
    await compose(client, token, "a lighthouse", cw="storm", language="fr")
    await run_jobs(runtime)
    async with runtime.sessions() as s:
        post = await s.scalar(select(Post))
    assert (post.summary, post.sensitive, post.language) == ("storm", True, "fr")
    page = (await client.get(post.url, headers={"Accept": "text/html"})).text
    assert '<details class="cw"><summary>storm' in page and "Edit this post" in page
    form = {"csrf": token, "text": "a lighthouse in fog", "cw": ""}
    r = await client.post(f"/posts/{post.public_id}/edit", data=form)
    assert r.status_code == 303
    async with runtime.sessions() as s:
        post = await s.get(Post, post.id)
        kinds = [a.kind for a in await s.scalars(select(OutboundActivity))]
    assert "fog" in post.content and post.summary is None and post.edited_at is not None
    assert "Update" in kinds
