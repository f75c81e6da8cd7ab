"""The steps that run once a job's image exists, by `then` kind (instance/generation/then.py).

Each step runs inside the transaction that marks the job done (instance/generation/store.py),
so the post and the finished job commit together. A failure step runs when a job fails for
good, to tell whoever asked.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from generator.recipe import GenerationResult
from instance.content.ai_label import ai_alt
from instance.content.pictures import set_picture
from instance.content.posting import Draft, publish
from instance.content.profiles import federate_actor
from instance.errors import InvalidGenerationRequest
from instance.generation import asks, remix, then
from instance.runtime import Runtime
from instance.storage.models import Account, GenerationJob, MediaAttachment, Post


@dataclass
class StepContext:
    """What a step gets: the open transaction and the finished job."""

    session: AsyncSession
    rt: Runtime
    job: GenerationJob
    account: Account
    media: MediaAttachment
    result: GenerationResult


Step = Callable[[StepContext, dict[str, Any]], Awaitable[Post | None]]
FailureStep = Callable[[AsyncSession, Runtime, GenerationJob, dict[str, Any], str], Awaitable[None]]


async def post_step(ctx: StepContext, options: dict[str, Any]) -> Post:
    """Publish the image as a post by the job's account (instance.content.posting.publish)."""
    s = ctx.session
    reply_to = await _post(s, options.get("in_reply_to_post_id"), "in_reply_to_post_id")
    quote = await _post(s, options.get("quote_post_id"), "quote_post_id")
    mentions = []
    for account_id in options.get("mention_account_ids", []):
        account = await s.get(Account, account_id)
        if account is not None:
            mentions.append(account)
    draft = Draft(
        text=options.get("text") or ctx.result.recipe.prompt,
        visibility=options.get("visibility", "public"),
        summary=options.get("summary"),
        sensitive=bool(options.get("sensitive", False)) or bool(options.get("summary")),
        language=options.get("language", "en"),
        media=[ctx.media],
        mentions=mentions,
        in_reply_to=reply_to,
        quote=quote,
        quote_state=options.get("quote_state") if quote else None,
        quote_authorization_uri=options.get("quote_authorization_uri"),
        recipe=ctx.result.recipe.to_json(),
    )
    federate = bool(options.get("federate", True))
    return await publish(s, ctx.rt, ctx.account, draft, federate=federate)


async def _post(session: AsyncSession, post_id: Any, name: str) -> Post | None:
    if post_id is None:
        return None
    post = await session.get(Post, post_id)
    if post is None or post.deleted_at is not None:
        raise InvalidGenerationRequest(f"{name} {post_id} is not a post (deleted?)")
    return post


async def remix_step(ctx: StepContext, options: dict[str, Any]) -> Post:
    """Publish the remix and get (or ask for) the quote approval."""
    return await remix.publish_remix(
        ctx.session, ctx.rt, ctx.account, options["parent_post_id"], ctx.media,
        ctx.result.recipe, visibility=options.get("visibility", "public"),
    )  # fmt: skip


async def profile_step(ctx: StepContext, options: dict[str, Any]) -> None:
    """Make the image the account's avatar or header; its followers get an actor Update."""
    if ctx.media.file_name is None:
        raise InvalidGenerationRequest("the generated image has no file")
    data = await ctx.rt.media.read(ctx.media.file_name)
    if data is None:
        raise InvalidGenerationRequest("the generated image is not in the media store")
    await set_picture(ctx.rt, ctx.account, options["picture"], data)
    await federate_actor(ctx.session, ctx.rt, ctx.account)
    return None


async def media_step(ctx: StepContext, options: dict[str, Any]) -> None:
    """Fill the job account's attachment `media_id` (made without a file when the job was
    queued, instance/api/media.py) with the image, so the client keeps the one id it was
    given; the row the store made for the image is folded into it."""
    target = await ctx.session.get(MediaAttachment, options["media_id"])
    if target is None or target.account_id != ctx.account.id or target.file_name is not None:
        raise InvalidGenerationRequest("the attachment this image was made for is gone")
    made = ctx.media
    take_image(target, made)
    ctx.job.media_id = target.id
    await ctx.session.delete(made)
    await ctx.session.flush()
    ctx.media = target
    return None


def take_image(target: MediaAttachment, made: MediaAttachment) -> None:
    """`target` names the image `made` names; alt text the client gave is kept (labelled as
    a generated image's: instance/content/ai_label.py), else the generated one."""
    target.file_name, target.media_type = made.file_name, made.media_type
    target.width, target.height, target.blurhash = made.width, made.height, made.blurhash
    target.size_bytes, target.sha256 = made.size_bytes, made.sha256
    target.description = ai_alt(target.description) if target.description else made.description


STEPS: dict[str, Step] = {
    "post": post_step, "answer": post_step, "remix": remix_step, "profile": profile_step,
    "media": media_step,
}  # fmt: skip
FAILURE_STEPS: dict[str, FailureStep] = {"answer": asks.answer_failed}
assert STEPS.keys() == then.KINDS.keys(), "every then kind has a step, and no step is unknown"
