"""Remix approval with FEP-044f quotes, both ways (the shapes: activitypub/notes.py).

When others remix (quote) our posts:
- `answer_quote_request` checks the request (the quoting Note, its `instrument`, lives on the
  requester's server; the target is one of our posts that may be quoted) and answers Accept
  with a stamp URL, or Reject;
- the stamp is served at that URL as a `QuoteAuthorization`;
- `revoke` withdraws the stamp and federates its Delete (`dreamloom revoke-remix`);
- a quote of our post counts (lineage, notifications) only with a stamp we `issued` for it
  (instance/inbound/handlers/notes.py).

When we remix a remote post:
- when the parent's server takes QuoteRequests (`takes_quote_requests`: the parent says
  who may quote it in `interactionPolicy.canQuote`, as Mastodon 4.5 and Dreamloom do), the
  remix is stored but not yet federated and `request_quote` sends a QuoteRequest with the
  remix inlined as `instrument` to the parent's author; otherwise (GoToSocial 0.20,
  Misskey, older Mastodon) it is published at once, quoting by `quoteUrl` and a Link tag
  (`publish_unapproved`);
- `on_accept` takes the stamp, which must live on the Accept actor's own server, and
  publishes the remix with the quote fields; `on_stamp_deleted` (the author revoked it)
  makes it a plain link again, federated as an Update; `on_reject`, an error answer to the request
  (not retried: instance/queues.py ONE_TRY_KINDS), or no answer within QUOTE_TIMEOUT
  (`expire_pending`) publishes a plain link and mention instead, respecting the author's
  choice.
Remixes of posts on this instance are stamped locally, at once.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from activitypub.notes import (
    build_quote_answer,
    build_quote_authorization,
    build_quote_request,
)
from activitypub.objects import AS_CONTEXT, id_of
from activitypub.urls import same_origin
from instance.content.notes import note_json
from instance.content.posting import Draft, federate_post, federate_update, load_media, publish
from instance.content.visibility import can_quote
from instance.errors import PostingError
from instance.outbound.fanout import enqueue
from instance.runtime import Runtime
from instance.storage.ids import new_public_id
from instance.storage.models import Account, Delivery, OutboundActivity, Post, QuoteAuthorization
from instance.urls import LocalUrls

QUOTE_TIMEOUT = timedelta(minutes=10)


def quote_request_id(remix: Post) -> str:
    """Our QuoteRequest's id: the remix's id with `/quote_request`, so an answer that only
    names the request leads back to the remix."""
    return f"{remix.uri}/quote_request"


# -- others remixing our posts -------------------------------------------------------------
async def answer_quote_request(
    session: AsyncSession, rt: Runtime, request: dict[str, Any], requester: Account
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
        and can_quote(target)
        and instrument is not None
        and same_origin(instrument, requester.uri)
    )
    if author is None:
        return "ignored"  # not ours: nothing to answer
    activity_id = rt.urls.activity(author.username, new_public_id())
    if not acceptable or target is None or instrument is None:
        reject = build_quote_answer(answer="Reject", activity_id=activity_id, actor=author.uri,
                                    request=request, to=requester.uri)  # fmt: skip
        await _send(session, rt, author, reject, requester)
        return "rejected"
    stamp = await session.scalar(
        select(QuoteAuthorization).where(QuoteAuthorization.quoting_uri == instrument)
    )
    if stamp is not None and stamp.post_id != target.id:
        # a note quotes one post: its stamp is for that one, and never answers for another
        reject = build_quote_answer(answer="Reject", activity_id=activity_id, actor=author.uri,
                                    request=request, to=requester.uri)  # fmt: skip
        await _send(session, rt, author, reject, requester)
        return "rejected"
    if stamp is None:
        stamp = QuoteAuthorization(post_id=target.id, quoting_uri=instrument,
                                   actor_uri=requester.uri, created_at=rt.now())  # fmt: skip
        session.add(stamp)
        await session.flush()
    accept = build_quote_answer(
        answer="Accept", activity_id=activity_id, actor=author.uri, request=request,
        to=requester.uri,
        authorization=rt.urls.quote_authorization(author.username, stamp.public_id),
    )  # fmt: skip
    await _send(session, rt, author, accept, requester)
    return "accepted"


def stamp_json(
    stamp: QuoteAuthorization, author: Account, target: Post, urls: LocalUrls
) -> dict[str, Any]:
    """The QuoteAuthorization document we serve for a stamp we issued."""
    return build_quote_authorization(
        authorization_id=urls.quote_authorization(author.username, stamp.public_id),
        author=author.uri,
        quoting=stamp.quoting_uri,
        quoted=target.uri,
    )


async def revoke(session: AsyncSession, rt: Runtime, stamp: QuoteAuthorization) -> None:
    """Withdraw an approval: the stamp answers 404 and a Delete of it is federated."""
    if stamp.revoked_at is not None:
        return
    target = await session.get_one(Post, stamp.post_id)
    author = await session.get_one(Account, target.account_id)
    stamp.revoked_at = rt.now()
    stamp_id = rt.urls.quote_authorization(author.username, stamp.public_id)
    delete = {
        "@context": AS_CONTEXT,
        "id": rt.urls.activity(author.username, new_public_id()),
        "type": "Delete",
        "actor": author.uri,
        "object": stamp_id,
        "to": [stamp.actor_uri],
    }
    requester = await session.scalar(select(Account).where(Account.uri == stamp.actor_uri))
    await enqueue(session, rt, author, delete, to=[requester] if requester else [],
                  to_followers=True)  # fmt: skip
    await session.execute(  # no longer an approved quote here either
        update(Post).where(Post.uri == stamp.quoting_uri, Post.local.is_(False))
        .values(quote_id=None).execution_options(synchronize_session=False)
    )  # fmt: skip


async def issued(
    session: AsyncSession, rt: Runtime, stamp_uri: str, *, quoting: str, quoted: Post
) -> bool:
    """Whether `stamp_uri` is a stamp we issued for `quoting` to quote `quoted`, still valid."""
    stamp = await session.scalar(
        select(QuoteAuthorization).where(
            QuoteAuthorization.quoting_uri == quoting,
            QuoteAuthorization.post_id == quoted.id,
            QuoteAuthorization.revoked_at.is_(None),
        )
    )
    author = await session.get(Account, quoted.account_id) if stamp else None
    if stamp is None or author is None:
        return False
    return stamp_uri == rt.urls.quote_authorization(author.username, stamp.public_id)


async def _send(
    session: AsyncSession, rt: Runtime, author: Account, activity: dict[str, Any], to: Account
) -> None:
    if to.local:
        return  # local requesters are answered in-process (stamp_locally)
    await enqueue(session, rt, author, activity, to=[to])


# -- our remixes -----------------------------------------------------------------------------
async def stamp_locally(session: AsyncSession, rt: Runtime, remix: Post, parent: Post) -> None:
    """A remix of a post on this instance: approve at once, the stamp on our host."""
    author = await session.get_one(Account, parent.account_id)
    stamp = QuoteAuthorization(post_id=parent.id, quoting_uri=remix.uri, actor_uri=author.uri,
                               created_at=rt.now())  # fmt: skip
    session.add(stamp)
    await session.flush()
    remix.quote_authorization_uri = rt.urls.quote_authorization(author.username, stamp.public_id)
    remix.quote_state = "accepted"


def takes_quote_requests(parent: Post) -> bool:
    """Whether the parent's server answers QuoteRequests: its Note says who may quote it
    (`interactionPolicy.canQuote`), which servers without FEP-044f quotes never send."""
    policy = (parent.raw or {}).get("interactionPolicy")
    return isinstance(policy, dict) and isinstance(policy.get("canQuote"), dict)


async def request_quote(
    session: AsyncSession, rt: Runtime, author: Account, remix: Post, parent_author: Account
) -> None:
    """Ask the parent's author for approval; the remix is published once they answer."""
    remix.quote_state = "pending"
    note = note_json(remix, author, await load_media(session, remix), rt.urls, with_context=False)
    request = build_quote_request(
        request_id=quote_request_id(remix), actor=author.uri, quoted=remix.quote_uri or "",
        instrument=note, to=parent_author.uri,
    )  # fmt: skip
    await enqueue(session, rt, author, request, to=[parent_author])


