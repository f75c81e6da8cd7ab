"""RFC 9421 HTTP message signatures, with RFC 9530 `Content-Digest`.

Owns the outgoing `Signature-Input`/`Signature`/`Content-Digest` headers (`rfc9421_headers`:
`@method @target-uri [content-digest]`, `created`, `keyid`, `alg="rsa-v1_5-sha256"`,
label `sig1`) and `verify_rfc9421`: one signature per request, plain component identifiers
only, the derived components `@method @target-uri @authority @scheme @request-target @path
@query`, the time window, the `Content-Digest` check and the RSA verification through the
shared key resolution. Structured fields are parsed and serialised by
`activitypub.structured_fields`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
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
    rsa_sign,
    rsa_verifies,
    sha256_b64,
    timestamp,
    verify_with_resolved_key,
)
from activitypub.structured_fields import (
    InnerList,
    Item,
    Params,
    StructuredFieldError,
    parse_dictionary,
    serialize_inner_list,
)

RFC9421_ALGORITHM = "rsa-v1_5-sha256"
RFC9421_LABEL = "sig1"


# --------------------------------------------------------------------------- signing


def rfc9421_headers(
    method: str,
    url: httpx.URL,
    key_id: str,
    private_pem: str,
    body: bytes | None,
    moment: datetime,
) -> dict[str, str]:
    """The `Content-Digest` (when there is a body), `Signature-Input` and `Signature`
    headers for one request; `method` is uppercase, `moment` the `created` time."""
    extra: dict[str, str] = {}
    components: list[Item] = [("@method", {}), ("@target-uri", {})]
    lines = [f'"@method": {method}', f'"@target-uri": {url}']
    if method in BODY_METHODS or body:
        extra["Content-Digest"] = f"sha-256=:{sha256_b64(body or b'')}:"
        components.append(("content-digest", {}))
        lines.append(f'"content-digest": {extra["Content-Digest"]}')
    params: Params = {"created": int(moment.timestamp()), "keyid": key_id, "alg": RFC9421_ALGORITHM}
    signature_params = serialize_inner_list(components, params)
    lines.append(f'"@signature-params": {signature_params}')
    signature = rsa_sign(private_pem, "\n".join(lines).encode("ascii"))
    extra["Signature-Input"] = f"{RFC9421_LABEL}={signature_params}"
    extra["Signature"] = f"{RFC9421_LABEL}=:{base64.b64encode(signature).decode('ascii')}:"
    return extra


# --------------------------------------------------------------------------- verifying


async def verify_rfc9421(
    method: str,
    target: str,
    headers: HeaderLists,
    body: bytes,
    key_resolver: KeyResolver,
    now: datetime,
    scheme: str,
) -> VerifiedSignature:
    """Verify one request carrying `Signature-Input`; raises `SignatureError`.

    `method` is uppercase, `target` the raw path and query, `scheme` the public scheme
    used to rebuild `@target-uri`.
    """
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
    info = await verify_with_resolved_key(
        key_id, key_resolver, lambda pem: rsa_verifies(pem, signature, message)
    )
    return VerifiedSignature(
        key_id, info.owner, "rfc9421", RFC9421_ALGORITHM, tuple(names), created
    )


def _rfc9421_parts(headers: HeaderLists) -> tuple[list[Item], Params, bytes]:
    try:
        inputs = parse_dictionary(joined(headers, "signature-input") or "")
        signatures = parse_dictionary(joined(headers, "signature") or "")
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
    if len(names) > MAX_SIGNED_HEADERS:
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
    created_at = timestamp(created, "created")
    expires_at = timestamp(expires, "expires") if expires is not None else None
    check_time_window(created_at, expires_at, now)
    return key_id, created_at


def _check_content_digest(headers: HeaderLists, body: bytes, *, signed: bool) -> None:
    raw = joined(headers, "content-digest")
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


def _component_value(name: str, method: str, target: str, headers: HeaderLists, scheme: str) -> str:
    if not name.startswith("@"):
        value = joined(headers, name)
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


def _authority(headers: HeaderLists, scheme: str) -> str:
    host = (joined(headers, "host") or "").lower()
    if not host:
        raise SignatureError("request has no Host header")
    default = ":443" if scheme == "https" else ":80"
    return host[: -len(default)] if host.endswith(default) else host
