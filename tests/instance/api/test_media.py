"""POST /api/v2/media, GET and PUT /api/v1/media/:id: uploads, and generation as media.

Driven over HTTP (httpx on the ASGI app) with tokens from api_helpers; the generation worker
is the real one on the builtin:tiny model (tests/instance/generation_fixtures.py).
"""

from __future__ import annotations

import io

import pytest
from PIL import Image, PngImagePlugin
from sqlalchemy import func, select

from generator.testing import FakePipeline
from instance.api import media as api_media
from instance.api.auth import ApiError
from instance.content.ai_label import AI_ALT_PREFIX
from instance.content.posting import Draft, publish
from instance.generation.requests import enqueue
from instance.generation.worker import GenerationWorker
from instance.storage.models import Account, GenerationJob, MediaAttachment, Post
from tests.instance.api.api_helpers import api_token, bearer
from tests.instance.generation_fixtures import gen_settings, run_generation, tiny_cache  # noqa: F401

TINY = {"width": "32", "height": "32", "steps": "1"}


@pytest.fixture
def settings(gen_settings):  # noqa: F811
    return gen_settings()


@pytest.fixture
async def alice(new_account):
    return await new_account("alice")


@pytest.fixture
async def auth(runtime, alice) -> dict[str, str]:
    return bearer(await api_token(runtime, alice))


def png_bytes(size=(64, 48), text: dict[str, str] | None = None, mode="RGB") -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in (text or {}).items():
        info.add_text(key, value)
    out = io.BytesIO()
    Image.new(mode, size, (200, 30, 90)).save(out, "PNG", pnginfo=info)
    return out.getvalue()


def image_bytes(fmt: str, size=(40, 30), **save) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(out, fmt, **save)
    return out.getvalue()


async def row(runtime, public_id: str) -> MediaAttachment:
    async with runtime.sessions() as s:
        return await s.scalar(select(MediaAttachment).where(MediaAttachment.public_id == public_id))


async def generate(client, auth, **fields) -> dict:
    r = await client.post("/api/v2/media", data={**TINY, **fields}, headers=auth)
    assert r.status_code == 202, r.text
    return r.json()


# -- uploads ---------------------------------------------------------------------------------
async def test_an_uploaded_png_is_stored_clean_and_answered_at_once(runtime, client, auth):
    """A PNG upload answers 200 with Mastodon's MediaAttachment (image type, served url,
    blurhash, dimensions, the description and focus given), and what is stored is a PNG we
    wrote again: the uploader's text chunks (a location, say) are not kept."""
    data = png_bytes(text={"Location": "52.37,4.89"})
    r = await client.post(
        "/api/v2/media", headers=auth,
        files={"file": ("me.png", data, "image/png")},
        data={"description": "a pink square", "focus": "0.5,-0.25"},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["type"] == "image" and body["description"] == "a pink square"
    assert body["meta"]["original"] == {"width": 64, "height": 48, "size": "64x48",
                                        "aspect": 64 / 48}  # fmt: skip
    assert body["meta"]["focus"] == {"x": 0.5, "y": -0.25}
    assert body["blurhash"] and body["url"].endswith(".png")
    served = await client.get(body["url"])
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(served.content)) as image:
        assert image.size == (64, 48) and "Location" not in image.info
    media = await row(runtime, body["id"])
    assert media.post_id is None and media.sha256 and media.size_bytes == len(served.content)


