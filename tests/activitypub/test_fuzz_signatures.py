"""Property-based fuzzing of the HTTP signature code: hostile headers get a typed refusal only.

Requirement (security issue): whatever a remote server writes into a request, the signature
code answers with its one documented error and nothing else, because the inbox turns that
error into a 401 and any other exception into a 500. Here:

- `parse_signature_header` (draft-cavage `Signature:`) returns `CavageParams` or raises
  `SignatureError`;
- `parse_dictionary` (RFC 8941, behind RFC 9421 `Signature-Input`/`Signature` and
  `Content-Digest`) returns a dictionary or raises `StructuredFieldError`; what it accepts
  serialises back (`serialize_inner_list`) to a line it parses to the same value, since the
  verifier rebuilds `@signature-params` that way;
- `verify_request`, fed genuinely signed requests that hypothesis then mutates (headers
  dropped, replaced, duplicated or added, bytes flipped, another method, target, body or
  clock) and key resolvers that answer None, the right key, a rotated, weak, unusable or
  foreign key, or fail to fetch, returns a `VerifiedSignature` or raises `SignatureError`;
  whatever verifies has a key on its owner's origin and a date inside Mastodon's window.

CI runs a fixed, small set of examples: `derandomize=True`, no example database, no
deadline. To fuzz longer locally set `FUZZ_EXAMPLES` (examples per test), e.g.
`FUZZ_EXAMPLES=20000 .venv/bin/python -m pytest -p no:cacheprovider <this file>`. It is not
called DREAMLOOM_FUZZ_EXAMPLES because tests/conftest.py deletes every DREAMLOOM_* variable
at import. Everything runs in-process: no network, no temporary files.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import os
import re
import string
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from activitypub.errors import FetchError, SignatureError
from activitypub.httpsig.common import CLOCK_SKEW, DEFAULT_EXPIRY, MAX_EXPIRY, rsa_sign
from activitypub.keys import KeyPair, PublicKeyInfo, generate_rsa_keypair
from activitypub.signatures import (
    CavageParams,
    VerifiedSignature,
    cavage_signing_string,
    format_http_date,
    parse_signature_header,
    sign_request_headers,
    verify_request,
)
from activitypub.structured_fields import (
    StructuredFieldError,
    Token,
    parse_dictionary,
    serialize_inner_list,
)
from activitypub.urls import same_origin


def fuzz(ci_examples: int) -> settings:
    """Bounded and reproducible in CI; `FUZZ_EXAMPLES` overrides the count locally."""
    return settings(
        max_examples=int(os.environ.get("FUZZ_EXAMPLES", ci_examples)),
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


OWNER = "https://remote.example/users/alice"
KEY_ID = OWNER + "#main-key"
URL = "https://ours.example/users/bob/inbox?page=1"
TARGET = "/users/bob/inbox?page=1"
NOW = datetime(2026, 7, 7, 10, 0, 0, tzinfo=UTC)
BODY = b'{"type":"Follow","actor":"https://remote.example/users/alice"}'
CONTENT_TYPE = "application/activity+json"


@functools.cache
def keys() -> tuple[KeyPair, KeyPair, KeyPair]:
    """The signer's key, a rotated-away key, and a 1024-bit key (too weak to be accepted)."""
    return generate_rsa_keypair(), generate_rsa_keypair(), generate_rsa_keypair(1024)


# --------------------------------------------------------------------------- strategies

# Any text, surrogates and controls included, and text made of the header grammar's own
# characters so that the parsers get past their first checks.
any_text = st.text(st.characters(), max_size=120)
grammar_text = st.text(
    st.sampled_from('keyIdalgorithmheaderssignaturecreatedexpires=,;:()"\\ \t?-*./09@#\x00é'),
    max_size=120,
)
b64_text = st.binary(max_size=48).map(lambda raw: base64.b64encode(raw).decode("ascii"))
b64_broken = st.one_of(
    b64_text.map(lambda text: text.rstrip("=")),
    b64_text.map(lambda t: t + "="),
    st.text(st.sampled_from(string.ascii_letters + "+/=-_ "), max_size=12),
)
numbers = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.integers(min_value=0, max_value=10**6).map(lambda n: "9" * n if n < 600 else str(n)),
    st.decimals(allow_nan=False, allow_infinity=False, places=4).map(str),
    st.sampled_from(["1.", ".5", "-0", "1e309", "0x10", "1_000", "１２"]),
)
header_names = st.sampled_from(
    ["(request-target)", "host", "date", "digest", "content-type", "(created)", "(expires)",
     "Host", "DATE", "x-extra", ""]
)  # fmt: skip


