"""The feed's pages over HTTP (issue 15): the front page and profiles as an image grid whose
every card carries the AI label, the alt text and the image's size; srcset URLs that answer
with images of the width they state; renditions made once; link previews (OpenGraph and
Twitter tags) on public pages only, escaped."""

from __future__ import annotations

import html
import io
import re

import pytest
from PIL import Image
from sqlalchemy import select

from instance.content import renditions
from instance.content.timelines import Entry
from instance.generation.worker import GenerationWorker
from instance.storage.models import Account, MediaAttachment, Post
from instance.web.cards import cards
from instance.web.previews import post_tags
from tests.instance.generation_fixtures import gen_settings, tiny_cache  # noqa: F401
from tests.instance.web_helpers import PASSWORD, fast_hasher, logged_in  # noqa: F401

pytestmark = pytest.mark.usefixtures("fast_hasher")
IMG = re.compile(r"<img [^>]*>")
W, H = 704, 64  # wider than both rendition widths, and cheap to generate on a CPU
META = re.compile(r'<meta (?:property|name)="((?:og|twitter|profile):[^"]+)" content="([^"]*)">')


@pytest.fixture
def settings(gen_settings):  # noqa: F811
    return gen_settings(width=W, height=H, steps=1, max_queue=8)


async def run_jobs(rt) -> None:
    worker = GenerationWorker(rt)
    try:
        while await worker.run_once():
            pass
    finally:
        await worker.aclose()


async def make_posts(client, rt, prompts, **extra) -> list[Post]:
    token = await logged_in(client, "alice")
    for prompt in prompts:
        r = await client.post("/compose", data={"csrf": token, "prompt": prompt, **extra})
        assert r.status_code == 303, r.text
    await run_jobs(rt)
    async with rt.sessions() as s:
        return list(await s.scalars(select(Post).order_by(Post.id)))


def attrs(tag: str) -> dict[str, str]:
    return {k: html.unescape(v) for k, v in re.findall(r'([a-z-]+)="([^"]*)"', tag)}


def tags_of(page: str) -> dict[str, str]:
    return {k: html.unescape(v) for k, v in META.findall(page)}


async def test_front_page_and_profile_are_a_grid_of_labelled_sized_images(
    runtime, client, new_account
):
    """Home and profile show one tile per post, picture first, with the AI label, the author
    and the counts; each <img> has alt text, width/height, and a srcset whose every URL
    answers 200 with an image exactly the width it states; later tiles load lazily."""
    await new_account("alice", password=PASSWORD, ai=True)
    posts = await make_posts(client, runtime, [f"a lighthouse number {i}" for i in range(7)])
    assert len(posts) == 7
    for path in ("/", "/@alice"):
        page = (await client.get(path)).text
        tiles = re.findall(r'<article class="tile[^"]*">(.*?)</article>', page, re.S)
        assert len(tiles) == 7, path
        for n, tile in enumerate(tiles):
            assert tile.lstrip().startswith('<a class="pic"'), "the picture comes first"
            assert "AI-generated</span>" in tile and ">alice</a>" in tile and "♥ 0" in tile
            (img,) = IMG.findall(tile)
            a = attrs(img)
            assert a["alt"].startswith("AI-generated image: a lighthouse number")
            assert (a["width"], a["height"]) == (str(W), str(H))
            assert a["loading"] == ("eager" if n < 6 else "lazy")
            assert "sizes" in a
            sources = [s.rsplit(" ", 1) for s in a["srcset"].split(", ")]
            assert [w for _, w in sources] == ["320w", "640w", f"{W}w"]
            for url, width in sources:
                r = await client.get(url)
                assert r.status_code == 200, url
                with Image.open(io.BytesIO(r.content)) as im:
                    assert f"{im.width}w" == width
    # the timelines keep the full cards, with srcset too
    local = (await client.get("/local")).text
    assert '<article class="post">' in local and 'srcset="' in local and "AI-generated" in local


