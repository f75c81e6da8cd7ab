"""What both signature schemes share.

Owns the public types (`SignatureScheme`, `KeyResolver`, `HeaderInput`,
`VerifiedSignature`), Mastodon's time window (`check_time_window` and its constants), HTTP
dates, the lowercased header multimap every verifier reads, RSA-SHA256 signing and
verifying, and key resolution: resolve the signer's key, check it against its owner's
origin, and re-fetch it once (`refresh=True`) when verification fails, for rotated keys.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from activitypub.errors import FetchError, KeyFormatError, SignatureError
from activitypub.keys import PublicKeyInfo, load_private_key, load_public_key
from activitypub.urls import same_origin

SignatureScheme = Literal["cavage", "rfc9421"]
KeyResolver = Callable[[str, bool], Awaitable[PublicKeyInfo | None]]
HeaderInput = Mapping[str, str] | Iterable[tuple[str, str]] | Iterable[tuple[bytes, bytes]]
HeaderLists = dict[str, list[str]]
"""Lowercased header name -> every raw value, in order (see `header_lists`)."""

CLOCK_SKEW = timedelta(hours=1)
DEFAULT_EXPIRY = timedelta(minutes=5)
MAX_EXPIRY = timedelta(hours=12)
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
MAX_SIGNED_HEADERS = 32


@dataclass(frozen=True, slots=True)
class VerifiedSignature:
    """A signature that verified: who signed, and how."""

    key_id: str
    owner: str
    scheme: SignatureScheme
    algorithm: str
    covered: tuple[str, ...]
    created: datetime


# --------------------------------------------------------------------------- time


def format_http_date(moment: datetime) -> str:
    """IMF-fixdate (`Tue, 07 Jul 2026 10:00:00 GMT`) for a datetime; naive means UTC."""
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    return email.utils.format_datetime(aware.astimezone(UTC), usegmt=True)


def utcnow(now: datetime | None) -> datetime:
    """`now` as an aware datetime (naive means UTC), or the current time when None."""
    if now is None:
        return datetime.now(UTC)
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now


def check_time_window(created: datetime, expires: datetime | None, now: datetime) -> None:
    """Mastodon's window: created <= now + 1 h, and expiry (default created + 5 min,
    capped at created + 12 h) >= now - 1 h; so a Date is good for 65 minutes."""
    if created > now + CLOCK_SKEW:
        raise SignatureError("signature date is too far in the future")
    expiry = min(expires or created + DEFAULT_EXPIRY, created + MAX_EXPIRY)
    if expiry < now - CLOCK_SKEW:
        raise SignatureError("signature has expired: date is too far in the past")


def timestamp(value: int, what: str) -> datetime:
    """A Unix timestamp as an aware datetime; `SignatureError` when out of range."""
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise SignatureError(f"invalid {what} timestamp") from exc


def parse_http_date(value: str) -> datetime:
    """A `Date` header value as an aware datetime; `SignatureError` when unparsable."""
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError) as exc:  # a year of 20 digits
        raise SignatureError("Date header is not a valid HTTP date") from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


# --------------------------------------------------------------------------- headers


def header_lists(headers: HeaderInput) -> HeaderLists:
    """Lowercased name -> every raw value, in order; accepts mappings and raw pair lists."""
    multi = getattr(headers, "multi_items", None)
    if callable(multi):
        pairs: Iterable[tuple[str | bytes, str | bytes]] = multi()
    elif isinstance(headers, Mapping):
        pairs = headers.items()
    else:
        pairs = headers
    result: HeaderLists = {}
    for name, value in pairs:
        key = name.decode("latin-1") if isinstance(name, bytes) else name
        text = value.decode("latin-1") if isinstance(value, bytes) else value
        result.setdefault(key.lower(), []).append(text.strip(" \t"))
    return result


def joined(headers: HeaderLists, name: str) -> str | None:
    """Every value of one header joined with `, `, or None when it is absent."""
    values = headers.get(name)
    return None if values is None else ", ".join(values)


# --------------------------------------------------------------------------- crypto


def sha256_b64(body: bytes) -> str:
    """The base64 SHA-256 of `body`."""
    return base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def rsa_sign(private_pem: str, message: bytes) -> bytes:
    """RSASSA-PKCS1-v1_5 with SHA-256."""
    return load_private_key(private_pem).sign(message, padding.PKCS1v15(), hashes.SHA256())


def rsa_verifies(public_pem: str, signature: bytes, message: bytes) -> bool:
    """True when `signature` is RSASSA-PKCS1-v1_5/SHA-256 of `message` under the key."""
    try:
        key = load_public_key(public_pem)
    except KeyFormatError as exc:
        raise SignatureError(f"the signer's key is unusable: {exc}") from exc
    try:
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


# --------------------------------------------------------------------------- keys


async def verify_with_resolved_key(
    key_id: str, key_resolver: KeyResolver, verifies: Callable[[str], bool]
) -> PublicKeyInfo:
    """Resolve the key, verify; on failure re-fetch the key once (it may have rotated)."""
    info = await _resolve_key(key_resolver, key_id, refresh=False)
    if verifies(info.public_pem):
        return info
    fresh = await _resolve_key(key_resolver, key_id, refresh=True)
    if fresh.public_pem != info.public_pem and verifies(fresh.public_pem):
        return fresh
    raise SignatureError("signature does not verify with the signer's key")


async def _resolve_key(key_resolver: KeyResolver, key_id: str, *, refresh: bool) -> PublicKeyInfo:
    try:
        info = await key_resolver(key_id, refresh)
    except FetchError as exc:
        raise SignatureError(f"could not fetch the signer's key {key_id}: {exc.message}") from exc
    if info is None:
        raise SignatureError(f"unknown key {key_id}")
    if info.key_id != key_id:
        raise SignatureError(f"resolved key id {info.key_id} does not match keyId {key_id}")
    if not same_origin(key_id, info.owner):
        raise SignatureError(f"key {key_id} is not on the same origin as its owner {info.owner}")
    return info