async def test_jpeg_stays_jpeg_and_webp_becomes_png(client, auth):
    """JPEG uploads are stored as JPEG without their EXIF; WebP ones as PNG (the types the
    media route serves); both get renditions only when wider than 320 px."""
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    jpeg = image_bytes("JPEG", (400, 300), exif=exif.tobytes())
    r = await client.post("/api/v2/media", headers=auth,
                          files={"file": ("a.jpg", jpeg, "image/jpeg")})  # fmt: skip
    assert r.status_code == 200, r.text
    served = await client.get(r.json()["url"])
    assert served.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(served.content)) as image:
        assert image.format == "JPEG" and not image.getexif()
    assert r.json()["preview_url"].endswith(".w320.webp")
    assert (await client.get(r.json()["preview_url"])).status_code == 200
    webp = image_bytes("WEBP")
    r = await client.post("/api/v2/media", headers=auth,
                          files={"file": ("a.webp", webp, "image/webp")})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["url"].endswith(".png")


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("notes.txt", b"hello, not an image", "not an image we can read"),
        ("anim.gif", image_bytes("GIF"), "content type is invalid"),
        ("empty.png", b"", "can't be blank"),
    ],
)
async def test_uploads_that_are_not_accepted_images_are_refused(client, auth, name, data, message):
    """A file that is not a PNG, JPEG or WebP image (text, a GIF, nothing) is refused with
    422 in Mastodon's error shape, and nothing is stored."""
    r = await client.post("/api/v2/media", headers=auth, files={"file": (name, data)})
    assert r.status_code == 422
    assert message in r.json()["error"]


async def test_size_and_pixel_limits(runtime, client, auth, monkeypatch):
    """An upload over the byte limit or the pixel limit is refused (422; 413 when the body
    says it is too large before it is read), and no row is written."""
    monkeypatch.setattr(api_media, "MAX_UPLOAD_BYTES", 200)
    big = png_bytes((300, 300), text={"pad": "x" * 500})
    r = await client.post("/api/v2/media", headers=auth, files={"file": ("b.png", big)})
    assert r.status_code in (413, 422) and "less than" in r.json()["error"]
    monkeypatch.setattr(api_media, "MAX_UPLOAD_BYTES", 16 * 1024 * 1024)
    monkeypatch.setattr(api_media, "MAX_PIXELS", 100)
    r = await client.post("/api/v2/media", headers=auth,
                          files={"file": ("c.png", png_bytes((20, 20)))})  # fmt: skip
    assert r.status_code == 422 and "too many pixels" in r.json()["error"]
    async with runtime.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(MediaAttachment)) == 0


async def test_media_needs_a_user_token_with_write_media(runtime, client, alice):
    """Without a token 401; a token without write:media 403; an app-only token 422."""
    files = {"file": ("a.png", png_bytes())}
    assert (await client.post("/api/v2/media", files=files)).status_code == 401
    read_only = bearer(await api_token(runtime, alice, "read"))
    assert (await client.post("/api/v2/media", files=files, headers=read_only)).status_code == 403
    granular = bearer(await api_token(runtime, alice, "write:media"))
    assert (await client.post("/api/v2/media", files=files, headers=granular)).status_code == 200
    app_only = bearer(await api_token(runtime, None, "write"))
    assert (await client.post("/api/v2/media", files=files, headers=app_only)).status_code == 422


# -- generation as media ---------------------------------------------------------------------
async def test_a_prompt_is_generated_as_media_under_one_id(runtime, client, auth):
    """A prompt answers 202 with an attachment whose url is null; the same id answers 206
    while the job waits, then 200 with the image once the worker made it: a served PNG with
    blurhash and size, alt text that says it is generated, the recipe fields as asked. The
    job's media_id is that attachment, and no second attachment row is left over."""
    body = await generate(client, auth, prompt="a paper crane", seed="7",
                          negative_prompt="blur", description="my crane")  # fmt: skip
    assert body["url"] is None and body["preview_url"] is None and body["type"] == "image"
    waiting = await client.get(f"/api/v1/media/{body['id']}", headers=auth)
    assert waiting.status_code == 206 and waiting.json()["url"] is None
    await run_generation(runtime)
    ready = await client.get(f"/api/v1/media/{body['id']}", headers=auth)
    assert ready.status_code == 200, ready.text
    got = ready.json()
    assert got["id"] == body["id"] and got["url"].endswith(".png") and got["blurhash"]
    assert got["meta"]["original"]["width"] == 32 and got["meta"]["original"]["height"] == 32
    assert got["description"] == f"{AI_ALT_PREFIX}my crane"
    served = await client.get(got["url"])
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    async with runtime.sessions() as s:
        job = await s.scalar(select(GenerationJob))
        media = await s.scalar(select(MediaAttachment))
        assert await s.scalar(select(func.count()).select_from(MediaAttachment)) == 1
        assert job.status == "done" and job.media_id == media.id and job.post_id is None
        assert job.recipe["prompt"] == "a paper crane" and job.recipe["seed"] == 7
        assert job.recipe["negativePrompt"] == "blur"
        assert media.post_id is None and media.sha256 == job.result["sha256"]
        assert await api_media.recipe_of(s, media) == job.result["recipe"]