async def test_renditions_are_made_when_the_image_is_stored_and_served_as_they_are(
    runtime, client, new_account
):
    """A generated image gets its 320 and 640 px renditions when stored; the route serves
    those files without remaking them; an image without renditions (an older one) gets
    them on first request; a width we do not make is a 404."""
    await new_account("alice", password=PASSWORD)
    (post,) = await make_posts(client, runtime, ["a red lighthouse"])
    async with runtime.sessions() as s:
        media = await s.scalar(select(MediaAttachment).where(MediaAttachment.post_id == post.id))
    original = runtime.settings.media_path / media.file_name
    made = {w: original.with_name(renditions.rendition_name(original.name, w)) for w in (320, 640)}
    assert all(p.is_file() for p in made.values())
    before = {w: p.stat().st_mtime_ns for w, p in made.items()}
    r = await client.get(runtime.urls.media(made[320].name))
    assert r.status_code == 200 and r.headers["content-type"] == "image/webp"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.content == made[320].read_bytes()
    assert {w: p.stat().st_mtime_ns for w, p in made.items()} == before, "not remade"
    made[640].unlink()  # as for an image stored before renditions existed
    r = await client.get(runtime.urls.media(made[640].name))
    assert r.status_code == 200 and made[640].is_file()
    with Image.open(made[640]) as im:
        assert im.size == (640, round(H * 640 / W))
    stem = original.name.rsplit(".", 1)[0]
    assert (await client.get(runtime.urls.media(f"{stem}.w500.webp"))).status_code == 404
    assert (await client.get(runtime.urls.media(f"{'z' * 26}.w320.webp"))).status_code == 404


async def test_a_small_image_has_no_renditions_and_its_srcset_is_the_original(
    runtime,
    client,
    new_account,
    gen_settings,  # noqa: F811
):
    """Only renditions smaller than the original exist: a 64 px image has none, its srcset
    names the original alone, and asking for a 320 px copy is a 404."""
    runtime.settings.generator.width = runtime.settings.generator.height = 64
    await new_account("alice", password=PASSWORD)
    (post,) = await make_posts(client, runtime, ["a tiny lighthouse"], width="64", height="64")
    async with runtime.sessions() as s:
        media = await s.scalar(select(MediaAttachment).where(MediaAttachment.post_id == post.id))
    if media.width != 64:
        pytest.skip("compose does not take a size here")
    page = (await client.get("/")).text
    (img,) = IMG.findall(page)
    assert attrs(img)["srcset"] == f"{runtime.urls.media(media.file_name)} 64w"
    name = renditions.rendition_name(media.file_name, 320)
    assert (await client.get(runtime.urls.media(name))).status_code == 404


async def test_a_public_post_and_profile_have_link_previews(runtime, client, new_account):
    """A public post's page carries og:/twitter: tags with the prompt and the AI label, the
    picture as an absolute URL with its size and alt text; the profile has them too."""
    await new_account("alice", password=PASSWORD, ai=True)
    (post,) = await make_posts(client, runtime, ["a red lighthouse"])
    tags = tags_of((await client.get(post.url, headers={"Accept": "text/html"})).text)
    assert tags["og:type"] == "article" and tags["og:url"] == post.url
    assert tags["og:description"] == "AI-generated image: a red lighthouse"
    assert tags["og:image"].startswith(runtime.urls.media("")) and tags["og:image"].endswith(".png")
    assert (tags["og:image:width"], tags["og:image:height"]) == (str(W), str(H))
    assert tags["og:image:alt"] == "AI-generated image: a red lighthouse"
    assert tags["twitter:card"] == "summary_large_image"
    assert tags["twitter:image"] == tags["og:image"]
    assert tags["twitter:image:alt"] == tags["og:image:alt"]
    assert (await client.get(tags["og:image"])).status_code == 200
    profile = tags_of((await client.get("/@alice")).text)
    assert profile["og:type"] == "profile" and profile["og:image"] == tags["og:image"]
    assert profile["og:description"].startswith("AI account")


