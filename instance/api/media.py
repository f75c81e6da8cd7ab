"""Media attachments: uploads, and generation as media (the Dreamloom extension).

    POST /api/v2/media       a `file` (PNG, JPEG or WebP): 200 with the MediaAttachment;
                             or a `prompt` and recipe fields: 202, the image is generated
    GET  /api/v1/media/:id   206 while generating, 200 once the image exists, 422 with why
                             when the generation failed
    PUT  /api/v1/media/:id   `description`, `focus` of an attachment not yet in a status

Every endpoint needs `write:media` and answers only for the caller's own attachments that no
status uses yet (404 otherwise), as Mastodon does.

**One id from the 202 to the status.** A generation request writes, in one transaction, the
`MediaAttachment` row (no file yet: `file_name` NULL; the caller's description and focus) and
the generation job (instance/generation/requests.py `enqueue`), whose `media_id` names the row
and whose `then` is `{"media": {"media_id": <row>}}`. The id the client gets is that row's
`public_id`, at once, url null. When the image exists the job's `media` step
(instance/generation/steps.py `media_step`) fills that row with the file, size, blurhash and
alt text (the client's own, labelled as a generated image's, or the prompt's), in the
transaction that marks the job done; its renditions are made as for every generated image.
So the client polls one id and then posts it in `media_ids`. While the row has no file its
state is its job's: queued or running (206), failed, blocked or cancelled (422, the job's
reason). The job is found by `media_id`; should the step itself fail, the store keeps the
image in a row of its own and points the job there, and the job is found through its `then`.

**Generation fields** (the query's and the body's, multipart, url-encoded or JSON, read
by instance/api/params.py), all optional but `prompt`:

    prompt           what to draw (the account's persona style is added, as for every prompt)
    negative_prompt  what not to draw
    seed, steps      whole numbers
    width, height    pixels (together; or `size=512x768`)
    guidance         classifier-free guidance scale
    model            only this instance's `[generator] model` (each instance runs one)
    remix_of         a status id: start from that post's recipe or image, as a remix does
                     (instance/generation/remix.py): `from_image=true` for image-to-image at
                     `strength` (0.6 by default); `prompt` then replaces the parent's
    description      alt text; `focus` "x,y" in -1..1

**Uploads**: at most MAX_UPLOAD_BYTES and MAX_PIXELS, decoded by Pillow, written again
without the file's metadata (a phone's location): PNG and WebP as PNG, JPEG as JPEG (turned
upright by its EXIF orientation), into the media store (`rt.media`) under a generated name,
with a blurhash and the renditions every image gets (instance/content/renditions.py).

`attachable(session, account, ids)` is what `POST /api/v1/statuses` (statuses.py) calls to
turn `media_ids` into rows; `recipe_of` gives a generated attachment's recipe.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageOps
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from generator.png import compute_blurhash
from generator.recipe import Recipe
from instance.api import entities
from instance.api.auth import ApiError, Caller, endpoint, json_response
from instance.api.params import Limits, Params, read
from instance.content import renditions
from instance.content.ai_label import ai_alt
from instance.content.pictures import unreadable
from instance.content.posting import MAX_MEDIA
from instance.content.visibility import can_see
from instance.errors import GenerationRefused, InvalidGenerationRequest
from instance.generation.recipes import build_recipe, for_this_instance, parse_size
from instance.generation.remix import DEFAULT_STRENGTH, remix_recipe
from instance.generation.requests import enqueue
from instance.routes.common import runtime
from instance.runtime import Runtime
from instance.storage.ids import new_public_id
from instance.storage.models import Account, GenerationJob, MediaAttachment, Post

MAX_UPLOAD_BYTES = 16 * 1024 * 1024  # Mastodon's image limit
MAX_PIXELS = 33_177_600  # 7680 x 4320, Mastodon's largest image matrix
MAX_DESCRIPTION = 1500  # Mastodon's alt text limit
MAX_FIELD_BYTES = 64 * 1024
UPLOAD_FORMATS = {"PNG": "png", "WEBP": "png", "JPEG": "jpg"}  # what Pillow read -> stored as
STORED_TYPES = {"png": "image/png", "jpg": "image/jpeg"}
PROCESSING = ("queued", "running")
NOT_PROCESSED = "Cannot attach files that have not finished processing. Try again in a moment!"


# -- reading the request ---------------------------------------------------------------------
def body_limits() -> Limits:
    """A `file` of at most MAX_UPLOAD_BYTES and a few short fields (made at each call, so
    that it reads the module's numbers as they are then)."""
    return Limits(
        max_fields=64, max_files=2, max_file_bytes=MAX_UPLOAD_BYTES,
        max_part_bytes=MAX_FIELD_BYTES, max_bytes=MAX_UPLOAD_BYTES + MAX_FIELD_BYTES,
        too_large=too_large(),
    )  # fmt: skip


def too_large() -> str:
    return f"File file size must be less than {MAX_UPLOAD_BYTES >> 20} MB"


def description_of(params: Params) -> str | None:
    """The alt text, None when not given ("" clears it)."""
    text = params.text("description", strip=True)
    if text is not None and len(text) > MAX_DESCRIPTION:
        raise ApiError(422, f"Validation failed: Description is too long "
                            f"(maximum is {MAX_DESCRIPTION} characters)")  # fmt: skip
    return text


def focus_of(params: Params) -> tuple[float, float] | None:
    """`focus=x,y`, each in -1..1 (Mastodon's focal point); None when not given."""
    text = params.text("focus", strip=True)
    if not text:
        return None
    try:
        x, y = (float(part) for part in text.split(","))
    except ValueError:
        raise ApiError(422, "focus must be two numbers, x,y") from None
    if not (-1 <= x <= 1 and -1 <= y <= 1):
        raise ApiError(422, "focus must be two numbers between -1 and 1")
    return x, y


def check_description(params: Params) -> None:
    description_of(params)
    focus_of(params)


def describe(media: MediaAttachment, params: Params, generated: bool) -> None:
    """Apply `description` and `focus`; a generated image's alt text says it is one."""
    description = description_of(params)
    if description is not None:
        media.description = (ai_alt(description) if generated else description) or None
    focus = focus_of(params)
    if focus is not None:
        media.focal_x, media.focal_y = focus


# -- uploads ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckedImage:
    data: bytes
    extension: str  # "png" | "jpg"
    width: int
    height: int
    blurhash: str


def check_image(data: bytes) -> CheckedImage:
    """The upload as we store it: decoded by Pillow, no metadata kept; ApiError(422) saying
    what is wrong."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise ApiError(422, too_large())
    if not data:
        raise ApiError(422, "Validation failed: File can't be blank")
    try:
        with Image.open(io.BytesIO(data)) as image:
            extension = UPLOAD_FORMATS.get(image.format or "")
            if extension is None:
                raise ApiError(422, "Validation failed: File content type is invalid "
                                    "(PNG, JPEG or WebP images only)")  # fmt: skip
            if image.width * image.height > MAX_PIXELS:
                raise ApiError(422, f"the image has too many pixels (at most {MAX_PIXELS})")
            image.load()
            upright = ImageOps.exif_transpose(image)
            keep = upright.mode if upright.mode in ("RGB", "RGBA") else "RGBA"
            clean = upright.convert("RGB" if extension == "jpg" else keep)
    except ApiError:
        raise
    except Exception as exc:  # Pillow raises many kinds for a broken or hostile file
        message = f"Validation failed: File is not an image we can read ({unreadable(exc)})"
        raise ApiError(422, message) from None
    out = io.BytesIO()
    if extension == "jpg":
        clean.save(out, "JPEG", quality=90, optimize=True)
    else:
        clean.save(out, "PNG", optimize=True)
    return CheckedImage(out.getvalue(), extension, clean.width, clean.height,
                        compute_blurhash(clean))  # fmt: skip


async def store_upload(rt: Runtime, account: Account, data: bytes) -> MediaAttachment:
    """Check and store an uploaded image; the unattached row for it (the caller adds it)."""
    image = await asyncio.to_thread(check_image, data)
    name = f"{new_public_id()}.{image.extension}"  # the media route serves such names only
    media_type = STORED_TYPES[image.extension]
    await rt.media.put(name, image.data, media_type)
    await renditions.make_all(rt.media, name, image.data)
    return MediaAttachment(
        account_id=account.id, file_name=name, media_type=media_type, width=image.width,
        height=image.height, blurhash=image.blurhash, size_bytes=len(image.data),
        sha256=hashlib.sha256(image.data).hexdigest(), created_at=rt.now(),
    )  # fmt: skip


# -- generation ------------------------------------------------------------------------------
def size_of(params: Params) -> tuple[int, int] | None:
    width, height = params.integer("width"), params.integer("height")
    size = params.text("size", strip=True)
    if width is not None or height is not None:
        if width is None or height is None:
            raise ApiError(422, "give width and height together")
        return width, height
    return parse_size(size) if size else None


def check_model(rt: Runtime, params: Params) -> None:
    model = params.text("model", strip=True)
    ours = rt.settings.generator.model
    if model and model not in (ours, "auto"):
        raise ApiError(422, f"this instance generates with {ours!r} only")


async def remix_parent(session: AsyncSession, viewer: Account, status_id: str) -> Post:
    """The post `remix_of` names, if the caller may see it (404 otherwise, as for a status)."""
    post = await session.scalar(select(Post).where(Post.public_id == status_id))
    if post is None or post.deleted_at is not None or not await can_see(session, viewer, post):
        raise ApiError(404, "Record not found")
    return post


async def generation_recipe(
    session: AsyncSession, rt: Runtime, me: Account, params: Params
) -> Recipe:
    """The recipe the request's fields make (the module docstring lists them)."""
    check_model(rt, params)
    prompt = params.text("prompt", strip=True) or ""
    seed, steps = params.integer("seed"), params.integer("steps")
    negative = params.text("negative_prompt", strip=True) or None
    size = size_of(params)
    parent_id = params.text("remix_of", strip=True)
    if parent_id:
        parent = await remix_parent(session, me, parent_id)
        strength = params.number("strength")
        recipe = await remix_recipe(
            session, rt, me, parent, prompt=prompt or None, seed=seed,
            from_image=bool(params.flag("from_image")),
            strength=DEFAULT_STRENGTH if strength is None else strength,
        )  # fmt: skip
    else:
        if not prompt:
            raise ApiError(422, "Validation failed: File can't be blank (or give a prompt)")
        recipe = build_recipe(rt.settings, me, prompt, seed=seed, steps=steps, size=size,
                              negative=negative)  # fmt: skip
    width, height = size if size is not None else (None, None)
    guidance = params.number("guidance")
    return for_this_instance(recipe, steps=steps, width=width, height=height,
                             negative_prompt=negative, guidance=guidance)  # fmt: skip


async def queue_generation(
    session: AsyncSession, rt: Runtime, me: Account, params: Params
) -> MediaAttachment:
    """The file-less attachment and the job that will fill it, in the caller's transaction."""
    recipe = await generation_recipe(session, rt, me, params)
    media = MediaAttachment(account_id=me.id, file_name=None, media_type="image/png",
                            created_at=rt.now())  # fmt: skip
    describe(media, params, generated=True)
    session.add(media)
    await session.flush()
    try:
        job = await enqueue(session, rt, me, recipe, then={"media": {"media_id": media.id}},
                            requested_by=me.uri)  # fmt: skip
    except GenerationRefused as exc:
        if exc.http_status == 503:
            retry = {"Retry-After": str(exc.retry_after_s)} if exc.retry_after_s else {}
            raise ApiError(503, str(exc), retry) from None
        raise ApiError(422, str(exc)) from None
    job.media_id = media.id
    return media


async def job_of(session: AsyncSession, media: MediaAttachment) -> GenerationJob | None:
    """The generation job that makes (or made) `media`'s image (the module docstring)."""
    job = await session.scalar(
        select(GenerationJob).where(GenerationJob.media_id == media.id)
        .order_by(GenerationJob.id.desc()).limit(1)
    )  # fmt: skip
    if job is not None:
        return job
    since = await session.scalars(
        select(GenerationJob).where(GenerationJob.account_id == media.account_id,
                                    GenerationJob.created_at >= media.created_at)
        .order_by(GenerationJob.id).limit(50)
    )  # fmt: skip
    for row in since:
        if (row.then or {}).get("media", {}).get("media_id") == media.id:
            return row
    return None


async def recipe_of(session: AsyncSession, media: MediaAttachment) -> dict[str, Any] | None:
    """The recipe of a generated attachment (what ran), None for an upload."""
    job = await job_of(session, media)
    if job is None or job.status != "done":
        return None
    result = job.result or {}
    recipe = result.get("recipe")
    return recipe if isinstance(recipe, dict) else job.recipe


def has_image(media: MediaAttachment) -> bool:
    return media.file_name is not None or media.remote_url is not None


def failure(job: GenerationJob | None) -> str | None:
    """Why the image of a file-less attachment will not come; None while it still may."""
    if job is None:
        return "the image of this attachment is lost (its generation job is gone)"
    if job.status in PROCESSING:
        return None
    if job.status == "cancelled":
        return "the generation was cancelled"
    return f"the image could not be generated: {job.last_error or job.status}"


# -- the attachments the statuses endpoint takes -----------------------------------------------
async def attachable(
    session: AsyncSession, account: Account, ids: Sequence[str]
) -> list[MediaAttachment]:
    """The rows `media_ids` name, in that order: each the caller's, in no status yet, with
    its image; ApiError(422) naming what is wrong otherwise (statuses.py attaches them by
    passing them as `Draft.media`)."""
    wanted = list(dict.fromkeys(str(i) for i in ids))
    if len(wanted) > MAX_MEDIA:
        raise ApiError(422, f"Validation failed: at most {MAX_MEDIA} media attachments a status")
    if not wanted:
        return []
    rows = await session.scalars(
        select(MediaAttachment).where(MediaAttachment.public_id.in_(wanted),
                                      MediaAttachment.account_id == account.id,
                                      MediaAttachment.post_id.is_(None))
    )  # fmt: skip
    found = {m.public_id: m for m in rows}
    missing = [i for i in wanted if i not in found]
    if missing:
        raise ApiError(422, f"Validation failed: unknown media_ids {', '.join(missing)} "
                            "(not yours, or already in a status)")  # fmt: skip
    media = [found[i] for i in wanted]
    for m in media:
        if not has_image(m):
            reason = failure(await job_of(session, m))
            raise ApiError(422, NOT_PROCESSED if reason is None else f"{m.public_id}: {reason}")
    return media


# -- endpoints -------------------------------------------------------------------------------
def attachment_json(rt: Runtime, media: MediaAttachment) -> dict[str, Any]:
    data = entities.media_attachment(rt, media)
    if not has_image(media):  # still generating: Mastodon's async shape, url null
        data.update(url=None, preview_url=None)
    return data


async def own_unattached(session: AsyncSession, me: Account, public_id: str) -> MediaAttachment:
    media = await session.scalar(
        select(MediaAttachment).where(MediaAttachment.public_id == public_id,
                                      MediaAttachment.account_id == me.id,
                                      MediaAttachment.post_id.is_(None))
    )  # fmt: skip
    if media is None:
        raise ApiError(404, "Record not found")
    return media


async def state(
    rt: Runtime, session: AsyncSession, media: MediaAttachment
) -> tuple[int, dict[str, Any]]:
    """200 with the attachment, 206 while its image is made, 422 with why when it will not
    be (the status and the body)."""
    if has_image(media):
        return 200, attachment_json(rt, media)
    reason = failure(await job_of(session, media))
    if reason is not None:
        return 422, {"error": reason}
    return 206, attachment_json(rt, media)


@endpoint("write:media")
async def create(request: Request, caller: Caller) -> Any:
    rt = runtime(request)
    me = caller.user()
    params = await read(request, body_limits())
    upload = params.file("file")
    if upload is not None and params.text("prompt", strip=True):
        raise ApiError(422, "give a file or a prompt, not both")
    if upload is not None:
        check_description(params)  # refused before anything is stored
        media = await store_upload(rt, me, upload)
        describe(media, params, generated=False)
        async with rt.session() as session:
            session.add(media)
        return json_response(attachment_json(rt, media))
    try:
        async with rt.session() as session:
            media = await queue_generation(session, rt, me, params)
            await session.flush()
            body = attachment_json(rt, media)
    except InvalidGenerationRequest as exc:
        raise ApiError(422, str(exc)) from None
    return json_response(body, 202)


@endpoint("write:media")
async def show(request: Request, caller: Caller) -> Any:
    rt = runtime(request)
    async with rt.sessions() as session:
        media = await own_unattached(session, caller.user(), request.path_params["id"])
        status, body = await state(rt, session, media)
    return json_response(body, status)


@endpoint("write:media")
async def update(request: Request, caller: Caller) -> Any:
    rt = runtime(request)
    params = await read(request, body_limits())
    async with rt.session() as session:
        media = await own_unattached(session, caller.user(), request.path_params["id"])
        job = await job_of(session, media)
        describe(media, params, generated=job is not None)
        await session.flush()
        status, body = await state(rt, session, media)
    return json_response(body, status)


routes: list[BaseRoute] = [
    Route("/api/v2/media", create, methods=["POST"]),
    Route("/api/v1/media/{id}", show, methods=["GET"]),
    Route("/api/v1/media/{id}", update, methods=["PUT"]),
]
