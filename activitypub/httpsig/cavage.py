"""draft-cavage-12 HTTP signatures, as Mastodon speaks them.

Owns the signing string (`cavage_signing_string`), the `Signature` header for an outgoing
request (`cavage_headers`: `(request-target) host date [digest content-type]`, with a
`Digest: SHA-256=...`), parsing an incoming `Signature` header (`parse_signature_header`,
which never raises anything but `SignatureError`), and `verify_cavage`: Mastodon's coverage
rules, `(created)`/`Date` and `(expires)` against the time window, the `Digest` check, and
the RSA verification through the shared key resolution.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import httpx

from activitypub.errors import SignatureError
from activitypub.httpsig.common import (
    BODY_METHODS,
    MAX_SIGNED_HEADERS,
    HeaderLists,
    KeyResolver,
    VerifiedSignature,
    check_time_window,
    joined,
    parse_http_date,
    rsa_sign,
    rsa_verifies,
    sha256_b64,
    timestamp,
    verify_with_resolved_key,
)

_CAVAGE_ALGORITHMS = frozenset({"rsa-sha256", "hs2019"})
_MAX_SIGNATURE_HEADER = 8192
_CAVAGE_PARAM = re.compile(
    r'[ \t]*([A-Za-z][A-Za-z0-9_-]*)[ \t]*=[ \t]*(?:"([^"]*)"|([0-9]+(?:\.[0-9]+)?))[ \t]*(?:,|$)'
)


@dataclass(frozen=True, slots=True)
class CavageParams:
    """The parsed parameters of a draft-cavage `Signature` header."""

    key_id: str
    algorithm: str | None
    headers: tuple[str, ...]
    signature: bytes
    created: int | None = None
    expires: int | None = None


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


def cavage_headers(
    method: str,
    url: httpx.URL,
    key_id: str,
    private_pem: str,
    body: bytes | None,
    base: Mapping[str, str],
) -> dict[str, str]:
    """The `Digest` (when there is a body) and `Signature` headers for one request.

    `base` holds the headers already set (Host, Date, maybe Content-Type); `method` is
    uppercase.
    """
    values = {name.lower(): value for name, value in base.items()}
    signed = ["(request-target)", "host", "date"]
    extra: dict[str, str] = {}
    if method in BODY_METHODS or body:
        extra["Digest"] = "SHA-256=" + sha256_b64(body or b"")
        values["digest"] = extra["Digest"]
        signed.append("digest")
        if "content-type" in values:
            signed.append("content-type")
    target = url.raw_path.decode("ascii")
    text = cavage_signing_string(method, target, values, signed)
    signature = base64.b64encode(rsa_sign(private_pem, text.encode("utf-8"))).decode("ascii")
    extra["Signature"] = (
        f'keyId="{key_id}",algorithm="rsa-sha256",'
        f'headers="{" ".join(signed)}",signature="{signature}"'
    )
    return extra


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
    if len(names) > MAX_SIGNED_HEADERS or len(set(names)) != len(names):
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


async def verify_cavage(
    method: str,
    target: str,
    headers: HeaderLists,
    body: bytes,
    key_resolver: KeyResolver,
    now: datetime,
    raw: str,
) -> VerifiedSignature:
    """Verify one request signed with draft-cavage; `raw` is its `Signature` value.

    `method` is uppercase, `target` the raw path and query. Raises `SignatureError`.
    """
    params = parse_signature_header(raw)
    algorithm = (params.algorithm or "hs2019").lower()
    if algorithm not in _CAVAGE_ALGORITHMS:
        raise SignatureError(f"unsupported signature algorithm '{params.algorithm}'")
    _check_cavage_coverage(method, params, algorithm)
    created = _cavage_created(params, headers)
    expires = None
    if "(expires)" in params.headers and params.expires is not None:
        expires = timestamp(params.expires, "expires")
    check_time_window(created, expires, now)
    if "digest" in params.headers or body:
        _check_digest(headers, body, signed="digest" in params.headers)
    values = {name: ", ".join(vals) for name, vals in headers.items()}
    text = cavage_signing_string(
        method, target, values, params.headers, created=params.created, expires=params.expires
    )
    message = text.encode("utf-8")
    info = await verify_with_resolved_key(
        params.key_id, key_resolver, lambda pem: rsa_verifies(pem, params.signature, message)
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


def _cavage_created(params: CavageParams, headers: HeaderLists) -> datetime:
    if "(created)" in params.headers:
        if params.created is None:
            raise SignatureError("(created) is signed but the signature has no created parameter")
        return timestamp(params.created, "created")
    date = joined(headers, "date")
    if date is None:
        raise SignatureError("signed header 'date' is missing from the request")
    return parse_http_date(date)


def _check_digest(headers: HeaderLists, body: bytes, *, signed: bool) -> None:
    raw = joined(headers, "digest")
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
