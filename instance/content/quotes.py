"""Remix approval with FEP-044f quotes, both ways (INTEROP H 43-47).

When others remix (quote) our posts:
- `answer_quote_request` checks the request (the instrument is on the requester's host, the
  target is our public post) and answers Accept with a stamp URL, or Reject;
- the stamp is served at that URL as a `QuoteAuthorization`, never embedding their note;
- `revoke` deletes the stamp and federates the Delete.

When we remix a remote post:
- the remix is stored but not yet federated; `request_quote` sends QuoteRequest with the remix
  inlined as `instrument` to the parent's author;
- `on_accept` takes the stamp (on the Accept actor's host, INTEROP 44) and publishes with the
  quote fields; `on_reject`, or no answer within QUOTE_TIMEOUT (`expire_pending`), publishes
  a plain link and mention, respecting the author's choice.
Remixes of our own instance's posts are stamped locally, at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from activitypub.objects import AS_CONTEXT, id_of
from activitypub.urls import same_origin
from instance.content.notes import NOTE_CONTEXT, note_json
from instance.content.posting import federate_post, load_media
from instance.outbound.fanout import enqueue
from instance.storage.ids import new_public_id
from instance.storage.models import Account, Post, QuoteAuthorization
from instance.urls import LocalUrls

QUOTE_TIMEOUT = timedelta(minutes=10)
FEP_044F_CONTEXT: list[Any] = [
    AS_CONTEXT,
    {
        "QuoteRequest": "https://w3id.org/fep/044f#QuoteRequest",
        "QuoteAuthorization": "https://w3id.org/fep/044f#QuoteAuthorization",
        "quote": {"@id": "https://w3id.org/fep/044f#quote", "@type": "@id"},
        "interactingObject": {"@id": "gts:interactingObject", "@type": "@id"},
        "interactionTarget": {"@id": "gts:interactionTarget", "@type": "@id"},
        "gts": "https://gotosocial.org/ns#",
    },
]


def quote_request_id(remix: Post) -> str:
    return f"{remix.uri}/quote_request"


# -- others remixing our posts -------------------------------------------------------------
async def answer_quote_request(
    session: AsyncSession,
    urls: LocalUrls,
    request: dict[str, Any],
    requester: Account,
) -> str:
    """Accept (with a stamp) or Reject a QuoteRequest for one of our posts; returns which."""
    target_uri = id_of(request.get("object"))
    instrument = id_of(request.get("instrument"))
    target = await session.scalar(
        select(Post).where(Post.uri == target_uri, Post.local.is_(True))
    ) if target_uri else None  # fmt: skip
    author = await session.get(Account, target.account_id) if target else None
    acceptable = (
        target is not None
        and author is not None
        and target.deleted_at is None
        and target.visibility in ("public", "unlisted")
        and instrument is not None
        and same_origin(instrument, requester.uri)
    )
    if author is None:
        return "ignored"  # not ours: nothing to answer
    embedded = {k: v for k, v in request.items() if k != "@context"}
    if not acceptable or target is None or instrument is None:
        reject = {
            "@context": FEP_044F_CONTEXT,
            "id": urls.activity(author.username, new_public_id()),
            "type": "Reject",
            "actor": author.uri,
            "object": embedded,
        }
        await _send(session, urls, author, reject, requester)
        return "rejected"
    stamp = await session.scalar(
        select(QuoteAuthorization).where(QuoteAuthorization.quoting_uri == instrument)
    )
    if stamp is None:
        stamp = QuoteAuthorization(
            post_id=target.id, quoting_uri=instrument, actor_uri=requester.uri
        )
        session.add(stamp)
        await session.flush()
    accept = {
        "@context": FEP_044F_CONTEXT,
        "id": urls.activity(author.username, new_public_id()),
        "type": "Accept",
        "actor": author.uri,
        "to": [requester.uri],
        "object": embedded,
        "result": urls.quote_authorization(author.username, stamp.public_id),
    }
    await _send(session, urls, author, accept, requester)
    return "accepted"


def stamp_json(
    stamp: QuoteAuthorization, author: Account, target: Post, urls: LocalUrls
) -> dict[str, Any]:
    """The QuoteAuthorization document; it names their note, never embeds it (INTEROP 47)."""
    return {
        "@context": FEP_044F_CONTEXT,
        "id": urls.quote_authorization(author.username, stamp.public_id),
        "type": "QuoteAuthorization",
        "attributedTo": author.uri,
        "interactingObject": stamp.quoting_uri,
        "interactionTarget": target.uri,
    }


async def revoke(
    session: AsyncSession, urls: LocalUrls, stamp: QuoteAuthorization, now: datetime
) -> None:
    """Withdraw an approval: the stamp answers 410 and a Delete of it is federated."""
    if stamp.revoked_at is not None:
        return
    target = await session.get_one(Post, stamp.post_id)
    author = await session.get_one(Account, target.account_id)
    stamp.revoked_at = now
    stamp_id = urls.quote_authorization(author.username, stamp.public_id)
    delete = {
        "@context": AS_CONTEXT,
        "id": urls.activity(author.username, new_public_id()),
        "type": "Delete",
        "actor": author.uri,
        "object": stamp_id,
        "to": [stamp.actor_uri],
    }
    requester = await session.scalar(select(Account).where(Account.uri == stamp.actor_uri))
    inboxes = [requester.inbox_uri] if requester and requester.inbox_uri else []
    await enqueue(session, urls, author, delete, inboxes=inboxes, to_followers=True)


async def _send(
    session: AsyncSession,
    urls: LocalUrls,
    author: Account,
    activity: dict[str, Any],
    to: Account,
) -> None:
    if to.local:
        return  # local requesters are answered in-process (stamp_locally)
    await enqueue(session, urls, author, activity, inboxes=[to.inbox_uri or ""])


# -- our remixes -----------------------------------------------------------------------------
async def stamp_locally(session: AsyncSession, urls: LocalUrls, remix: Post, parent: Post) -> None:
    """A remix of a post on this instance: approve at once, the stamp on our host."""
    author = await session.get_one(Account, parent.account_id)
    stamp = QuoteAuthorization(post_id=parent.id, quoting_uri=remix.uri, actor_uri=author.uri)
    session.add(stamp)
    await session.flush()
    remix.quote_authorization_uri = urls.quote_authorization(author.username, stamp.public_id)
    remix.quote_state = "accepted"


async def request_quote(
    session: AsyncSession, urls: LocalUrls, author: Account, remix: Post, parent_author: Account
) -> None:
    """Ask the parent's author for approval; the remix is published once they answer."""
    remix.quote_state = "pending"
    note = note_json(remix, author, await load_media(session, remix), urls, with_context=False)
    request = {
        "@context": [*NOTE_CONTEXT, {"QuoteRequest": "https://w3id.org/fep/044f#QuoteRequest"}],
        "id": quote_request_id(remix),
        "type": "QuoteRequest",
        "actor": author.uri,
        "object": remix.quote_uri,
        "instrument": note,
        "to": [parent_author.uri],
    }
    await enqueue(session, urls, author, request, inboxes=[parent_author.inbox_uri or ""])