@st.composite
def cavage_values(draw: st.DrawFn) -> str:
    """A `Signature` header: draft-cavage parameters, some of them wrong in some way."""
    params = []
    for _ in range(draw(st.integers(0, 7))):
        name = draw(st.one_of(
            st.sampled_from(["keyId", "algorithm", "headers", "signature", "created", "expires"]),
            st.from_regex(r"\A[A-Za-z][A-Za-z0-9_-]{0,8}\Z"), grammar_text,
        ))  # fmt: skip
        value = draw(st.one_of(
            st.sampled_from([KEY_ID, "rsa-sha256", "hs2019", "RSA-SHA256", "ed25519", ""]),
            st.lists(header_names, max_size=6).map(" ".join),
            b64_text, b64_broken, any_text.map(lambda t: t.replace('"', "")),
        ))  # fmt: skip
        quoted = draw(st.booleans())
        params.append(f'{name}="{value}"' if quoted else f"{name}={draw(numbers)}")
    separators = st.sampled_from([",", ", ", " , ", ",\t", ",,", ";", " "])
    text = params[0] if params else ""
    for param in params[1:]:
        text += draw(separators) + param
    return draw(st.sampled_from(["", " ", "\t"])) + text + draw(st.sampled_from(["", ",", " "]))


def _sf_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


sf_bare_items = st.one_of(
    st.integers(min_value=-(10**16), max_value=10**16).map(str),
    st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str),
    numbers,
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=20).map(_sf_string),
    any_text.map(lambda t: '"' + t + '"'),
    st.from_regex(r"\A[A-Za-z*][A-Za-z0-9!#$%&'*+\-.^_`|~:/]{0,10}\Z"),
    b64_text.map(lambda t: f":{t}:"), b64_broken.map(lambda t: f":{t}:"),
    st.sampled_from(["?0", "?1", "?2", "?", "@method", '"@target-uri"', '"content-digest"']),
)  # fmt: skip
sf_keys = st.one_of(
    st.sampled_from(["sig1", "sha-256", "keyid", "created", "expires", "alg", "nonce", "tag"]),
    st.from_regex(r"\A[a-z*][a-z0-9_\-.*]{0,8}\Z"),
    st.sampled_from(["", "A", "1a", "k y", "é"]),
)


@st.composite
def sf_params(draw: st.DrawFn) -> str:
    out = ""
    for _ in range(draw(st.integers(0, 4))):
        key = draw(sf_keys)
        out += f";{key}" if draw(st.booleans()) else f";{key}={draw(sf_bare_items)}"
    return out


@st.composite
def sf_members(draw: st.DrawFn) -> str:
    """One dictionary value: a bare item or an inner list, each with parameters."""
    if draw(st.booleans()):
        items = draw(st.lists(st.tuples(sf_bare_items, sf_params()), max_size=5))
        gap = draw(st.sampled_from([" ", "  ", "", "\t"]))
        inner = "(" + gap.join(item + params for item, params in items) + ")"
        return inner + draw(sf_params())
    return draw(sf_bare_items) + draw(sf_params())


@st.composite
def sf_dictionaries(draw: st.DrawFn) -> str:
    """An RFC 8941 dictionary in the shape of Signature-Input, Signature or Content-Digest."""
    members = []
    for _ in range(draw(st.integers(0, 4))):
        key = draw(sf_keys)
        members.append(key + draw(sf_params()) if draw(st.integers(0, 5)) == 0
                       else f"{key}={draw(sf_members())}")  # fmt: skip
    separator = draw(st.sampled_from([", ", ",", " ,", ",\t", ",,", ";"]))
    return draw(st.sampled_from(["", " "])) + separator.join(members)


@st.composite
def mutated(draw: st.DrawFn, texts: st.SearchStrategy[str]) -> str:
    """A value from `texts` with a few characters inserted, deleted or replaced."""
    chars = list(draw(texts))
    for _ in range(draw(st.integers(0, 3))):
        position = draw(st.integers(0, len(chars)))
        operation = draw(st.sampled_from(["insert", "delete", "replace"]))
        char = draw(st.characters())
        if operation == "insert":
            chars.insert(position, char)
        elif chars:
            index = min(position, len(chars) - 1)
            if operation == "delete":
                del chars[index]
            else:
                chars[index] = char
    return "".join(chars)


WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun", "Xyz", ""]
MONTHS = ["Jan", "Feb", "Jul", "Dec", "jul", "Foo", ""]
huge = st.integers(min_value=-(10**25), max_value=10**25)
small = st.integers(min_value=-1, max_value=100)


@st.composite
def http_dates(draw: st.DrawFn) -> str:
    """A `Date` header: IMF-fixdate around NOW, or one with fields out of every range."""
    if draw(st.booleans()):
        moment = NOW + timedelta(seconds=draw(st.integers(-3 * 86400, 3 * 86400)))
        return format_http_date(moment)
    day, hour, minute, second = (draw(st.one_of(small, huge)) for _ in range(4))
    year = draw(st.one_of(st.integers(0, 10000), huge))
    zone = draw(st.one_of(
        st.sampled_from(["GMT", "UTC", "-0000", "+0000", "+2359", "-2359", "EST", "Z", ""]),
        st.integers(-(10**20), 10**20).map(lambda n: f"{n:+05d}"),
    ))  # fmt: skip
    weekday, month = draw(st.sampled_from(WEEKDAYS)), draw(st.sampled_from(MONTHS))
    return f"{weekday}, {day:02d} {month} {year} {hour:02d}:{minute:02d}:{second:02d} {zone}"


header_values = st.one_of(
    cavage_values().map(lambda text: text.encode("utf-8", "surrogatepass")),
    cavage_values().map(lambda text: ("Signature " + text).encode("utf-8", "surrogatepass")),
    sf_dictionaries().map(lambda text: text.encode("utf-8", "surrogatepass")),
    http_dates().map(str.encode),
    b64_text.map(lambda text: f"SHA-256={text}".encode()),
    b64_text.map(lambda text: f"sha-256=:{text}:".encode()),
    st.sampled_from([b"ours.example", b"OURS.EXAMPLE:443", b"", b"evil.example"]),
    st.binary(max_size=80),
)
name_pool = st.one_of(
    st.sampled_from([b"signature", b"signature-input", b"authorization", b"date", b"digest",
                     b"content-digest", b"host", b"content-type", b"Signature", b"DATE"]),
    st.binary(max_size=12),
)  # fmt: skip
mutations = st.one_of(
    st.tuples(st.just("drop"), st.integers(0, 15)),
    st.tuples(st.just("replace"), st.integers(0, 15), header_values),
    st.tuples(st.just("duplicate"), st.integers(0, 15)),
    st.tuples(st.just("add"), name_pool, header_values),
    st.tuples(st.just("flip"), st.integers(0, 15), st.integers(0, 1000), st.integers(0, 255)),
)


def apply(headers: list[tuple[bytes, bytes]], mutation: tuple) -> list[tuple[bytes, bytes]]:
    """Apply one mutation from `mutations` to a raw header list (a copy)."""
    headers = list(headers)
    kind, *args = mutation
    if kind == "add":
        headers.append((args[0], args[1]))
        return headers
    if not headers:
        return headers
    index = args[0] % len(headers)
    name, value = headers[index]
    if kind == "drop":
        del headers[index]
    elif kind == "replace":
        headers[index] = (name, args[1])
    elif kind == "duplicate":
        headers.insert(index, (name, value))
    elif kind == "flip" and value:
        position = args[1] % len(value)
        headers[index] = (name, value[:position] + bytes([args[2]]) + value[position + 1 :])
    return headers


# --------------------------------------------------------------------------- requests

BASES = ["cavage-post", "cavage-get", "rfc9421-post", "rfc9421-get", "unsigned"]


@functools.cache
def signed_base(base: str) -> tuple[str, list[tuple[bytes, bytes]], bytes]:
    """A genuinely signed request (method, raw headers, body) that verifies at NOW."""
    if base == "unsigned":
        return "POST", [(b"host", b"ours.example"), (b"content-type", CONTENT_TYPE.encode())], BODY
    scheme, method = base.split("-")
    body = BODY if method == "post" else None
    signed = sign_request_headers(
        method.upper(), URL, key_id=KEY_ID, private_pem=keys()[0].private_pem, body=body,
        content_type=CONTENT_TYPE if body else None, scheme=scheme, now=NOW,  # type: ignore[arg-type]
    )  # fmt: skip
    headers = [(name.lower().encode(), value.encode()) for name, value in signed.items()]
    return method.upper(), headers, body or b""