async def test_generated_alt_text_defaults_to_the_prompt(runtime, client, auth):
    """Without a description the generated image's alt text is the prompt, labelled."""
    body = await generate(client, auth, prompt="a red kite")
    await run_generation(runtime)
    got = (await client.get(f"/api/v1/media/{body['id']}", headers=auth)).json()
    assert got["description"] == f"{AI_ALT_PREFIX}a red kite"


async def test_a_failed_generation_answers_422_with_its_reason(runtime, client, auth):
    """When the job fails for good (here the safety checker blocks the prompt), GET answers
    422 with the job's reason, and the job row is kept with it."""
    body = await generate(client, auth, prompt="forbidden fruit")
    worker = GenerationWorker(runtime, pipeline_factory=lambda: FakePipeline(
        block_prompts=["forbidden fruit"]))  # fmt: skip
    try:
        while await worker.run_once():
            pass
    finally:
        await worker.aclose()
    r = await client.get(f"/api/v1/media/{body['id']}", headers=auth)
    assert r.status_code == 422
    async with runtime.sessions() as s:
        job = await s.scalar(select(GenerationJob))
    assert job.status == "blocked" and job.last_error
    assert job.last_error in r.json()["error"]


async def test_a_failing_media_step_keeps_the_image_and_says_why(
    runtime, client, auth, monkeypatch
):
    """Should the step that fills the attachment fail, the image is kept (the store's own
    row), the job is failed with the step's error, and GET on the attachment still finds
    that job and answers 422 with it."""
    from instance.generation import steps

    def broken(target, made):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(steps, "take_image", broken)
    body = await generate(client, auth, prompt="a kettle")
    await run_generation(runtime)
    r = await client.get(f"/api/v1/media/{body['id']}", headers=auth)
    assert r.status_code == 422 and "disk on fire" in r.json()["error"]
    async with runtime.sessions() as s:
        job = await s.scalar(select(GenerationJob))
        kept = await s.get(MediaAttachment, job.media_id)
    assert job.status == "failed" and kept.file_name and kept.public_id != body["id"]


async def test_bad_generation_requests_are_refused(client, auth):
    """No file and no prompt, a file and a prompt, a number that is not one, half a size,
    another model, a recipe the generator refuses: 422 each, with what is wrong."""
    cases = [
        ({}, "can't be blank"),
        ({"prompt": "x", "seed": "seven"}, "seed must be a whole number"),
        ({"prompt": "x", "width": "32", "height": ""}, "width and height together"),
        ({"prompt": "x", "model": "someone/else"}, "generates with"),
        ({"prompt": "x", "steps": "0"}, "steps"),
    ]
    for fields, message in cases:
        r = await client.post("/api/v2/media", data=fields, headers=auth)
        assert r.status_code == 422, (fields, r.text)
        assert message in r.json()["error"], (fields, r.json())
    both = await client.post("/api/v2/media", data={"prompt": "x"}, headers=auth,
                             files={"file": ("a.png", png_bytes())})  # fmt: skip
    assert both.status_code == 422 and "not both" in both.json()["error"]


