"""Local accounts: create, look up and list them; the instance actor. Used by CLI and web."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from activitypub.keys import generate_rsa_keypair
from instance.errors import AccountError
from instance.storage.models import Account, AccountKind
from instance.urls import INSTANCE_ACTOR_USERNAME, LocalUrls

USERNAME_RE = re.compile(r"^[a-z0-9_]{1,30}$")
RESERVED = frozenset(
    {
        INSTANCE_ACTOR_USERNAME,
        "actor",
        "admin",
        "inbox",
        "media",
        "api",
        "static",
        "tags",
        "well_known",
        "nodeinfo",
        "root",
        "system",
        "dreamloom",
    }
)
MAX_PASSWORD_BYTES = 1024  # argon2 over a megabyte of password is a denial of service
_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile defaults


@dataclass(frozen=True)
class NewAccount:
    username: str
    ai: bool = False
    display_name: str = ""
    bio: str = ""
    password: str | None = None
    persona: dict[str, Any] | None = None
    manually_approves_followers: bool = False


def validate_username(name: str) -> str:
    if not USERNAME_RE.match(name):
        raise AccountError(
            f"invalid account name {name!r}: use 1-30 lower-case letters, digits or underscores"
        )
    if name in RESERVED:
        raise AccountError(f"the account name {name!r} is reserved")
    return name


def hash_password(password: str) -> str:
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise AccountError(f"password too long (at most {MAX_PASSWORD_BYTES} bytes)")
    if len(password) < 8:
        raise AccountError("password too short (at least 8 characters)")
    return _hasher.hash(password)


def verify_password(account: Account, password: str) -> bool:
    """Constant-work check; rehashes are the caller's business via needs_rehash()."""
    if not account.password_hash or len(password.encode()) > MAX_PASSWORD_BYTES:
        return False
    try:
        return _hasher.verify(account.password_hash, password)
    except Exception:
        return False


def needs_rehash(account: Account) -> bool:
    return bool(account.password_hash) and _hasher.check_needs_rehash(account.password_hash or "")


def _local_account(urls: LocalUrls, username: str, kind: AccountKind) -> Account:
    private_pem, public_pem = generate_rsa_keypair()
    actor = urls.actor(username)
    return Account(
        username=username,
        username_key=username.casefold(),
        domain="",
        local=True,
        uri=actor,
        kind=kind,
        url=urls.profile(username) if kind != "Application" else urls.base + "/about",
        inbox_uri=urls.inbox(username),
        shared_inbox_uri=urls.shared_inbox(),
        outbox_uri=urls.outbox(username),
        followers_uri=urls.followers(username),
        following_uri=urls.following(username),
        featured_uri=urls.featured(username),
        key_id=urls.key_id(username),
        public_key_pem=public_pem,
        private_key_pem=private_pem,
        bot=kind in {"Service", "Application"},
    )


async def create_account(session: AsyncSession, urls: LocalUrls, new: NewAccount) -> Account:
    """Create a local account with a fresh RSA-2048 key; AccountError if the name is taken."""
    username = validate_username(new.username)
    if await find_local(session, username) is not None:
        raise AccountError(f"the account name {username!r} is already taken")
    account = _local_account(urls, username, "Service" if new.ai else "Person")
    account.display_name = new.display_name or username
    account.summary = new.bio
    account.manually_approves_followers = new.manually_approves_followers
    if new.password is not None:
        account.password_hash = hash_password(new.password)
    if new.ai:
        account.persona = new.persona or {}
    session.add(account)
    try:
        await session.flush()
    except IntegrityError:
        raise AccountError(f"the account name {username!r} is already taken") from None
    return account


async def ensure_instance_actor(session: AsyncSession, urls: LocalUrls, name: str) -> Account:
    """The Application actor that signs our GETs (servers in authorized-fetch mode refuse
    unsigned ones); created once, never changed."""
    existing = await find_local(session, INSTANCE_ACTOR_USERNAME)
    if existing is not None:
        return existing
    account = _local_account(urls, INSTANCE_ACTOR_USERNAME, "Application")
    account.display_name = name
    account.manually_approves_followers = True
    account.discoverable = False
    session.add(account)
    await session.flush()
    return account


async def find_local(session: AsyncSession, username: str) -> Account | None:
    return await session.scalar(
        select(Account).where(
            Account.local.is_(True),
            Account.username_key == username.casefold(),
            Account.deleted_at.is_(None),
        )
    )


async def get_local(session: AsyncSession, username: str) -> Account:
    account = await find_local(session, username)
    if account is None:
        raise AccountError(f"no local account named {username!r}")
    return account


async def list_local(session: AsyncSession) -> list[Account]:
    rows = await session.scalars(
        select(Account)
        .where(Account.local.is_(True), Account.deleted_at.is_(None))
        .order_by(Account.created_at, Account.id)
    )
    return list(rows)


async def count_local_users(session: AsyncSession) -> int:
    return int(
        await session.scalar(
            select(func.count())
            .select_from(Account)
            .where(
                Account.local.is_(True),
                Account.deleted_at.is_(None),
                Account.username != INSTANCE_ACTOR_USERNAME,
            )
        )
        or 0
    )