async def _pending_remix(session: AsyncSession, request_id: str | None) -> Post | None:
    if not request_id or not request_id.endswith("/quote_request"):
        return None
    remix_uri = request_id.removesuffix("/quote_request")
    return await session.scalar(
        select(Post).where(
            Post.uri == remix_uri, Post.local.is_(True), Post.quote_state == "pending"
        )
    )


async def on_accept(
    session: AsyncSession, urls: LocalUrls, accept: dict[str, Any], sender: Account
) -> bool:
    """The parent's author accepted our QuoteRequest: publish the remix with the stamp."""
    remix = await _pending_remix(session, id_of(accept.get("object")))
    stamp = id_of(accept.get("result"))
    if remix is None or stamp is None or not same_origin(stamp, sender.uri):
        return False  # INTEROP 44: the stamp must be on the Accept actor's host
    parent = await session.scalar(select(Post).where(Post.uri == remix.quote_uri))
    if parent is not None and parent.account_id != sender.id:
        return False  # only the quoted post's author can approve
    remix.quote_state, remix.quote_authorization_uri = "accepted", stamp
    await federate_post(session, urls, await session.get_one(Account, remix.account_id), remix)
    return True


async def on_reject(
    session: AsyncSession, urls: LocalUrls, reject: dict[str, Any], sender: Account
) -> bool:
    remix = await _pending_remix(session, id_of(reject.get("object")))
    if remix is None:
        return False
    parent = await session.scalar(select(Post).where(Post.uri == remix.quote_uri))
    if parent is not None and parent.account_id != sender.id:
        return False
    await _publish_as_link(session, urls, remix)
    return True


async def expire_pending(session: AsyncSession, urls: LocalUrls, now: datetime) -> int:
    """Remixes whose approval never came: publish them as links (INTEROP 46.3). Each one is
    claimed by a conditional UPDATE, so concurrent workers publish it once."""
    candidates = list(
        await session.scalars(
            select(Post.id).where(
                Post.local.is_(True),
                Post.quote_state == "pending",
                Post.published < now - QUOTE_TIMEOUT,
            )
        )
    )
    published = 0
    for post_id in candidates:
        claimed = await session.execute(
            update(Post)
            .where(Post.id == post_id, Post.quote_state == "pending")
            .values(quote_state="link", quote_authorization_uri=None)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount == 1:  # type: ignore[attr-defined]
            remix = await session.get_one(Post, post_id, populate_existing=True)
            await _publish_as_link(session, urls, remix)
            published += 1
    return published


async def _publish_as_link(session: AsyncSession, urls: LocalUrls, remix: Post) -> None:
    remix.quote_state = "link"
    remix.quote_authorization_uri = None
    await federate_post(session, urls, await session.get_one(Account, remix.account_id), remix)
