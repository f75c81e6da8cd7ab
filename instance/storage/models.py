"""SQLAlchemy 2 models: every table of an instance, for SQLite and PostgreSQL alike.

Accounts (local and remote), their follows, posts with media, likes, boosts and mentions,
notifications; and the durable work rows that make the two flows crash-safe: inbox items
(inbound), outbound activities with one delivery row per target inbox, generation jobs.
Schema changes go through Alembic (instance/storage/migrations), never `create_all`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from activitypub.addressing import Visibility
from instance.storage.ids import new_public_id

AccountKind = Literal["Person", "Service", "Application", "Group", "Organization"]
"""Ours are Person (people), Service (AI accounts) and Application (the instance actor)."""
NotificationKind = Literal["follow", "follow_request", "like", "boost", "mention", "reply", "remix"]
AskOutcome = Literal["queued", "refused", "dropped"]
"""An ask by mention: a picture queued, a refusal replied, or dropped without a reply."""
QuoteState = Literal["pending", "accepted", "link", "unapproved"]
"""A remix of ours: waiting for the parent's author, approved (stamp), published as a link
(refused or unanswered), or as a quote that the parent's server cannot approve."""
WorkStatus = Literal["queued", "running", "done", "failed", "blocked", "gone", "cancelled"]
"""queued/running/done/failed for every work row; generation jobs can be blocked (safety
checker), deliveries gone (410)."""

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Id = BigInteger().with_variant(Integer, "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class TZDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both backends (SQLite stores them naive, in UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: TZDateTime,
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class Account(Base):
    """A local or remote actor. Local accounts hold their private key; remote ones a cache."""

    __tablename__ = "accounts"
    __table_args__ = (UniqueConstraint("username_key", "domain"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    username: Mapped[str] = mapped_column(String(255))
    username_key: Mapped[str] = mapped_column(String(255))  # casefolded, for lookups
    domain: Mapped[str] = mapped_column(String(255), default="")  # "" for local accounts
    local: Mapped[bool] = mapped_column(Boolean, default=False)
    uri: Mapped[str] = mapped_column(String(2048), unique=True)
    kind: Mapped[AccountKind] = mapped_column(String(32), default="Person")
    display_name: Mapped[str] = mapped_column(String(255), default="")
    summary: Mapped[str] = mapped_column(Text, default="")  # sanitised HTML
    url: Mapped[str | None] = mapped_column(String(2048))
    inbox_uri: Mapped[str | None] = mapped_column(String(2048))
    shared_inbox_uri: Mapped[str | None] = mapped_column(String(2048))
    outbox_uri: Mapped[str | None] = mapped_column(String(2048))
    followers_uri: Mapped[str | None] = mapped_column(String(2048))
    following_uri: Mapped[str | None] = mapped_column(String(2048))
    featured_uri: Mapped[str | None] = mapped_column(String(2048))
    key_id: Mapped[str | None] = mapped_column(String(2048), unique=True)
    public_key_pem: Mapped[str | None] = mapped_column(Text)
    private_key_pem: Mapped[str | None] = mapped_column(Text)
    manually_approves_followers: Mapped[bool] = mapped_column(Boolean, default=False)
    discoverable: Mapped[bool] = mapped_column(Boolean, default=True)
    bot: Mapped[bool] = mapped_column(Boolean, default=False)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    persona: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # AI accounts: style, recipe
    schedule_minutes: Mapped[int | None] = mapped_column(Integer)
    next_post_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    avatar_url: Mapped[str | None] = mapped_column(String(2048))
    header_url: Mapped[str | None] = mapped_column(String(2048))  # the profile banner
    # a local account's profile fields, [{"name": ..., "value": ...}] as typed (plain text)
    fields: Mapped[list[Any]] = mapped_column(JSON, default=list)
    raw: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # last fetched actor document
    fetched_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    # set by an admin (`dreamloom account suspend`): refused to federate and hidden; follows kept
    suspended_at: Mapped[datetime | None] = mapped_column(TZDateTime, index=True)


class RemoteKey(Base):
    """Cache of remote public keys by keyId (a `#main-key` fragment or a GoToSocial key stub)."""

    __tablename__ = "remote_keys"

    key_id: Mapped[str] = mapped_column(String(2048), primary_key=True)
    owner_uri: Mapped[str] = mapped_column(String(2048), index=True)
    public_key_pem: Mapped[str] = mapped_column(Text)
    fetched_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)


class Follow(Base):
    __tablename__ = "follows"
    __table_args__ = (UniqueConstraint("follower_id", "followee_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    follower_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    followee_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    uri: Mapped[str] = mapped_column(String(2048), unique=True)  # the Follow activity id
    accepted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)

    follower: Mapped[Account] = relationship(foreign_keys=[follower_id], lazy="raise")
    followee: Mapped[Account] = relationship(foreign_keys=[followee_id], lazy="raise")


class Post(Base):
    """A Note, local or remote. Remixes point at their parent through quote_* and recipe."""

    __tablename__ = "posts"
    __table_args__ = (
        Index("ix_posts_account_published", "account_id", "published"),
        Index("ix_posts_local_published", "local", "published"),  # the local timeline
        Index("ix_posts_in_reply_to_id", "in_reply_to_id"),  # threads, replies, counters
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    uri: Mapped[str] = mapped_column(String(2048), unique=True)
    url: Mapped[str | None] = mapped_column(String(2048))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    local: Mapped[bool] = mapped_column(Boolean, default=False)
    content: Mapped[str] = mapped_column(Text, default="")  # sanitised HTML
    source: Mapped[str | None] = mapped_column(Text)  # the text a local author typed
    summary: Mapped[str | None] = mapped_column(Text)  # content warning
    sensitive: Mapped[bool] = mapped_column(Boolean, default=False)
    visibility: Mapped[Visibility] = mapped_column(String(16), default="public")
    language: Mapped[str | None] = mapped_column(String(16))
    to: Mapped[list[Any]] = mapped_column(JSON, default=list)
    cc: Mapped[list[Any]] = mapped_column(JSON, default=list)
    tags: Mapped[list[Any]] = mapped_column(JSON, default=list)  # Hashtag/Mention/Link tags
    in_reply_to_uri: Mapped[str | None] = mapped_column(String(2048), index=True)
    in_reply_to_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id", ondelete="SET NULL"))
    quote_uri: Mapped[str | None] = mapped_column(String(2048), index=True)  # remix parent
    quote_id: Mapped[int | None] = mapped_column(
        ForeignKey("posts.id", ondelete="SET NULL"), index=True
    )  # remixes of a post: Explore and the lineage tree look them up by it
    quote_state: Mapped[QuoteState | None] = mapped_column(String(16))
    quote_authorization_uri: Mapped[str | None] = mapped_column(String(2048))
    recipe: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    published: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow, index=True)
    edited_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    pinned_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    likes_count: Mapped[int] = mapped_column(Integer, default=0)
    boosts_count: Mapped[int] = mapped_column(Integer, default=0)
    replies_count: Mapped[int] = mapped_column(Integer, default=0)
    raw: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    account: Mapped[Account] = relationship(lazy="raise")
    media: Mapped[list[MediaAttachment]] = relationship(
        lazy="raise", order_by="MediaAttachment.position"
    )


class MediaAttachment(Base):
    __tablename__ = "media"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    post_id: Mapped[int | None] = mapped_column(
        ForeignKey("posts.id", ondelete="CASCADE"), index=True
    )
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    file_name: Mapped[str | None] = mapped_column(String(255))  # under the media dir (local)
    remote_url: Mapped[str | None] = mapped_column(String(2048))
    media_type: Mapped[str] = mapped_column(String(64), default="image/png")
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    blurhash: Mapped[str | None] = mapped_column(String(128))
    description: Mapped[str | None] = mapped_column(Text)  # alt text
    focal_x: Mapped[float] = mapped_column(Float, default=0.0)
    focal_y: Mapped[float] = mapped_column(Float, default=0.0)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)


class Like(Base):
    __tablename__ = "likes"
    __table_args__ = (UniqueConstraint("account_id", "post_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    uri: Mapped[str] = mapped_column(String(2048), unique=True)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)


class Boost(Base):
    """An Announce of a post."""

    __tablename__ = "boosts"
    __table_args__ = (
        UniqueConstraint("account_id", "post_id"),
        Index("ix_boosts_account_published", "account_id", "published"),  # home timelines
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    # the boost's status id in the client API (instance/api/entities.py): time-sortable
    # like Post.public_id, so boosts and posts page together on a home timeline
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    uri: Mapped[str] = mapped_column(String(2048), unique=True)
    published: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)


class Mention(Base):
    __tablename__ = "mentions"

    post_id: Mapped[int] = mapped_column(
        ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True
    )
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class PostTag(Base):
    __tablename__ = "post_tags"

    post_id: Mapped[int] = mapped_column(
        ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(255), primary_key=True, index=True)


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_account_created", "account_id", "created_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    kind: Mapped[NotificationKind] = mapped_column(String(16))
    from_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    post_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    dedupe_key: Mapped[str] = mapped_column(String(2048), unique=True)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(TZDateTime)


class Ask(Base):
    """Someone mentioned an AI account to ask for a picture: what came of it. Quotas count
    these (instance/generation/asks.py)."""

    __tablename__ = "asks"
    __table_args__ = (
        Index("ix_asks_asker_created", "asker_uri", "created_at"),
        Index("ix_asks_site_created", "site", "created_at"),
        Index("ix_asks_post_bot", "post_id", "bot_id"),  # each post is answered once
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    bot_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    asker_uri: Mapped[str] = mapped_column(String(2048))
    site: Mapped[str] = mapped_column(String(255))  # the asker's registrable domain
    post_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id", ondelete="SET NULL"))
    outcome: Mapped[AskOutcome] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)


class QuoteAuthorization(Base):
    """A FEP-044f stamp we issued for someone quoting (remixing) one of our posts."""

    __tablename__ = "quote_authorizations"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    quoting_uri: Mapped[str] = mapped_column(String(2048), unique=True)
    actor_uri: Mapped[str] = mapped_column(String(2048))
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(TZDateTime)


class Report(Base):
    """A Flag from another server about our accounts or posts, for the admin to review."""

    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    uri: Mapped[str] = mapped_column(String(2048), unique=True)  # the Flag activity id
    reporter_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    target_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    post_uris: Mapped[list[Any]] = mapped_column(JSON, default=list)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    # False: a Flag another server sent us; True: one our admin filed about a remote account
    outgoing: Mapped[bool] = mapped_column(Boolean, default=False)
    forwarded_at: Mapped[datetime | None] = mapped_column(TZDateTime)  # our Flag sent there
    action_taken: Mapped[list[Any]] = mapped_column(JSON, default=list)  # e.g. ["suspend"]


DomainSeverity = Literal["suspend", "silence", "noop"]
"""Mastodon's domain block severities: suspend (defederate), silence (off public timelines),
noop (no block; with reject_media, media only)."""


class DomainBlock(Base):
    """An admin's policy for a remote domain and its subdomains (instance/moderation/)."""

    __tablename__ = "domain_blocks"

    domain: Mapped[str] = mapped_column(String(255), primary_key=True)  # lower-case, IDNA
    severity: Mapped[DomainSeverity] = mapped_column(String(16), default="suspend")
    reject_media: Mapped[bool] = mapped_column(Boolean, default=False)
    reject_reports: Mapped[bool] = mapped_column(Boolean, default=False)
    public_comment: Mapped[str] = mapped_column(Text, default="")
    private_comment: Mapped[str] = mapped_column(Text, default="")
    obfuscate: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow, onupdate=utcnow)


class InstanceFlag(Base):
    """A small instance-wide switch an admin sets from the CLI and workers read at run time
    (e.g. `generator.paused`)."""

    __tablename__ = "instance_flags"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow, onupdate=utcnow)


class RoleHeartbeat(Base):
    """A running worker process says it is alive (instance/heartbeats.py; /healthz reads it)."""

    __tablename__ = "role_heartbeats"
    __table_args__ = (UniqueConstraint("role", "host", "pid"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    role: Mapped[str] = mapped_column(String(32))
    host: Mapped[str] = mapped_column(String(255))  # socket.gethostname()
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(TZDateTime)
    beat_at: Mapped[datetime] = mapped_column(TZDateTime, index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


# -- durable work rows ---------------------------------------------------------------------
class WorkRow:
    """Columns every durable work row shares; instance/jobs.py owns claiming and retrying."""

    status: Mapped[WorkStatus] = mapped_column(String(16), default="queued", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    run_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow, index=True)
    locked_until: Mapped[datetime | None] = mapped_column(TZDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(TZDateTime)


class InboxItem(WorkRow, Base):
    """A verified incoming activity, stored raw before the 202; a worker handles it. Handled
    rows are deleted after a while (instance/inbound/retention.py); `InboxSeen` remembers
    that they came."""

    __tablename__ = "inbox_items"
    __table_args__ = (  # the fair claim ranks due items per server (inbound/claim.py)
        Index("ix_inbox_items_status_host_run_at", "status", "sender_host", "run_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    activity_uri: Mapped[str] = mapped_column(String(2048))
    actor_uri: Mapped[str] = mapped_column(String(2048))
    sender_host: Mapped[str] = mapped_column(String(255), default="")  # actor's host, no port
    signer_key_id: Mapped[str | None] = mapped_column(String(2048))
    body: Mapped[str] = mapped_column(Text)


class InboxSeen(Base):
    """Every activity we accepted, by (actor, activity id), kept longer than its inbox row:
    a redelivered or replayed activity is accepted once. Compact: a hash and a time."""

    __tablename__ = "inbox_seen"

    dedupe_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow, index=True)


class OutboundActivity(Base):
    """An activity we send, serialised once: every delivery signs these exact bytes."""

    __tablename__ = "outbound_activities"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    uri: Mapped[str] = mapped_column(String(2048), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    object_uri: Mapped[str | None] = mapped_column(String(2048), index=True)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)


DELIVERY_ENDED: tuple[WorkStatus, ...] = ("done", "failed", "gone", "cancelled")
"""A delivery in one of these will not be sent again (unless an admin retries a failed one)."""


class Delivery(WorkRow, Base):
    """One outbound activity to one inbox."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("activity_id", "inbox_uri"),
        # the claim walks due rows in this order and stops (instance/outbound/claim.py)
        Index("ix_deliveries_due", "status", "run_at", "id"),
        # /metrics counts the last hour's outcomes; retention deletes the old ones
        Index("ix_deliveries_finished", "status", "finished_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    activity_id: Mapped[int] = mapped_column(
        ForeignKey("outbound_activities.id", ondelete="CASCADE"), index=True
    )
    inbox_uri: Mapped[str] = mapped_column(String(2048))
    host: Mapped[str] = mapped_column(String(255), index=True)
    last_status: Mapped[int | None] = mapped_column(Integer)


class DomainHealth(Base):
    """Per-domain delivery health: failures on distinct days pause a domain; inbound resumes it."""

    __tablename__ = "domain_health"

    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    failure_days: Mapped[list[Any]] = mapped_column(JSON, default=list)  # ISO dates
    last_success_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    last_failure_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)  # admin defederation
    # "rfc9421" for a server known to take RFC 9421 signatures; None: draft-cavage first
    # (instance/outbound/domains.py)
    signature_scheme: Mapped[str | None] = mapped_column(String(16))


class GenerationJob(WorkRow, Base):
    """A recipe waiting for the GPU worker, and what to do with the image afterwards."""

    __tablename__ = "generation_jobs"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    requested_by: Mapped[str | None] = mapped_column(String(2048))  # actor URI of the asker
    recipe: Mapped[dict[str, Any]] = mapped_column(JSON)
    shape_key: Mapped[str] = mapped_column(String(128), index=True)
    then: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # post/reply/remix options
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    media_id: Mapped[int | None] = mapped_column(ForeignKey("media.id", ondelete="SET NULL"))
    post_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id", ondelete="SET NULL"))


# -- the Mastodon client API (instance/api) ------------------------------------------------------
class OAuthApp(Base):
    """A client registered through `POST /api/v1/apps` (Mastodon calls it an application).
    Its secret is kept as a SHA-256 digest: it is shown once, when the app registers."""

    __tablename__ = "oauth_apps"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    secret_digest: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    website: Mapped[str | None] = mapped_column(String(2048))
    redirect_uris: Mapped[list[Any]] = mapped_column(JSON, default=list)
    scopes: Mapped[str] = mapped_column(String(1024), default="read")
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)


class OAuthCode(Base):
    """An authorization code a user granted on the consent page: single use, minutes long."""

    __tablename__ = "oauth_codes"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    code_digest: Mapped[str] = mapped_column(String(64), unique=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("oauth_apps.id", ondelete="CASCADE"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    redirect_uri: Mapped[str] = mapped_column(String(2048))
    scope: Mapped[str] = mapped_column(String(1024))
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    code_challenge_method: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(TZDateTime)


class OAuthToken(Base):
    """An access token (and its refresh token), kept as SHA-256 digests. A token of the
    client-credentials grant has no account: it may read only what anyone may read."""

    __tablename__ = "oauth_tokens"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    access_digest: Mapped[str] = mapped_column(String(64), unique=True)
    refresh_digest: Mapped[str | None] = mapped_column(String(64), unique=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("oauth_apps.id", ondelete="CASCADE"))
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    scope: Mapped[str] = mapped_column(String(1024))
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(TZDateTime)  # None: until revoked
    revoked_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(TZDateTime)


class ApiIdempotency(Base):
    """`Idempotency-Key` of a status created through the API: the same key from the same
    account within a day answers the post it made, instead of a second post."""

    __tablename__ = "api_idempotency"
    __table_args__ = (UniqueConstraint("account_id", "key"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    post_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