async def publish_quote(session: AsyncSession, rt: Runtime, author: Account, draft: Draft) -> Post:
    """Publish `draft`, which quotes `draft.quote`, and get its approval as a remix gets it:
    stamped at once for a post of this instance, asked for by a QuoteRequest where the
    parent's server answers them (federated once answered), else federated at once as an
    unapproved quote. PostingError when the quoted post may not be quoted."""
    parent = draft.quote
    if parent is None:
        raise PostingError("a quote needs the post it quotes")
    if parent.deleted_at is not None or not can_quote(parent):
        raise PostingError("only public and unlisted posts can be quoted")
    draft.quote_state = "pending"
    post = await publish(session, rt, author, draft, federate=False)
    if parent.local:
        await stamp_locally(session, rt, post, parent)
        await federate_post(session, rt, author, post)
    elif takes_quote_requests(parent):
        parent_author = await session.get_one(Account, parent.account_id)
        await request_quote(session, rt, author, post, parent_author)
    else:
        await publish_unapproved(session, rt, post)
    return post


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
    session: AsyncSession, rt: Runtime, accept: dict[str, Any], sender: Account
) -> bool:
    """The parent's author accepted our QuoteRequest: publish the remix with the stamp."""
    remix = await _pending_remix(session, id_of(accept.get("object")))
    stamp = id_of(accept.get("result"))
    if remix is None or stamp is None or not same_origin(stamp, sender.uri):
        return False  # a stamp on another server than the approver's proves nothing
    parent = await session.scalar(select(Post).where(Post.uri == remix.quote_uri))
    if parent is not None and parent.account_id != sender.id:
        return False  # only the quoted post's author can approve
    remix.quote_state, remix.quote_authorization_uri = "accepted", stamp
    await federate_post(session, rt, await session.get_one(Account, remix.account_id), remix)
    return True


