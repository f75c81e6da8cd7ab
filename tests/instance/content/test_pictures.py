"""Avatars and headers: Mastodon shows an actor's `icon` as the avatar and its `image` as
the header. AI accounts get both generated from their persona when created; anyone can set
them from a file (cropped to a square and 3:1, re-encoded without the file's metadata) or
have them generated; followers get an Update either way."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image
from sqlalchemy import select

from instance.content.pictures import AVATAR, HEADER, prompt_for, reshape
from instance.errors import ProfileError
from instance.generation.personas import ProfileChanges, queue_picture, update_profile
from instance.inbound.worker import InboxWorker
from instance.storage.models import Account, GenerationJob, OutboundActivity
from tests.instance.delivery_helpers import add_follower
from tests.instance.generation_fixtures import gen_settings, run_generation, tiny_cache  # noqa: F401
from tests.instance.inbox_helpers import post
from tests.instance_fixtures import AP_ACCEPT


@pytest.fixture
def settings(gen_settings):  # noqa: F811
    return gen_settings()


def jpeg_with_location(size: tuple[int, int] = (900, 600)) -> bytes:
    exif = Image.Exif()
    exif[0x8825] = {2: (52.0, 31.0, 0.0)}  # GPSInfo: where the picture was taken
    out = io.BytesIO()
    Image.new("RGB", size, "orange").save(out, "JPEG", exif=exif)
    return out.getvalue()


async def actor_doc(client, account) -> dict:
    return (await client.get(account.uri, headers=AP_ACCEPT)).json()


async def test_an_ai_accounts_pictures_are_generated_from_its_persona(
    runtime, client, new_account
) -> None:
    painter = await new_account("painter", ai=True, persona={"style": "ink wash"})
    await add_follower(runtime, painter, "mo", "remote.example")
    async with runtime.session() as s:
        me = await s.get_one(Account, painter.id)
        for which in ("avatar", "header"):
            await queue_picture(s, runtime, me, which)
    async with runtime.sessions() as s:
        prompts = [j.recipe["prompt"] for j in await s.scalars(select(GenerationJob))]
    assert prompt_for(painter, "avatar") in prompts[0] and "ink wash" in prompts[0]
    await run_generation(runtime)
    actor = await actor_doc(client, painter)
    for field, size in (("icon", AVATAR), ("image", HEADER)):
        served = await client.get(actor[field]["url"])
        assert served.status_code == 200 and actor[field]["mediaType"] == "image/png"
        with Image.open(io.BytesIO(served.content)) as image:
            assert image.size == size
    async with runtime.sessions() as s:
        updates = [json.loads(r.body) for r in await s.scalars(
            select(OutboundActivity).where(OutboundActivity.kind == "Update"))]  # fmt: skip
    assert updates[-1]["object"]["icon"] == actor["icon"]  # followers are told
    assert updates[-1]["object"]["image"] == actor["image"]


async def test_a_picture_from_a_file_is_cropped_and_loses_its_metadata(
    runtime, client, new_account
) -> None:
    alice = await new_account("alice")
    async with runtime.session() as s:
        me = await s.get_one(Account, alice.id)
        assert await update_profile(s, runtime, me, ProfileChanges(avatar=jpeg_with_location()))
    actor = await actor_doc(client, alice)
    served = await client.get(actor["icon"]["url"])
    with Image.open(io.BytesIO(served.content)) as image:
        assert image.format == "PNG" and image.size == AVATAR
        assert not image.getexif() and "exif" not in image.info


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"GIF89a not really", "not an image we can read"),
        (b"%PDF-1.7", "not an image we can read"),
        (b"x" * (17 * 1024 * 1024), "too large"),
    ],
)
def test_a_bad_picture_is_refused_with_the_reason(data: bytes, says: str) -> None:
    with pytest.raises(ProfileError, match=says):
        reshape(data, "header")


async def test_a_remote_actors_header_is_kept(runtime, client, fedi, new_account) -> None:
    """Mastodon sends the header as `image` ({type: Image, mediaType, url})."""
    banner = {"type": "Image", "mediaType": "image/jpeg", "url": "https://m.example/h.jpg"}
    alice = fedi.actor("alice", "m.example", image=banner)
    assert (await post(client, runtime, alice, alice.create())).status_code == 202
    await InboxWorker(runtime).run_once()
    async with runtime.sessions() as s:
        row = await s.scalar(select(Account).where(Account.uri == alice.uri))
    assert row.header_url == "https://m.example/h.jpg"
