"""Ask by mention: anyone who mentions an AI account with a description gets a picture back.

The text of the mentioning post, without the mentions, becomes the prompt (in the account's
persona); the image is posted as a reply that mentions the asker. Every refusal is a polite
reply that says why, never silence:

- nothing to draw (the post only mentions the account);
- a prompt the account will not draw (BLOCKED_WORDS) or one that is too long;
- over quota: QUOTA_PER_ACCOUNT asks per asker and QUOTA_PER_DOMAIN per remote domain in the
  last hour, so nobody can keep the GPU to themselves;
- a full queue or low disk (the generation's own refusal message);
- a prompt too long for the model's tokenizer (refused before it is queued);
- a generation that fails later (blocked by the safety checker, out of memory, a tokenizer
  not yet on disk): `answer_failed` replies with the job's reason.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from activitypub.addressing import Visibility
from generator.recipe import MAX_PROMPT_CHARS
from instance.content.posting import Draft, publish
from instance.content.text import plain_text
from instance.errors import GenerationRefused, InvalidGenerationRequest
from instance.generation.requests import enqueue
from instance.runtime import Runtime
from instance.storage.models import Account, GenerationJob, Post

QUOTA_PER_ACCOUNT = 5
QUOTA_PER_DOMAIN = 20
QUOTA_WINDOW = timedelta(hours=1)
BLOCKED_WORDS = frozenset(
    {"nude", "naked", "nsfw", "porn", "gore", "child", "children", "minor", "kid", "kids"}
)
_MENTION = re.compile(r"(?<![\w])@[\w.-]+(?:@[\w.-]+(?::\d+)?)?")
ANSWER_VISIBILITY: dict[str, Visibility] = {
    "public": "unlisted", "unlisted": "unlisted", "followers": "direct", "direct": "direct",
}  # fmt: skip
"""The visibility of our answer to an ask: never on public timelines, never wider than the
ask itself."""


def prompt_of(post: Post) -> str:
    """The post's text without @mentions (and without the quote-inline fallback)."""
    text = plain_text(re.sub(r'<p class="quote-inline">.*?</p>', "", post.content, flags=re.S))
    return " ".join(_MENTION.sub(" ", text).split())


def refusal(prompt: str) -> str | None:
    if not prompt:
        return (
            "Mention me with a description of the picture you would like, "
            "for example: “a lighthouse on a cliff at dawn, watercolour”."
        )
    if len(prompt) > MAX_PROMPT_CHARS:
        return f"That description is too long ({len(prompt)} characters); keep it shorter."
    words = set(re.findall(r"[a-z]+", prompt.lower()))
    if words & BLOCKED_WORDS:
        return "I can't make that picture: it asks for something I don't draw. Try another idea?"
    return None


async def _over_quota(session: AsyncSession, rt: Runtime, asker: Account) -> str | None:
    since = rt.now() - QUOTA_WINDOW
    recent = (
        select(func.count()).select_from(GenerationJob).where(GenerationJob.created_at >= since)
    )
    mine = await session.scalar(recent.where(GenerationJob.requested_by == asker.uri)) or 0
    if mine >= QUOTA_PER_ACCOUNT:
        return (
            f"You've asked me for {mine} pictures in the last hour, which is my limit per "
            "person; please ask again a little later."
        )
    if asker.domain:
        peers = select(Account.uri).where(Account.domain == asker.domain)
        domain = await session.scalar(recent.where(GenerationJob.requested_by.in_(peers))) or 0
        if domain >= QUOTA_PER_DOMAIN:
            return (
                f"People on {asker.domain} have asked me for {domain} pictures in the last "
                "hour, my limit per server; please ask again a little later."
            )
    return None


async def _answered(session: AsyncSession, bot: Account, post: Post) -> bool:
    """A post is answered once, however often it is delivered or fetched."""
    replied = await session.scalar(
        select(Post.id).where(Post.account_id == bot.id, Post.in_reply_to_id == post.id).limit(1)
    )
    if replied is not None:
        return True
    jobs = await session.scalars(
        select(GenerationJob.then).where(
            GenerationJob.account_id == bot.id, GenerationJob.created_at >= post.published
        )
    )
    return any(
        (then or {}).get("answer", {}).get("in_reply_to_post_id") == post.id for then in jobs
    )


async def reply_text(
    session: AsyncSession, rt: Runtime, bot: Account, to: Post, asker: Account, text: str
) -> Post:
    draft = Draft(text=text, visibility=ANSWER_VISIBILITY.get(to.visibility, "direct"),
                  mentions=[asker], in_reply_to=to)  # fmt: skip
    return await publish(session, rt, bot, draft)


async def on_mention(
    session: AsyncSession, rt: Runtime, post: Post, bot: Account, asker: Account
) -> str:
    """Handle a post that mentions an AI account; returns what was done (for logs/tests)."""
    if not bot.local or bot.kind != "Service" or asker.id == bot.id or asker.bot:
        return "ignored"  # bots don't answer bots: no reply loops
    if await _answered(session, bot, post):
        return "already answered"
    prompt = prompt_of(post)
    why = refusal(prompt) or await _over_quota(session, rt, asker)
    if why is not None:
        await reply_text(session, rt, bot, post, asker, why)
        return "refused"
    then = {"answer": {"in_reply_to_post_id": post.id, "mention_account_ids": [asker.id],
                       "visibility": ANSWER_VISIBILITY.get(post.visibility, "direct"),
                       "text": prompt}}  # fmt: skip
    try:
        async with session.begin_nested():
            await enqueue(session, rt, bot, prompt, then=then, requested_by=asker.uri)
    except InvalidGenerationRequest as exc:
        await reply_text(
            session, rt, bot, post, asker, f"Sorry, I couldn't make that picture: {exc}"
        )
        return "refused"
    except GenerationRefused as exc:
        await reply_text(session, rt, bot, post, asker, f"I can't start on that right now: {exc}")
        return "refused"
    return "queued"


async def answer_failed(
    session: AsyncSession, rt: Runtime, job: GenerationJob, options: dict[str, Any], reason: str
) -> None:
    """A generation for someone who asked failed for good: tell them why."""
    to = await session.get(Post, options.get("in_reply_to_post_id"))
    bot = await session.get(Account, job.account_id)
    ids = options.get("mention_account_ids") or []
    asker = await session.get(Account, ids[0]) if ids else None
    if to is None or bot is None or asker is None:
        return
    await reply_text(session, rt, bot, to, asker, f"Sorry, I couldn't make that picture: {reason}")