async def test_json_bodies_work_too(runtime, client, auth):
    """A JSON body with the same fields queues the same generation (clients send JSON)."""
    fields = {"prompt": "an owl", "width": 32, "height": 32, "seed": 3}
    r = await client.post("/api/v2/media", json=fields, headers=auth)
    assert r.status_code == 202, r.text
    async with runtime.sessions() as s:
        job = await s.scalar(select(GenerationJob))
    assert job.recipe["seed"] == 3 and job.recipe["width"] == 32


async def test_a_full_queue_answers_503_with_retry_after(runtime, client, auth):
    """When the generation queue is full the answer is 503 with Retry-After, and no
    attachment row is left behind for the refused request."""
    runtime.settings.generator.max_queue = 1
    await generate(client, auth, prompt="one")
    r = await client.post("/api/v2/media", data={**TINY, "prompt": "two"}, headers=auth)
    assert r.status_code == 503 and r.headers["retry-after"] == "60"
    async with runtime.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(MediaAttachment)) == 1


async def test_remix_of_takes_the_parents_recipe(runtime, client, auth, new_account):
    """`remix_of=<status id>` starts from that post's recipe (the parent's prompt, the seed
    asked for), or with `from_image=true` from its picture (image-to-image at the default
    strength); a post the caller may not see, or no post, is 404, as a status would be."""
    painter = await new_account("painter", ai=True)
    async with runtime.session() as s:
        painter = await s.get(Account, painter.id)
        job = await enqueue(s, runtime, painter, "a lighthouse", seed=11, size=(32, 32),
                            then={"post": {}})  # fmt: skip
        hidden = await publish(s, runtime, painter, Draft(text="secret", visibility="followers"))
    await run_generation(runtime)
    async with runtime.sessions() as s:
        parent = await s.get(Post, (await s.get(GenerationJob, job.id)).post_id)
    body = await generate(client, auth, remix_of=parent.public_id, seed="5")
    await run_generation(runtime)
    r = await client.get(f"/api/v1/media/{body['id']}", headers=auth)
    assert r.status_code == 200, r.text
    async with runtime.sessions() as s:
        media = await row(runtime, body["id"])
        recipe = await api_media.recipe_of(s, media)
    assert recipe["prompt"] == parent.recipe["prompt"] and recipe["seed"] == 5
    from_image = await generate(
        client, auth, remix_of=parent.public_id, from_image="true", steps=""
    )
    await run_generation(runtime)
    async with runtime.sessions() as s:
        recipe = await api_media.recipe_of(s, await row(runtime, from_image["id"]))
    assert recipe["parent"].endswith(".png") and recipe["strength"] == 0.6
    r = await client.post("/api/v2/media", data={"remix_of": hidden.public_id}, headers=auth)
    assert r.status_code == 404
    r = await client.post("/api/v2/media", data={"remix_of": "nope"}, headers=auth)
    assert r.status_code == 404