async def test_a_followers_only_post_has_no_preview_and_the_profile_does_not_leak_it(
    runtime, client, new_account
):
    """A followers-only post's page (seen by its author) has no og:/twitter: tags at all, and
    its picture is never the profile's preview image."""
    await new_account("alice", password=PASSWORD)
    (post,) = await make_posts(client, runtime, ["a secret garden"], visibility="followers")
    assert post.visibility == "followers"
    r = await client.get(post.url, headers={"Accept": "text/html"})
    assert not META.findall(r.text) and "og:" not in r.text
    async with runtime.sessions() as s:  # the rule itself, whoever renders the page
        row = await s.get(Post, post.id)
        author = await s.get(Account, row.account_id)
        (view,) = await cards(s, runtime, [Entry(row.published, row, author, None)], author)
    assert post_tags(runtime, row, author, view) == []
    row.visibility = "public"  # the same post made public would have a preview
    assert ("og:description", "AI-generated image: a secret garden") in post_tags(
        runtime, row, author, view
    )
    profile = (await client.get("/@alice")).text
    assert 'class="tile' in profile  # on the author's own grid
    tags = tags_of(profile)
    assert "og:image" not in tags and tags["twitter:card"] == "summary"
    assert "secret" not in " ".join(tags.values())


async def test_a_hostile_prompt_stays_inside_its_attribute(runtime, client, new_account):
    """Quotes, angle brackets and ampersands in a prompt are escaped in the tags: the
    page gets no element from it, and the attribute reads back as the prompt."""
    hostile = 'x" onload="alert(1)"><script>alert(2)</script> & \'q\''
    await new_account("alice", password=PASSWORD)
    (post,) = await make_posts(client, runtime, [hostile])
    page = (await client.get(post.url, headers={"Accept": "text/html"})).text
    assert "<script>" not in page and 'onload="alert' not in page
    assert tags_of(page)["og:description"].endswith(hostile)


async def test_renditions_live_and_die_with_their_image(runtime, client, new_account):
    """`media prune` counts an image's renditions as part of it (not orphans), but a
    rendition whose image no row names is an orphan; deleting the account removes the
    renditions with the image."""
    from instance.content.account_delete import delete_account
    from instance.maintenance.prune import find_orphans

    alice = await new_account("alice", password=PASSWORD)
    (post,) = await make_posts(client, runtime, ["a red lighthouse"])
    async with runtime.sessions() as s:
        media = await s.scalar(select(MediaAttachment).where(MediaAttachment.post_id == post.id))
    original = runtime.settings.media_path / media.file_name
    kept = [original.with_name(n) for n in renditions.names_of(original.name)]
    assert all(p.is_file() for p in kept)
    stray = runtime.settings.media_path / renditions.rendition_name(f"{'q' * 26}.png", 320)
    stray.write_bytes(kept[0].read_bytes())
    assert (await find_orphans(runtime)).files == [stray.name]  # keys in the media store
    await delete_account(runtime, alice)
    assert not original.exists() and not any(p.exists() for p in kept)


async def test_an_avatar_has_a_rendition_and_a_suspended_accounts_renditions_are_hidden(
    runtime, client, new_account
):
    """An uploaded avatar (400 px) gets its 320 px rendition; once the account is suspended,
    its renditions answer 403 like its images, also one not made yet."""
    from instance.content.pictures import set_picture
    from instance.content.suspensions import suspend
    from instance.moderation.suspension import HiddenMedia

    alice = await new_account("alice", password=PASSWORD)
    (post,) = await make_posts(client, runtime, ["a red lighthouse"])
    png = io.BytesIO()
    Image.new("RGB", (900, 900), (200, 40, 90)).save(png, "PNG")
    async with runtime.session() as s:
        row = await s.get(Account, alice.id)
        url = await set_picture(runtime, row, "avatar", png.getvalue())
    name = url.rsplit("/", 1)[1]
    small = renditions.rendition_name(name, 320)
    assert (runtime.settings.media_path / small).is_file()
    assert not (runtime.settings.media_path / renditions.rendition_name(name, 640)).exists()
    assert (await client.get(runtime.urls.media(small))).status_code == 200
    async with runtime.sessions() as s:
        media = await s.scalar(select(MediaAttachment).where(MediaAttachment.post_id == post.id))
    later = runtime.settings.media_path / renditions.rendition_name(media.file_name, 640)
    later.unlink()
    async with runtime.session() as s:
        assert await suspend(runtime, await s.get(Account, alice.id))
    runtime.service(HiddenMedia).read_at = -1.0  # read the suspended list now, not in 5 s
    for hidden in (renditions.rendition_name(media.file_name, 320), later.name):
        assert (await client.get(runtime.urls.media(hidden))).status_code == 403
    assert not later.exists(), "nothing is made for a hidden image"
