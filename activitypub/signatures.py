"""HTTP message signatures: draft-cavage-12 and RFC 9421, signing and verifying.

Signing (INTEROP 14, 15, 19):

- `sign_request_headers(...)` returns the headers to add to one request, cavage by default
  (`(request-target) host date digest content-type` for POST, `(request-target) host date`
  for GET, query included) or RFC 9421 (`@method @target-uri [content-digest]`, `created`,
  `rsa-v1_5-sha256`, with an RFC 9530 `Content-Digest`).
- `SignatureAuth` is the same as an `httpx.Auth`, for a shared client.

Verifying (INTEROP 16, 18; SECURITY 1-4, 7): `await verify_request(...)` rebuilds the signed
message from the raw request, enforces Mastodon's rules, recomputes the body digest, fetches
the key through an injected resolver (once more with `refresh=True` when verification
fails, for rotated keys), checks that key and owner share an origin, and returns a
`VerifiedSignature` — or raises `SignatureError` whose `reason` says exactly what was wrong.
Mapping that to a 401 is the caller's policy.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
import hmac
import re
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from activitypub.errors import FetchError, KeyFormatError, SignatureError
from activitypub.keys import PublicKeyInfo, load_private_key, load_public_key
from activitypub.structured_fields import (
    InnerList,
    Item,
    Params,
    StructuredFieldError,
    parse_dictionary,
    serialize_inner_list,
)
from activitypub.urls import same_origin

__all__ = [
    "CavageParams",
    "HeaderInput",
    "KeyResolver",
    "PublicKeyInfo",
    "SignatureAuth",
    "SignatureScheme",
    "VerifiedSignature",
    "cavage_signing_string",
    "format_http_date",
    "parse_signature_header",
    "sign_request_headers",
    "verify_request",
]

SignatureScheme = Literal["cavage", "rfc9421"]
KeyResolver = Callable[[str, bool], Awaitable[PublicKeyInfo | None]]
HeaderInput = Mapping[str, str] | Iterable[tuple[str, str]] | Iterable[tuple[bytes, bytes]]

CLOCK_SKEW = timedelta(hours=1)
DEFAULT_EXPIRY = timedelta(minutes=5)
MAX_EXPIRY = timedelta(hours=12)
RFC9421_ALGORITHM = "rsa-v1_5-sha256"
RFC9421_LABEL = "sig1"
_CAVAGE_ALGORITHMS = frozenset({"rsa-sha256", "hs2019"})
_MAX_SIGNATURE_HEADER = 8192
_MAX_SIGNED_HEADERS = 32
_CAVAGE_PARAM = re.compile(
    r'[ \t]*([A-Za-z][A-Za-z0-9_-]*)[ \t]*=[ \t]*(?:"([^"]*)"|([0-9]+(?:\.[0-9]+)?))[ \t]*(?:,|$)'
)
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


# --------------------------------------------------------------------------- data types


@dataclass(frozen=True, slots=True)
class CavageParams:
    """The parsed parameters of a draft-cavage `Signature` header."""

    key_id: str
    algorithm: str | None
    headers: tuple[str, ...]
    signature: bytes
    created: int | None = None
    expires: int | None = None


@dataclass(frozen=True, slots=True)
class VerifiedSignature:
    """A signature that verified: who signed, and how."""

    key_id: str
    owner: str
    scheme: SignatureScheme
    algorithm: str
    covered: tuple[str, ...]
    created: datetime


# --------------------------------------------------------------------------- helpers


def format_http_date(moment: datetime) -> str:
    """IMF-fixdate (`Tue, 07 Jul 2026 10:00:00 GMT`) for a datetime; naive means UTC."""
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    return email.utils.format_datetime(aware.astimezone(UTC), usegmt=True)


def _utcnow(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now


def _header_lists(headers: HeaderInput) -> dict[str, list[str]]:
    """Lowercased name -> every raw value, in order; accepts mappings and raw pair lists."""
    multi = getattr(headers, "multi_items", None)
    if callable(multi):
        pairs: Iterable[tuple[str | bytes, str | bytes]] = multi()
    elif isinstance(headers, Mapping):
        pairs = headers.items()
    else:
        pairs = headers
    result: dict[str, list[str]] = {}
    for name, value in pairs:
        key = name.decode("latin-1") if isinstance(name, bytes) else name
        text = value.decode("latin-1") if isinstance(value, bytes) else value
        result.setdefault(key.lower(), []).append(text.strip(" \t"))
    return result


def _joined(headers: dict[str, list[str]], name: str) -> str | None:
    values = headers.get(name)
    return None if values is None else ", ".join(values)


def _sha256_b64(body: bytes) -> str:
    return base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def _rsa_sign(private_pem: str, message: bytes) -> bytes:
    return load_private_key(private_pem).sign(message, padding.PKCS1v15(), hashes.SHA256())


def _rsa_verifies(public_pem: str, signature: bytes, message: bytes) -> bool:
    try:
        key = load_public_key(public_pem)
    except KeyFormatError as exc:
        raise SignatureError(f"the signer's key is unusable: {exc}") from exc
    try:
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def _check_time_window(created: datetime, expires: datetime | None, now: datetime) -> None:
    """Mastodon's window: created <= now + 1 h, and expiry (default created + 5 min,
    capped at created + 12 h) >= now - 1 h; so a Date is good for 65 minutes."""
    if created > now + CLOCK_SKEW:
        raise SignatureError("signature date is too far in the future")
    expiry = min(expires or created + DEFAULT_EXPIRY, created + MAX_EXPIRY)
    if expiry < now - CLOCK_SKEW:
        raise SignatureError("signature has expired: date is too far in the past")


def _timestamp(value: int, what: str) -> datetime:
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise SignatureError(f"invalid {what} timestamp") from exc


def _parse_http_date(value: str) -> datetime:
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError) as exc:
        raise SignatureError("Date header is not a valid HTTP date") from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


# --------------------------------------------------------------------------- signing


def cavage_signing_string(
    method: str,
    target: str,
    header_values: Mapping[str, str],
    signed_headers: Sequence[str],
    *,
    created: int | None = None,
    expires: int | None = None,
) -> str:
    """The draft-cavage signing string: `name: value` lines joined by `\\n`, none trailing.

    `header_values` maps lowercased header names to their (combined) values; `target` is the
    raw path plus query.
    """
    lines = []
    for name in signed_headers:
        if name == "(request-target)":
            value = f"{method.lower()} {target}"
        elif name == "(created)":
            value = _pseudo(created, name)
        elif name == "(expires)":
            value = _pseudo(expires, name)
        elif name in header_values:
            value = header_values[name]
        else:
            raise SignatureError(f"signed header '{name}' is missing from the request")
        lines.append(f"{name}: {value}")
    return "\n".join(lines)


def _pseudo(value: int | None, name: str) -> str:
    if value is None:
        raise SignatureError(f"{name} is signed but the signature has no {name[1:-1]} parameter")
    return str(value)


def sign_request_headers(
    method: str,
    url: str | httpx.URL,
    *,
    key_id: str,
    private_pem: str,
    body: bytes | None = None,
    content_type: str | None = None,
    scheme: SignatureScheme = "cavage",
    now: datetime | None = None,
) -> dict[str, str]:
    """Return the headers that sign one request: Host, Date, digests and the signature.

    Send the returned headers together with exactly `body` and `content_type`.
    """
    target_url = url if isinstance(url, httpx.URL) else httpx.URL(url)
    method = method.upper()
    moment = _utcnow(now)
    headers = {"Host": target_url.netloc.decode("ascii"), "Date": format_http_date(moment)}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if scheme == "rfc9421":
        headers.update(_rfc9421_headers(method, target_url, key_id, private_pem, body, moment))
    else:
        headers.update(_cavage_headers(method, target_url, key_id, private_pem, body, headers))
    return headers


def _cavage_headers(
    method: str,
    url: httpx.URL,
    key_id: str,
    private_pem: str,
    body: bytes | None,
    base: Mapping[str, str],
) -> dict[str, str]:
    values = {name.lower(): value for name, value in base.items()}
    signed = ["(request-target)", "host", "date"]
    extra: dict[str, str] = {}
    if method in _BODY_METHODS or body:
        extra["Digest"] = "SHA-256=" + _sha256_b64(body or b"")
        values["digest"] = extra["Digest"]
        signed.append("digest")
        if "content-type" in values:
            signed.append("content-type")
    target = url.raw_path.decode("ascii")
    text = cavage_signing_string(method, target, values, signed)
    signature = base64.b64encode(_rsa_sign(private_pem, text.encode("utf-8"))).decode("ascii")
    extra["Signature"] = (
        f'keyId="{key_id}",algorithm="rsa-sha256",'
        f'headers="{" ".join(signed)}",signature="{signature}"'
    )
    return extra


def _rfc9421_headers(
    method: str,
    url: httpx.URL,
    key_id: str,
    private_pem: str,
    body: bytes | None,
    moment: datetime,
) -> dict[str, str]:
    extra: dict[str, str] = {}
    components: list[Item] = [("@method", {}), ("@target-uri", {})]
    lines = [f'"@method": {method}', f'"@target-uri": {url}']
    if method in _BODY_METHODS or body:
        extra["Content-Digest"] = f"sha-256=:{_sha256_b64(body or b'')}:"
        components.append(("content-digest", {}))
        lines.append(f'"content-digest": {extra["Content-Digest"]}')
    params: Params = {"created": int(moment.timestamp()), "keyid": key_id, "alg": RFC9421_ALGORITHM}
    signature_params = serialize_inner_list(components, params)
    lines.append(f'"@signature-params": {signature_params}')
    signature = _rsa_sign(private_pem, "\n".join(lines).encode("ascii"))
    extra["Signature-Input"] = f"{RFC9421_LABEL}={signature_params}"
    extra["Signature"] = f"{RFC9421_LABEL}=:{base64.b64encode(signature).decode('ascii')}:"
    return extra


class SignatureAuth(httpx.Auth):
    """Sign every request of an `httpx` client (cavage by default, or RFC 9421).

    `clock` returns the current time; inject one in tests.
    """

    requires_request_body = True

    def __init__(
        self,
        key_id: str,
        private_pem: str,
        *,
        scheme: SignatureScheme = "cavage",
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.key_id = key_id
        self.private_pem = private_pem
        self.scheme: SignatureScheme = scheme
        self.clock = clock

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self.sign(request)
        yield request

    def sign(self, request: httpx.Request) -> None:
        """Add the signature headers to `request` in place."""
        body = request.content
        signed = sign_request_headers(
            request.method,
            request.url,
            key_id=self.key_id,
            private_pem=self.private_pem,
            body=body if body or request.method in _BODY_METHODS else None,
            content_type=request.headers.get("content-type"),
            scheme=self.scheme,
            now=self.clock() if self.clock else None,
        )
        for name, value in signed.items():
            request.headers[name] = value


# --------------------------------------------------------------------------- parsing


def parse_signature_header(value: str) -> CavageParams:
    """Parse a draft-cavage `Signature` header value.

    Never raises anything but `SignatureError`, whatever the input.
    """
    if not isinstance(value, str) or not value.strip():
        raise SignatureError("Signature header is empty")
    if len(value) > _MAX_SIGNATURE_HEADER:
        raise SignatureError("Signature header is too long")
    params = _cavage_params(value.strip())
    key_id = params.get("keyId")
    if not key_id:
        raise SignatureError("Signature header has no keyId")
    raw_signature = params.get("signature")
    if not raw_signature:
        raise SignatureError("Signature header has no signature")
    return CavageParams(
        key_id=key_id,
        algorithm=params.get("algorithm"),
        headers=_signed_header_names(params.get("headers")),
        signature=_decode_signature(raw_signature),
        created=_int_param(params, "created"),
        expires=_int_param(params, "expires"),
    )


def _cavage_params(value: str) -> dict[str, str]:
    params: dict[str, str] = {}
    pos = 0
    while pos < len(value):
        match = _CAVAGE_PARAM.match(value, pos)
        if match is None or match.end() == pos:
            raise SignatureError("Signature header is malformed")
        name = match.group(1)
        if name in params:
            raise SignatureError(f"Signature header repeats the {name} parameter")
        params[name] = match.group(2) if match.group(2) is not None else match.group(3)
        pos = match.end()
    return params


def _signed_header_names(raw: str | None) -> tuple[str, ...]:
    if raw is None:
        return ("date",)  # Mastodon's default when `headers` is absent
    names = tuple(raw.lower().split())
    if not names:
        raise SignatureError("Signature header lists no signed headers")
    if len(names) > _MAX_SIGNED_HEADERS or len(set(names)) != len(names):
        raise SignatureError("Signature header has too many or repeated signed headers")
    return names


def _decode_signature(raw: str) -> bytes:
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError("signature is not valid base64") from exc


def _int_param(params: Mapping[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        return int(float(raw))
    except (ValueError, OverflowError) as exc:
        raise SignatureError(f"{name} parameter is not a number") from exc


# --------------------------------------------------------------------------- verifying


async def verify_request(
    method: str,
    target: str,
    headers: HeaderInput,
    body: bytes,
    key_resolver: KeyResolver,
    *,
    now: datetime | None = None,
    scheme: str = "https",
) -> VerifiedSignature:
    """Verify the HTTP signature of one incoming request.

    `target` is the raw path and query from the request line; `headers` the raw headers
    (a mapping, or (name, value) pairs for repeated fields); `scheme` the public scheme
    used for RFC 9421 `@target-uri`. Raises `SignatureError` with a specific reason.
    """
    lists = _header_lists(headers)
    moment = _utcnow(now)
    if "signature-input" in lists:
        return await _verify_rfc9421(
            method.upper(), target, lists, body, key_resolver, moment, scheme
        )
    raw = _joined(lists, "signature")
    if raw is None:
        auth = _joined(lists, "authorization") or ""
        if auth[:10].lower() == "signature ":
            raw = auth[10:]
    if raw is None:
        raise SignatureError("request is not signed: no Signature header")
    return await _verify_cavage(method.upper(), target, lists, body, key_resolver, moment, raw)


async def _verify_cavage(
    method: str,
    target: str,
    headers: dict[str, list[str]],
    body: bytes,
    key_resolver: KeyResolver,
    now: datetime,
    raw: str,
) -> VerifiedSignature:
    params = parse_signature_header(raw)
    algorithm = (params.algorithm or "hs2019").lower()
    if algorithm not in _CAVAGE_ALGORITHMS:
        raise SignatureError(f"unsupported signature algorithm '{params.algorithm}'")
    _check_cavage_coverage(method, params, algorithm)
    created = _cavage_created(params, headers)
    expires = None
    if "(expires)" in params.headers and params.expires is not None:
        expires = _timestamp(params.expires, "expires")
    _check_time_window(created, expires, now)
    if "digest" in params.headers or body:
        _check_digest(headers, body, signed="digest" in params.headers)
    values = {name: ", ".join(vals) for name, vals in headers.items()}
    text = cavage_signing_string(
        method, target, values, params.headers, created=params.created, expires=params.expires
    )
    message = text.encode("utf-8")
    info = await _verify_with_resolved_key(
        params.key_id, key_resolver, lambda pem: _rsa_verifies(pem, params.signature, message)
    )
    return VerifiedSignature(
        params.key_id, info.owner, "cavage", algorithm, params.headers, created
    )


def _check_cavage_coverage(method: str, params: CavageParams, algorithm: str) -> None:
    signed = params.headers
    if "date" not in signed and "(created)" not in signed:
        raise SignatureError("the Date header or (created) must be signed")
    if "(request-target)" not in signed and "digest" not in signed:
        raise SignatureError("(request-target) or the Digest header must be signed")
    if method in ("GET", "HEAD") and "host" not in signed:
        raise SignatureError("the Host header must be signed on a GET request")
    if method == "POST" and "digest" not in signed:
        raise SignatureError("the Digest header must be signed on a POST request")
    if algorithm != "hs2019" and ("(created)" in signed or "(expires)" in signed):
        raise SignatureError("(created) and (expires) are only allowed with hs2019")


def _cavage_created(params: CavageParams, headers: dict[str, list[str]]) -> datetime:
    if "(created)" in params.headers:
        if params.created is None:
            raise SignatureError("(created) is signed but the signature has no created parameter")
        return _timestamp(params.created, "created")
    date = _joined(headers, "date")
    if date is None:
        raise SignatureError("signed header 'date' is missing from the request")
    return _parse_http_date(date)


def _check_digest(headers: dict[str, list[str]], body: bytes, *, signed: bool) -> None:
    raw = _joined(headers, "digest")
    if raw is None:
        raise SignatureError("request has a body but no Digest header")
    if not signed:
        raise SignatureError("the Digest header must be signed")
    digests: dict[str, str] = {}
    for part in raw.split(","):
        name, sep, value = part.strip().partition("=")
        if sep:
            digests[name.strip().lower()] = value.strip()
    if "sha-256" not in digests:
        raise SignatureError("only SHA-256 digests are supported")
    _compare_digest(digests["sha-256"], body)


def _compare_digest(encoded: str, body: bytes) -> None:
    try:
        claimed = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError("digest is not valid base64") from exc
    if not hmac.compare_digest(claimed, hashlib.sha256(body).digest()):
        raise SignatureError("digest mismatch: the body does not match its signed digest")


async def _verify_with_resolved_key(
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


# --------------------------------------------------------------------------- RFC 9421


async def _verify_rfc9421(
    method: str,
    target: str,
    headers: dict[str, list[str]],
    body: bytes,
    key_resolver: KeyResolver,
    now: datetime,
    scheme: str,
) -> VerifiedSignature:
    components, params, signature = _rfc9421_parts(headers)
    names = _component_names(components)
    key_id, created = _check_rfc9421_params(params, now)
    if "@method" not in names or "@target-uri" not in names:
        raise SignatureError("@method and @target-uri must be signed")
    if method == "POST" and "content-digest" not in names:
        raise SignatureError("the Content-Digest header must be signed on a POST request")
    if "content-digest" in names or body:
        _check_content_digest(headers, body, signed="content-digest" in names)
    lines = [
        f'"{name}": {_component_value(name, method, target, headers, scheme)}' for name in names
    ]
    lines.append(f'"@signature-params": {serialize_inner_list(components, params)}')
    message = "\n".join(lines).encode("utf-8")
    info = await _verify_with_resolved_key(
        key_id, key_resolver, lambda pem: _rsa_verifies(pem, signature, message)
    )
    return VerifiedSignature(
        key_id, info.owner, "rfc9421", RFC9421_ALGORITHM, tuple(names), created
    )


def _rfc9421_parts(headers: dict[str, list[str]]) -> tuple[list[Item], Params, bytes]:
    try:
        inputs = parse_dictionary(_joined(headers, "signature-input") or "")
        signatures = parse_dictionary(_joined(headers, "signature") or "")
    except StructuredFieldError as exc:
        raise SignatureError(f"malformed RFC 9421 signature headers: {exc}") from exc
    if len(inputs) != 1:
        raise SignatureError("exactly one RFC 9421 signature is supported")
    label, member = next(iter(inputs.items()))
    if not isinstance(member[0], list):
        raise SignatureError("Signature-Input member must be an inner list")
    signed = signatures.get(label)
    if signed is None or not isinstance(signed[0], bytes) or not signed[0]:
        raise SignatureError(f"Signature header has no byte sequence for label '{label}'")
    inner: InnerList = (member[0], member[1])
    return inner[0], inner[1], signed[0]


def _component_names(components: list[Item]) -> list[str]:
    names = []
    for value, params in components:
        if not isinstance(value, str) or params:
            raise SignatureError("only plain string component identifiers are supported")
        if value != value.lower() or value in names:
            raise SignatureError(f"invalid or repeated component '{value}'")
        names.append(value)
    if len(names) > _MAX_SIGNED_HEADERS:
        raise SignatureError("too many signed components")
    return names


def _check_rfc9421_params(params: Params, now: datetime) -> tuple[str, datetime]:
    key_id = params.get("keyid")
    if not isinstance(key_id, str) or not key_id:
        raise SignatureError("signature has no keyid parameter")
    alg = params.get("alg", RFC9421_ALGORITHM)
    if alg != RFC9421_ALGORITHM:
        raise SignatureError(f"unsupported signature algorithm {alg!r}")
    created = params.get("created")
    if isinstance(created, bool) or not isinstance(created, int):
        raise SignatureError("signature has no created parameter")
    expires = params.get("expires")
    if expires is not None and (isinstance(expires, bool) or not isinstance(expires, int)):
        raise SignatureError("expires parameter is not an integer")
    created_at = _timestamp(created, "created")
    expires_at = _timestamp(expires, "expires") if expires is not None else None
    _check_time_window(created_at, expires_at, now)
    return key_id, created_at


def _check_content_digest(headers: dict[str, list[str]], body: bytes, *, signed: bool) -> None:
    raw = _joined(headers, "content-digest")
    if raw is None:
        raise SignatureError("request has a body but no Content-Digest header")
    if not signed:
        raise SignatureError("the Content-Digest header must be signed")
    try:
        digests = parse_dictionary(raw)
    except StructuredFieldError as exc:
        raise SignatureError(f"malformed Content-Digest header: {exc}") from exc
    member = digests.get("sha-256")
    if member is None or not isinstance(member[0], bytes):
        raise SignatureError("only SHA-256 content digests are supported")
    if not hmac.compare_digest(member[0], hashlib.sha256(body).digest()):
        raise SignatureError("digest mismatch: the body does not match its signed digest")


def _component_value(
    name: str, method: str, target: str, headers: dict[str, list[str]], scheme: str
) -> str:
    if not name.startswith("@"):
        value = _joined(headers, name)
        if value is None:
            raise SignatureError(f"signed header '{name}' is missing from the request")
        return value
    path, _, query = target.partition("?")
    derived = {
        "@method": lambda: method,
        "@target-uri": lambda: f"{scheme}://{_authority(headers, scheme)}{target}",
        "@authority": lambda: _authority(headers, scheme),
        "@scheme": lambda: scheme,
        "@request-target": lambda: target,
        "@path": lambda: path,
        "@query": lambda: f"?{query}",
    }
    if name not in derived:
        raise SignatureError(f"unsupported derived component '{name}'")
    return derived[name]()


def _authority(headers: dict[str, list[str]], scheme: str) -> str:
    host = (_joined(headers, "host") or "").lower()
    if not host:
        raise SignatureError("request has no Host header")
    default = ":443" if scheme == "https" else ":80"
    return host[: -len(default)] if host.endswith(default) else host