async def test_put_describes_an_unattached_attachment_only(runtime, client, auth, alice):
    """PUT changes description and focus while no status uses the attachment (206 while
    it is still generating, the generated label kept); once attached it is 404, as are
    other people's attachments."""
    body = await generate(client, auth, prompt="a fox")
    r = await client.put(f"/api/v1/media/{body['id']}", headers=auth,
                         data={"description": "fox at dusk", "focus": "-1,1"})  # fmt: skip
    assert r.status_code == 206, r.text
    assert r.json()["description"] == f"{AI_ALT_PREFIX}fox at dusk"
    assert r.json()["meta"]["focus"] == {"x": -1.0, "y": 1.0}
    await run_generation(runtime)
    ready = (await client.get(f"/api/v1/media/{body['id']}", headers=auth)).json()
    assert ready["description"] == f"{AI_ALT_PREFIX}fox at dusk"
    assert ready["meta"]["focus"] == {"x": -1.0, "y": 1.0}
    bad = await client.put(f"/api/v1/media/{body['id']}", headers=auth, data={"focus": "2,0"})
    assert bad.status_code == 422
    upload = await client.post("/api/v2/media", headers=auth,
                               files={"file": ("a.png", png_bytes())})  # fmt: skip
    r = await client.put(f"/api/v1/media/{upload.json()['id']}", headers=auth,
                         data={"description": "plain words"})  # fmt: skip
    assert r.status_code == 200 and r.json()["description"] == "plain words"
    mallory = await api_token(runtime, await _account(runtime, "mallory"))
    r = await client.put(f"/api/v1/media/{body['id']}", headers=bearer(mallory),
                         data={"description": "mine now"})  # fmt: skip
    assert r.status_code == 404
    theirs = await client.get(f"/api/v1/media/{body['id']}", headers=bearer(mallory))
    assert theirs.status_code == 404
    async with runtime.session() as s:
        me = await s.get(Account, alice.id)
        media = await s.get(MediaAttachment, (await row(runtime, body["id"])).id)
        await publish(s, runtime, me, Draft(text="my fox", media=[media]))
    r = await client.put(f"/api/v1/media/{body['id']}", headers=auth, data={"description": "x"})
    assert r.status_code == 404
    assert (await client.get(f"/api/v1/media/{body['id']}", headers=auth)).status_code == 404


async def _account(runtime, name):
    from instance.accounts import NewAccount, create_account

    async with runtime.session() as s:
        return await create_account(s, runtime.urls, NewAccount(name))


# -- attachable: what POST /api/v1/statuses takes ----------------------------------------------
async def test_attachable_takes_only_the_callers_finished_unattached_media(
    runtime, client, auth, alice
):
    """`attachable` returns the caller's finished, unattached rows in the order asked (a
    repeated id once); an unknown or someone else's id, an image still generating, or more
    than four are refused with 422 saying why."""
    first = await client.post("/api/v2/media", headers=auth, files={"file": ("a.png", png_bytes())})
    second = await client.post("/api/v2/media", headers=auth,
                               files={"file": ("b.png", png_bytes((10, 10)))})  # fmt: skip
    pending = await generate(client, auth, prompt="a moth")
    a, b = first.json()["id"], second.json()["id"]
    bob = await _account(runtime, "bob")
    async with runtime.sessions() as s:
        me = await s.get(Account, alice.id)
        got = await api_media.attachable(s, me, [b, a, b])
        assert [m.public_id for m in got] == [b, a]
        assert await api_media.attachable(s, me, []) == []
        for ids, message in (
            (["nope"], "unknown media_ids nope"),
            ([pending["id"]], "not finished processing"),
            ([a] * 1 + ["1", "2", "3", "4"], "at most 4"),
        ):
            with pytest.raises(ApiError) as caught:
                await api_media.attachable(s, me, ids)
            assert caught.value.status == 422 and message in caught.value.message
        with pytest.raises(ApiError):
            await api_media.attachable(s, await s.get(Account, bob.id), [a])
    await run_generation(runtime)
    async with runtime.sessions() as s:
        me = await s.get(Account, alice.id)
        assert [m.public_id for m in await api_media.attachable(s, me, [pending["id"]])] == [
            pending["id"]
        ]


def test_a_media_step_needs_the_attachment_id():
    """The `media` follow-up is checked before a job is queued: it names the attachment
    to fill by its row id, a whole number."""
    from instance.errors import InvalidGenerationRequest
    from instance.generation.then import validate_then

    assert validate_then({"media": {"media_id": 4}}, "p") == {"media": {"media_id": 4}}
    for options in ({}, {"media_id": "4"}, {"media_id": True}):
        with pytest.raises(InvalidGenerationRequest, match="media_id"):
            validate_then({"media": options}, "p")