RESOLVERS = ["none", "right-key", "echo", "rotated", "weak", "unusable", "foreign-owner",
             "wrong-id", "fetch-error"]  # fmt: skip


def resolver(kind: str):
    """A key resolver callback: what a KeyRing could answer, right or wrong."""
    signer, other, weak = keys()

    async def resolve(key_id: str, refresh: bool) -> PublicKeyInfo | None:
        owner = key_id.partition("#")[0]
        if kind == "none":
            return None
        if kind == "right-key":
            return PublicKeyInfo(KEY_ID, OWNER, signer.public_pem) if key_id == KEY_ID else None
        if kind == "echo":
            return PublicKeyInfo(key_id, owner, signer.public_pem)
        if kind == "rotated":  # the stale key first, the current one on refresh
            return PublicKeyInfo(key_id, owner, (signer if refresh else other).public_pem)
        if kind == "weak":
            return PublicKeyInfo(key_id, owner, weak.public_pem)
        if kind == "unusable":
            return PublicKeyInfo(key_id, owner, "-----BEGIN PUBLIC KEY-----\nAAAA\n")
        if kind == "foreign-owner":
            return PublicKeyInfo(key_id, "https://elsewhere.example/users/x", signer.public_pem)
        if kind == "wrong-id":
            return PublicKeyInfo(key_id + "x", owner, signer.public_pem)
        raise FetchError(key_id, "could not connect")

    return resolve


clocks = st.one_of(
    st.just(NOW),
    st.integers(-(10**7), 10**7).map(lambda seconds: NOW + timedelta(seconds=seconds)),
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(3000, 1, 1),
                 timezones=st.sampled_from([None, UTC])),
)  # fmt: skip
methods = st.one_of(
    st.sampled_from(["POST", "GET", "HEAD", "PUT", "post", "get", "DELETE"]),
    st.text(st.characters(max_codepoint=255), max_size=8),  # the ASGI server decodes latin-1
)
targets = st.one_of(
    st.just(TARGET), st.just("/users/bob/inbox"),
    st.text(st.characters(max_codepoint=255), max_size=40),
)  # fmt: skip


def verify(method, target, headers, body, resolve, now, scheme="https"):
    return asyncio.run(verify_request(method, target, headers, body, resolve, now=now,
                                      scheme=scheme))  # fmt: skip


def outcome(exc: SignatureError) -> str:
    """The reason without its variable parts (see --hypothesis-show-statistics)."""
    return re.sub(r"\S*://\S*|'[^']*'|-?\d+", "_", exc.reason)[:60]


def check_verified(result: VerifiedSignature, now: datetime, *, expires: bool = True) -> None:
    """What a signature that verified must satisfy, whatever the request looked like: its key
    is on its owner's origin and its date inside Mastodon's window (`expires`: the request
    may have carried an expiry, which can stretch the window up to MAX_EXPIRY)."""
    assert isinstance(result, VerifiedSignature)
    assert same_origin(result.key_id, result.owner)
    aware = now.replace(tzinfo=UTC) if now.tzinfo is None else now
    assert result.created <= aware + CLOCK_SKEW
    lifetime = MAX_EXPIRY if expires else DEFAULT_EXPIRY
    assert result.created + lifetime >= aware - CLOCK_SKEW


# --------------------------------------------------------------------------- parsers


@fuzz(500)
@given(st.one_of(any_text, grammar_text, cavage_values(), mutated(cavage_values())))
@example('keyId="k",signature="QUJD",created=' + "9" * 400)
@example('keyId="k",signature="QUJD",expires=1.' + "9" * 4000)
@example('keyId="k",signature="\u00e9"')
@example('keyId="\ud800",signature="QUJD",headers="\u2028 (created)"')
def test_cavage_parser_raises_only_signature_error(value: str) -> None:
    try:
        params = parse_signature_header(value)
    except SignatureError as exc:
        assert exc.reason
        return
    assert isinstance(params, CavageParams)
    assert params.key_id and params.signature and isinstance(params.signature, bytes)
    assert params.headers and len(set(params.headers)) == len(params.headers)
    assert all(name == name.lower() for name in params.headers)


