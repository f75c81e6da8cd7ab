"""Ask by mention: anyone who mentions an AI account with a description gets a picture back.

The text of the mentioning post, without the mentions, becomes the prompt (in the account's
persona); the image is posted as a reply that mentions the asker. Every ask is recorded
(`Ask`), and what may be asked is decided here:

- nothing to draw (the post only mentions the account), a prompt that is too long, or one
  the account will not draw (BLOCKED_WORDS, matched however it is spelled: case, accents,
  look-alike letters from other alphabets, digits for letters, letters spaced apart);
- quotas: QUOTA_PER_ACCOUNT pictures per asker and QUOTA_PER_SITE per site (the asker's
  registrable domain, whatever host, port or subdomain it uses) in QUOTA_WINDOW, so nobody
  keeps the GPU to themselves;
- remote asks take at most half of `[generator] max_queue`: local users always find room;
- a full queue or low disk (the generation's own refusal message), a prompt too long for
  the model's tokenizer (refused before it is queued);
- a generation that fails later (blocked by the safety checker, out of memory, a tokenizer
  not yet on disk): `answer_failed` replies with the job's reason.

A refusal is a polite reply that says why, at most one per asker in QUOTA_WINDOW: asks past
that are dropped without a reply, so mentioning a bot 40 times does not get 40 posts back.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from activitypub.addressing import Visibility
from generator.recipe import MAX_PROMPT_CHARS
from instance.content.posting import Draft, publish
from instance.content.text import plain_text
from instance.errors import GenerationRefused, InvalidGenerationRequest
from instance.generation.requests import ACTIVE, enqueue
from instance.runtime import Runtime
from instance.storage.idempotent import insert_rows
from instance.storage.models import Account, Ask, AskOutcome, GenerationJob, Post
from instance.urls import site_of

QUOTA_PER_ACCOUNT = 5
QUOTA_PER_SITE = 20
QUOTA_WINDOW = timedelta(hours=1)
REMOTE_SHARE = 0.5  # of [generator] max_queue
BLOCKED_WORDS = frozenset(
    {"nude", "naked", "nsfw", "porn", "gore", "child", "children", "minor", "kid", "kids"}
)
_LOOKALIKES = str.maketrans(
    "абвгдеёзіїјклмнорстуфхцчшщыьэюяѕԁɡαβγδεζηικλμνοπρστυφχψω",
    "abvgdeeziijklmhopctyfxcchhyyeuasdgabydeznikamvoprstufxpw",
)  # Cyrillic and Greek letters that pass for Latin ones (and their transliterations)
_DIGITS_FOR_LETTERS = str.maketrans("013457@$!|", "oieastasil")
_MENTION = re.compile(r"(?<![\w])@[\w.-]+(?:@[\w.-]+(?::\d+)?)?")
ANSWER_VISIBILITY: dict[str, Visibility] = {
    "public": "unlisted", "unlisted": "unlisted", "followers": "direct", "direct": "direct",
}  # fmt: skip
"""The visibility of our answer to an ask: never on public timelines, never wider than the
ask itself."""


def prompt_of(post: Post) -> str:
    """The post's text without its mentions: the links that its markup and its Mention tags
    say are mentions, then any @user@host left in plain text (and without the quote-inline
    fallback)."""
    hrefs = {t["href"] for t in post.tags or []
             if t.get("type") == "Mention" and isinstance(t.get("href"), str)}  # fmt: skip
    text = plain_text(post.content, without_mentions=hrefs)
    return " ".join(_MENTION.sub(" ", text).split())


def refusal(prompt: str) -> str | None:
    if not prompt:
        return (
            "Mention me with a description of the picture you would like, "
            "for example: “a lighthouse on a cliff at dawn, watercolour”."
        )
    if len(prompt) > MAX_PROMPT_CHARS:
        return f"That description is too long ({len(prompt)} characters); keep it shorter."
    if asks_for_blocked(prompt):
        return "I can't make that picture: it asks for something I don't draw. Try another idea?"
    return None


def asks_for_blocked(prompt: str) -> bool:
    """Whether a BLOCKED_WORD is in `prompt`, however it is spelled (module docstring)."""
    text = unicodedata.normalize("NFKD", prompt)  # fullwidth and styled letters -> plain
    text = "".join(c for c in text if not unicodedata.combining(c)
                   and unicodedata.category(c) != "Cf")  # accents, zero-width marks  # fmt: skip
    text = text.casefold().translate(_LOOKALIKES).translate(_DIGITS_FOR_LETTERS)
    words = re.findall(r"[a-z]+", text)
    if any(_is_blocked(word) for word in words):
        return True
    return any(b in run for run in _spelled_out(words) for b in BLOCKED_WORDS)


def _is_blocked(word: str) -> bool:
    for form in (word, re.sub(r"(.)\1+", r"\1", word)):  # "nuuude"
        if form in BLOCKED_WORDS or form.removesuffix("s") in BLOCKED_WORDS:
            return True
    return False


def _spelled_out(words: list[str]) -> list[str]:
    """Runs of single letters ("n u d e", "n.u.d.e"), joined."""
    runs, run = [], []
    for word in [*words, ""]:
        if len(word) == 1:
            run.append(word)
            continue
        if len(run) > 1:
            runs.append("".join(run))
        run = []
    return runs


@dataclass(frozen=True)
class Standing:
    """What the database says about one ask, read in one statement: whether the post was
    answered already (an Ask of this bot, or a reply by it), the asker's and its site's
    queued asks and the asker's refusals in QUOTA_WINDOW, and the jobs queued for remote
    askers. All of them are indexed lookups; none scans by the post's own `published`,
    which its author sets."""

    answered: bool
    mine: int
    theirs: int
    refused_lately: bool
    waiting_remote: int


def _standing_query() -> Select[Any]:
    """The one statement of `Standing`, built once (its parameters are bound per ask)."""
    recent = (Ask.created_at >= bindparam("since"),)
    queued = select(func.count()).select_from(Ask).where(*recent, Ask.outcome == "queued")
    remote = select(Account.uri).where(Account.local.is_(False))
    return select(
        select(Ask.id).where(Ask.post_id == bindparam("post_id"), Ask.bot_id == bindparam("bot_id"))
        .exists(),
        select(Post.id).where(Post.account_id == bindparam("bot_id"),
                              Post.in_reply_to_id == bindparam("post_id")).exists(),
        queued.where(Ask.asker_uri == bindparam("asker")).scalar_subquery(),
        queued.where(Ask.site == bindparam("site")).scalar_subquery(),
        select(Ask.id).where(*recent, Ask.asker_uri == bindparam("asker"),
                             Ask.outcome == "refused").exists(),
        select(func.count()).select_from(GenerationJob)
        .where(GenerationJob.status.in_(ACTIVE), GenerationJob.requested_by.in_(remote))
        .scalar_subquery(),
    )  # fmt: skip


STANDING = _standing_query()


async def _standing(
    session: AsyncSession, rt: Runtime, bot: Account, post: Post, asker: Account
) -> Standing:
    params = {"since": rt.now() - QUOTA_WINDOW, "post_id": post.id, "bot_id": bot.id,
              "asker": asker.uri, "site": site_of(asker.domain)}  # fmt: skip
    asked, replied, mine, theirs, refused, waiting = (await session.execute(STANDING, params)).one()
    return Standing(bool(asked or replied), mine or 0, theirs or 0, bool(refused), waiting or 0)


def _over_quota(rt: Runtime, asker: Account, standing: Standing) -> str | None:
    if standing.mine >= QUOTA_PER_ACCOUNT:
        return (
            f"You've asked me for {standing.mine} pictures in the last hour, which is my "
            "limit per person; please ask again a little later."
        )
    if standing.theirs >= QUOTA_PER_SITE:
        return (
            f"People on {site_of(asker.domain)} have asked me for {standing.theirs} pictures "
            "in the last hour, my limit per server; please ask again a little later."
        )
    if standing.waiting_remote >= max(1, int(rt.settings.generator.max_queue * REMOTE_SHARE)):
        return (
            "I have as many pictures to make for people elsewhere as I take at once; please "
            "ask again a little later."
        )
    return None


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
    if bot.suspended_at is not None:
        return "ignored"  # a suspended account answers nothing
    standing = await _standing(session, rt, bot, post, asker)
    if standing.answered:
        return "already answered"
    prompt = prompt_of(post)
    why = refusal(prompt) or _over_quota(rt, asker, standing)
    if why is None:
        then = {"answer": {"in_reply_to_post_id": post.id, "mention_account_ids": [asker.id],
                           "visibility": ANSWER_VISIBILITY.get(post.visibility, "direct"),
                           "text": prompt}}  # fmt: skip
        try:
            async with session.begin_nested():
                await enqueue(session, rt, bot, prompt, then=then, requested_by=asker.uri)
        except InvalidGenerationRequest as exc:
            why = f"Sorry, I couldn't make that picture: {exc}"
        except GenerationRefused as exc:
            why = f"I can't start on that right now: {exc}"
    if why is None:
        return await _record(session, rt, bot, asker, post, "queued")
    if standing.refused_lately:
        return await _record(session, rt, bot, asker, post, "dropped")
    await reply_text(session, rt, bot, post, asker, why)
    return await _record(session, rt, bot, asker, post, "refused")


async def _record(
    session: AsyncSession, rt: Runtime, bot: Account, asker: Account, post: Post,
    outcome: AskOutcome,
) -> str:  # fmt: skip
    await insert_rows(session, Ask, [{
        "bot_id": bot.id, "asker_uri": asker.uri, "site": site_of(asker.domain),
        "post_id": post.id, "outcome": outcome, "created_at": rt.now(),
    }])  # fmt: skip
    return outcome


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