async def on_reject(
    session: AsyncSession, rt: Runtime, reject: dict[str, Any], sender: Account
) -> bool:
    remix = await _pending_remix(session, id_of(reject.get("object")))
    if remix is None:
        return False
    parent = await session.scalar(select(Post).where(Post.uri == remix.quote_uri))
    if parent is not None and parent.account_id != sender.id:
        return False
    await publish_as_link(session, rt, remix)
    return True


async def on_stamp_deleted(
    session: AsyncSession, rt: Runtime, stamp_uri: str, sender: Account
) -> bool:
    """The quoted post's author revoked the stamp that approved one of our remixes
    (Mastodon sends Delete of the QuoteAuthorization): the remix becomes a plain link, and
    an Update tells everyone who has it."""
    remix = await session.scalar(
        select(Post).where(
            Post.local.is_(True),
            Post.quote_state == "accepted",
            Post.quote_authorization_uri == stamp_uri,
        )
    )
    if remix is None or not same_origin(stamp_uri, sender.uri):
        return False
    parent = await session.scalar(select(Post).where(Post.uri == remix.quote_uri))
    if parent is None or parent.account_id != sender.id:
        return False  # only the quoted post's author can take the approval back
    remix.quote_state, remix.quote_authorization_uri = "link", None
    remix.edited_at = rt.now()  # an Update carries `updated`, which readers compare
    await federate_update(session, rt, await session.get_one(Account, remix.account_id), remix)
    return True


async def expire_pending(session: AsyncSession, rt: Runtime) -> int:
    """Remixes still waiting: published as a plain link when no answer came within
    QUOTE_TIMEOUT; as an unapproved quote at once when the peer answered our QuoteRequest
    with an error (its server cannot approve quotes). Each one is claimed by a conditional
    UPDATE, so concurrent workers publish it once."""
    pending = (Post.local.is_(True), Post.quote_state == "pending")
    refused = set(await session.scalars(
        select(Post.id)
        .join(OutboundActivity, OutboundActivity.uri == Post.uri + "/quote_request")
        .join(Delivery, Delivery.activity_id == OutboundActivity.id)
        .where(*pending, Delivery.status == "failed")
    ))  # fmt: skip
    late = set(await session.scalars(
        select(Post.id).where(*pending, Post.published < rt.now() - QUOTE_TIMEOUT)
    ))  # fmt: skip
    published = 0
    for post_id in sorted(refused | late):
        claimed = await session.execute(
            update(Post)
            .where(Post.id == post_id, Post.quote_state == "pending")
            .values(quote_state="link", quote_authorization_uri=None)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount == 1:  # type: ignore[attr-defined]
            remix = await session.get_one(Post, post_id, populate_existing=True)
            publish = publish_unapproved if post_id in refused else publish_as_link
            await publish(session, rt, remix)
            published += 1
    return published


async def publish_unapproved(session: AsyncSession, rt: Runtime, remix: Post) -> None:
    """Federate a remix of a post whose server cannot approve quotes: a quote by `quoteUrl`
    and the Link tag, the way servers without FEP-044f quote."""
    remix.quote_state = "unapproved"
    remix.quote_authorization_uri = None
    await federate_post(session, rt, await session.get_one(Account, remix.account_id), remix)


async def publish_as_link(session: AsyncSession, rt: Runtime, remix: Post) -> None:
    """Federate a remix as a link to its parent and a mention (no quote fields)."""
    remix.quote_state = "link"
    remix.quote_authorization_uri = None
    await federate_post(session, rt, await session.get_one(Account, remix.account_id), remix)