def _typed(value: object) -> object:
    """A structured value with the str/Token/bool/int distinctions made visible."""
    if isinstance(value, list):
        return [_typed(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_typed(item) for item in value)
    if isinstance(value, dict):
        return {key: _typed(item) for key, item in value.items()}
    return (type(value).__name__, value)


@fuzz(500)
@given(st.one_of(any_text, sf_dictionaries(), mutated(sf_dictionaries())))
@example("a=" + "(" * 10_000)
@example('sig1=("@method";x=1.5 tok:/x);created=-999999999999999;keyid="k"')
@example("a=:" + "A" * 3 + ":, b=?1;c=-0.0")
def test_structured_field_parser_raises_only_its_error(text: str) -> None:
    try:
        parsed = parse_dictionary(text)
    except StructuredFieldError:
        return
    assert isinstance(parsed, dict)
    for key, (value, params) in parsed.items():
        assert key and key == key.lower()
        assert isinstance(params, dict)
        if isinstance(value, list):  # an inner list: what RFC 9421 signs, re-serialised
            line = serialize_inner_list(value, params)
            again = parse_dictionary(f"{key}={line}")[key]
            assert _typed(again) == _typed((value, params))
            assert serialize_inner_list(*again) == line


def test_token_and_string_stay_distinct() -> None:
    parsed = parse_dictionary('a=(tok "tok")')
    items = parsed["a"][0]
    assert isinstance(items, list)
    assert isinstance(items[0][0], Token) and not isinstance(items[1][0], Token)


# --------------------------------------------------------------------------- verifier


def test_unmutated_requests_verify() -> None:
    """The fuzzer starts from requests that really verify, so it reaches the crypto."""
    for base in BASES[:-1]:
        method, headers, body = signed_base(base)
        result = verify(method, TARGET, headers, body, resolver("right-key"), NOW)
        assert result.key_id == KEY_ID and result.owner == OWNER


@fuzz(800)
@given(
    base=st.sampled_from(BASES),
    changes=st.lists(mutations, max_size=4),
    method=st.none() | methods,
    target=targets,
    body=st.none() | st.binary(max_size=64),
    resolver_kind=st.sampled_from(RESOLVERS),
    now=clocks,
    scheme=st.sampled_from(["https", "http"]),
)
def test_verify_request_raises_only_signature_error(
    base, changes, method, target, body, resolver_kind, now, scheme
) -> None:
    base_method, headers, base_body = signed_base(base)
    for change in changes:
        headers = apply(headers, change)
    method = base_method if method is None else method
    body = base_body if body is None else body
    try:
        result = verify(method, target, headers, body, resolver(resolver_kind), now, scheme)
    except SignatureError as exc:
        assert exc.reason
        event(outcome(exc))
        return
    event("verified")
    check_verified(result, now)


@fuzz(300)
@given(date=st.one_of(http_dates(), mutated(http_dates()), any_text))
@example(date="Mon, 01 Jan 99999999999999999999 00:00:00 GMT")
@example(date="Mon, 07 Jul 2026 10:00:00 +99999999999999999999")
def test_verify_request_on_any_date_header(date: str) -> None:
    """A correctly signed GET whose signed `Date` is anything at all: verified only when the
    date is inside the window, otherwise a `SignatureError`."""
    date_bytes = date.encode("utf-8", "surrogatepass")
    header_date = date_bytes.decode("latin-1").strip(" \t")  # as header_lists will read it
    text = cavage_signing_string(
        "get", TARGET, {"host": "ours.example", "date": header_date},
        ["(request-target)", "host", "date"],
    )  # fmt: skip
    signature = base64.b64encode(rsa_sign(keys()[0].private_pem, text.encode("utf-8")))
    params = f'keyId="{KEY_ID}",algorithm="rsa-sha256",headers="(request-target) host date"'
    headers = [
        (b"host", b"ours.example"),
        (b"date", date_bytes),
        (b"signature", f'{params},signature="{signature.decode()}"'.encode()),
    ]
    try:
        result = verify("GET", TARGET, headers, b"", resolver("right-key"), NOW)
    except SignatureError as exc:
        assert exc.reason
        return
    check_verified(result, NOW, expires=False)
