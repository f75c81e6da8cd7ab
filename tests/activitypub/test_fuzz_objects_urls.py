"""Property-based fuzzing of the typed views over remote JSON and of URL/host normalisation.

Requirement (security issue): remote documents and URLs are hostile input, and reading them
must never fail with an exception we did not document, since that becomes a 500 or a dead
inbox job. Here:

- the views of activitypub.objects (`APObject`, `Activity`, `Actor`, `Collection`, their
  `Attachment`s and `Tag`s) and the tolerant helpers (`as_list`, `id_of`, `ids_of`,
  `href_of`) never raise on any JSON value under any key, and every accessor returns the
  type it promises (an id is a non-empty string or None, an audience a list of ids, ...);
  that includes strings with lone surrogates, which `json.loads` produces from `"\\ud800"`,
  and the deepest nesting `json.loads` itself accepts;
- `origin_of`, `host_of`, `authority_of` and `normalize_host` either answer or raise
  `InvalidURLError` (their docstrings promise nothing else; it subclasses ValueError), and
  `same_origin`, `same_host`, `is_http_url` always answer a bool;
- `same_origin(u, u)` holds exactly for the URLs `origin_of` accepts; the origin is a fixed
  point (parsing `str(origin_of(u))`, or `scheme://authority_of(u)`, gives it back, and its
  host is already normalised); and spellings of one host give one origin: upper case
  (ASCII letters anywhere; other letters whose simple case mapping round-trips; an IPv6 zone
  id is an interface name, case-sensitive, and is left alone), a trailing dot, ideographic
  and fullwidth dots, the default port, punycode for an internationalised name.

CI runs a fixed, small set of examples: `derandomize=True`, no example database, no
deadline. To fuzz longer locally set `FUZZ_EXAMPLES` (examples per test), e.g.
`FUZZ_EXAMPLES=20000 .venv/bin/python -m pytest -p no:cacheprovider <this file>`. It is not
called DREAMLOOM_FUZZ_EXAMPLES because tests/conftest.py deletes every DREAMLOOM_* variable
at import. Everything runs in-process: no network, no temporary files.
"""

from __future__ import annotations

import ipaddress
import json
import os
from typing import Any

import idna
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from activitypub.errors import InvalidURLError
from activitypub.keys import PublicKeyInfo
from activitypub.objects import (
    Activity,
    Actor,
    APObject,
    Attachment,
    Collection,
    Tag,
    as_list,
    href_of,
    id_of,
    ids_of,
)
from activitypub.urls import (
    Origin,
    authority_of,
    host_of,
    is_http_url,
    normalize_host,
    origin_of,
    same_host,
    same_origin,
)


def fuzz(ci_examples: int) -> settings:
    """Bounded and reproducible in CI; `FUZZ_EXAMPLES` overrides the count locally."""
    return settings(
        max_examples=int(os.environ.get("FUZZ_EXAMPLES", ci_examples)),
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                               HealthCheck.filter_too_much],
    )  # fmt: skip


# --------------------------------------------------------------------------- JSON values

# Every key a view reads, so that fuzzed values land where they are looked at.
VIEW_KEYS = [
    "id", "type", "attributedTo", "to", "cc", "bto", "bcc", "audience", "content", "summary",
    "name", "published", "updated", "inReplyTo", "url", "sensitive", "attachment", "tag",
    "actor", "object", "target", "result", "preferredUsername", "inbox", "outbox",
    "followers", "following", "featured", "endpoints", "sharedInbox", "webfinger", "icon",
    "manuallyApprovesFollowers", "publicKey", "owner", "publicKeyPem", "totalItems", "items",
    "orderedItems", "first", "next", "href", "mediaType", "blurhash", "width", "height",
]  # fmt: skip
SURROGATES = ["\ud800", "\udbff", "\udc00", "\udfff"]
json_text = st.text(st.one_of(st.characters(), st.sampled_from(SURROGATES)), max_size=12)
urlish = st.sampled_from([
    "https://a.example/users/alice", "https://a.example/users/alice#main-key",
    "https://b.example/notes/1", "", "x", "https://www.w3.org/ns/activitystreams#Public",
])  # fmt: skip
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    json_text,
    urlish,
    st.sampled_from(["Note", "Create", "Person", "Hashtag", "Mention", "Image"]),
)
json_keys = st.one_of(st.sampled_from(VIEW_KEYS), json_text)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(json_keys, inner, max_size=5)
    ),
    max_leaves=25,
)
documents = st.dictionaries(json_keys, json_values, max_size=8)


def _properties(cls: type) -> list[str]:
    return sorted(
        name for klass in cls.__mro__ for name, member in vars(klass).items()
        if isinstance(member, property)
    )  # fmt: skip


def _is_id(value: object) -> bool:
    return value is None or (isinstance(value, str) and value != "")


def _is_ids(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(i, str) and i for i in value)


def _check_attachment(attachment: object) -> None:
    assert isinstance(attachment, Attachment)
    for field in ("type", "media_type", "url", "name", "summary", "blurhash", "alt_text"):
        assert getattr(attachment, field) is None or isinstance(getattr(attachment, field), str)
    for field in ("width", "height"):
        value = getattr(attachment, field)
        assert value is None or (isinstance(value, int) and not isinstance(value, bool))


ID_PROPERTIES = {
    "id", "attributed_to", "in_reply_to", "url", "actor", "object_id", "target", "result",
    "inbox", "outbox", "followers", "following", "featured", "shared_inbox", "icon_url",
    "image_url", "next",
}  # fmt: skip
TEXT_PROPERTIES = {"type", "content", "summary", "name", "published", "updated",
                   "preferred_username", "webfinger"}  # fmt: skip
LIST_PROPERTIES = {"to", "cc", "recipients"}
BOOL_PROPERTIES = {"sensitive", "is_actor", "manually_approves_followers"}


def check_view(view: APObject, depth: int = 0) -> None:
    """Call every accessor of a view and check the type each one promises."""
    repr(view)
    view.get("id")
    view.is_type("Note", "Person")
    for name in _properties(type(view)):
        value = getattr(view, name)
        if name in ID_PROPERTIES:
            assert _is_id(value), (name, value)
        elif name in TEXT_PROPERTIES:
            assert value is None or isinstance(value, str), (name, value)
        elif name in LIST_PROPERTIES:
            assert _is_ids(value), (name, value)
        elif name in BOOL_PROPERTIES:
            assert isinstance(value, bool), (name, value)
        elif name == "types":
            assert all(isinstance(t, str) for t in value)
        elif name == "attachments":
            for attachment in value:
                _check_attachment(attachment)
        elif name == "tags":
            for tag in value:
                assert isinstance(tag, Tag)
                assert all(part is None or isinstance(part, str) for part in tag)
        elif name == "public_keys":
            for key in value:
                assert isinstance(key, PublicKeyInfo)
                assert key.key_id and key.owner and key.public_pem
                found = view.public_key(key.key_id)
                assert found is None or (found.owner == view.id and found.key_id == key.key_id)
        elif name == "own_keys":  # listed, self-owned, on the actor's own origin
            assert all(key in view.public_keys and key.owner == view.id for key in value)
            assert all(same_origin(key.key_id, key.owner) for key in value)
            for key in value:
                found = view.public_key(key.key_id)
                assert found is not None and found.key_id == key.key_id
        elif name == "total_items":
            assert value is None or (isinstance(value, int) and not isinstance(value, bool))
        elif name == "items":
            assert isinstance(value, list)
        elif name in ("object", "object_activity"):
            assert value is None or isinstance(value, APObject)
            if value is not None and depth < 3:
                check_view(value, depth + 1)
    assert view.recipients == list(dict.fromkeys(view.recipients))  # de-duplicated
    if isinstance(view, Actor):
        view.public_key("https://a.example/users/alice#main-key")


def check_helpers(value: Any) -> None:
    listed = as_list(value)
    assert isinstance(listed, list)
    assert _is_id(id_of(value))
    assert _is_ids(ids_of(value))
    found = href_of(value)
    assert found is None or (isinstance(found, str) and found)


VIEWS = (APObject, Activity, Actor, Collection)


@fuzz(300)
@given(documents)
@example({"object": [], "actor": [[], {"id": ""}, {"id": 5}], "publicKey": [None, {}]})
@example({"attachment": {"url": [{"href": {"url": "x"}}], "width": True}, "tag": "x"})
@example({"endpoints": [], "publicKey": {"id": "k", "owner": {"id": "o"}, "publicKeyPem": "p"}})
@example({"id": "\ud800", "to": ["\udfff", {"id": "\ud800"}], "totalItems": float("nan")})
def test_views_never_raise_on_any_document(document: dict[str, Any]) -> None:
    for view in VIEWS:
        check_view(view(document))
    for value in document.values():
        check_helpers(value)


@fuzz(300)
@given(st.sampled_from(VIEW_KEYS), json_values)
def test_views_never_raise_on_any_value_under_any_key(key: str, value: Any) -> None:
    for view in VIEWS:
        check_view(view({key: value}))
    check_helpers(value)


def _deepest_json(build: Any) -> tuple[int, Any]:
    """The deepest nesting `json.loads` accepts at this stack depth, and its document."""
    low, high = 1, 100_000
    while low < high:
        middle = (low + high + 1) // 2
        try:
            json.loads(build(middle))
        except RecursionError:
            high = middle - 1
        else:
            low = middle
    return low, json.loads(build(low))


def test_views_handle_the_deepest_json_the_parser_accepts() -> None:
    """Recursive helpers (`id_of`, `href_of`) on documents as deep as JSON can be here."""
    shapes = [
        lambda n: '{"actor": ' + "[" * n + '"x"' + "]" * n + "}",
        lambda n: '{"url": ' + '{"href": ' * n + '"x"' + "}" * n + "}",
        lambda n: '{"object": ' + '{"object": ' * n + '"x"' + "}" * n + "}",
        lambda n: '{"tag": [' + '{"href": [' * n + '"x"' + "]}" * n + "]}",
    ]
    for shape in shapes:
        depth, document = _deepest_json(shape)
        assert depth > 100
        for view in VIEWS:
            check_view(view(document))
        for value in document.values():
            check_helpers(value)


# --------------------------------------------------------------------------- URLs

label_ascii = st.from_regex(r"\A[a-zA-Z0-9]([a-zA-Z0-9_-]{0,10}[a-zA-Z0-9])?\Z")
label_unicode = st.text(
    st.characters(categories=["Ll", "Lu", "Lo", "Nd"], max_codepoint=0x2FFFF),
    min_size=1, max_size=8,
)  # fmt: skip
ipv6 = st.ip_addresses(v=6)
hosts_valid = st.one_of(
    st.lists(label_ascii, min_size=1, max_size=4).map(".".join),
    st.lists(st.one_of(label_ascii, label_unicode), min_size=1, max_size=3).map(".".join),
    st.ip_addresses(v=4).map(str),
    ipv6.map(lambda a: f"[{a}]"),
    ipv6.map(lambda a: f"[{a.exploded.upper()}]"),
)
DOTS = [".", "\u3002", "\uff0e", "\uff61"]  # full stop, ideographic, fullwidth, halfwidth
hosts_weird = st.one_of(
    json_text,
    st.text(st.sampled_from("aZ0-_.:[]%@\u3002\uff0e\u00e9\u00df\u0131\u200d\x00 "), max_size=16),
    st.tuples(hosts_valid, st.sampled_from(DOTS)).map("".join),
    st.tuples(ipv6, st.from_regex(r"\A[a-zA-Z0-9]{1,6}\Z")).map(lambda p: f"[{p[0]}%25{p[1]}]"),
    st.sampled_from(["[::1", "::1]", "[]", "[v1.x]", "127.1", "0x7f.0.0.1", "..", ".", "a..b",
                     "xn--", "xn--zz", "a" * 64, ("a" * 60 + ".") * 5, "\u2488.example"]),
)  # fmt: skip
ports = st.one_of(
    st.none(),
    st.integers(0, 70_000).map(str),
    st.sampled_from(["", "443", "80", "0443", "+80", " 80", "\u0668\u0660", "8a", "-1"]),
)
schemes = st.sampled_from(["https", "http", "HTTPS", "Http", "ftp", "", "javascript", "h\ttps"])
paths = st.one_of(
    st.just(""), st.just("/"), st.sampled_from(["/users/a", "/?q=1", "/#frag", "?x", "#y"]),
    json_text.map(lambda text: "/" + text),
)  # fmt: skip


@st.composite
def urls(draw: st.DrawFn, hosts: st.SearchStrategy[str] = hosts_valid | hosts_weird) -> str:
    userinfo = draw(st.sampled_from(["", "", "", "user@", "u:p@", "@", "a@b@"]))
    port = draw(ports)
    netloc = userinfo + draw(hosts) + ("" if port is None else ":" + port)
    return f"{draw(schemes)}://{netloc}{draw(paths)}"


any_urls = st.one_of(urls(), json_text, st.text(st.characters(max_codepoint=127), max_size=40))


def parsed(url: str) -> Origin | None:
    try:
        return origin_of(url)
    except InvalidURLError:
        return None


@fuzz(800)
@given(any_urls)
@example("https://[::1]]/")
@example("https://a:b:c/")
@example("https://[fe80::1%25eth0]:8080/")
@example("https://\u2488.example/")
@example("https://example.com\uff0e\uff0e/")
def test_url_functions_raise_only_invalid_url_error(url: str) -> None:
    origin = parsed(url)
    for function in (host_of, authority_of):
        try:
            result = function(url)
        except InvalidURLError:
            assert origin is None
        else:
            assert origin is not None and isinstance(result, str)
    assert isinstance(same_origin(url, url), bool)
    assert isinstance(same_host(url, "https://a.example/"), bool)
    assert is_http_url(url) is (origin is not None)
    assert same_origin(url, url) is (origin is not None)


@fuzz(500)
@given(st.one_of(hosts_valid, hosts_weird))
@example("a.example\uff0e")
def test_normalize_host_raises_only_invalid_url_error(host: str) -> None:
    try:
        normalized = normalize_host(host)
    except InvalidURLError:
        return
    assert isinstance(normalized, str) and normalized
    assert normalize_host(normalized) == normalized


def _upper(char: str) -> str:
    """`char` in upper case when its simple case mapping round-trips (not ß, ı, ς, ſ...)."""
    upper = char.upper()
    return upper if len(upper) == 1 and upper.lower() == char else char


def _upper_host(host: str) -> str:
    name, zone, rest = host.partition("%25")  # an IPv6 zone id is case-sensitive
    return "".join(_upper(c) for c in name) + zone + rest


@st.composite
def valid_parts(draw: st.DrawFn) -> tuple[str, str, str | None, str]:
    """(scheme, host, port, path) for which origin_of accepts the URL."""
    scheme = draw(st.sampled_from(["https", "http"]))
    host = draw(hosts_valid)
    port = draw(st.one_of(st.none(), st.integers(1, 65535).map(str)))
    path = draw(st.sampled_from(["", "/", "/users/alice", "/a?b=c#d"]))
    assume(parsed(f"{scheme}://{host}{'' if port is None else ':' + port}{path}") is not None)
    return scheme, host, port, path


def _url(scheme: str, host: str, port: str | None, path: str) -> str:
    return f"{scheme}://{host}{'' if port is None else ':' + port}{path}"


@fuzz(500)
@given(st.one_of(valid_parts().map(lambda parts: _url(*parts)), urls()))
@example("https://a.example\uff0e/")
@example("https://b\u00fccher.example\u3002/")
def test_origin_is_a_fixed_point(url: str) -> None:
    origin = parsed(url)
    assume(origin is not None)
    assert origin is not None
    assert origin.scheme in ("http", "https") and 0 <= origin.port <= 65535
    assert origin_of(str(origin)) == origin
    assert origin_of(f"{origin.scheme}://{authority_of(url)}/") == origin
    assert host_of(url) == origin.host
    assert normalize_host(origin.host) == origin.host
    assert same_origin(url, str(origin))


@fuzz(600)
@given(valid_parts())
@example(("https", "bücher.example", None, "/"))
@example(("https", "ΑΘΉΝΑ.example", None, "/"))
def test_upper_case_spelling_has_the_same_origin(parts: tuple[str, str, str | None, str]) -> None:
    scheme, host, port, path = parts
    origin = origin_of(_url(*parts))
    ascii_upper = "".join(c.upper() if c.isascii() else c for c in host.partition("%25")[0])
    ascii_upper += "".join(host.partition("%25")[1:])
    assert origin_of(_url(scheme.upper(), ascii_upper, port, path)) == origin
    assert origin_of(_url(scheme, _upper_host(host), port, path)) == origin


@fuzz(600)
@given(valid_parts(), st.sampled_from(DOTS), st.sampled_from(DOTS))
@example(("https", "a.example", None, "/"), "\uff0e", ".")
@example(("https", "a.example", None, "/"), ".", "\uff0e")
def test_other_spellings_of_a_host_have_the_same_origin(
    parts: tuple[str, str, str | None, str], inner_dot: str, trailing_dot: str
) -> None:
    scheme, host, port, path = parts
    origin = origin_of(_url(*parts))
    if not host.startswith("[") and not _is_ip(host):
        # another dot between labels, one trailing dot of any kind
        assert origin_of(_url(scheme, host.replace(".", inner_dot), port, path)) == origin
        assert origin_of(_url(scheme, host + trailing_dot, port, path)) == origin
        if not host.isascii():  # the punycode spelling of an internationalised name
            alabel = idna.encode(host, uts46=True).decode("ascii")
            assert origin_of(_url(scheme, alabel, port, path)) == origin
    default = "443" if scheme == "https" else "80"
    if port is None or port == default:
        assert origin_of(_url(scheme, host, default, path)) == origin
        assert origin_of(_url(scheme, host, None, path)) == origin


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@fuzz(200)
@given(ipv6)
def test_ipv6_spellings_have_the_same_origin(address: ipaddress.IPv6Address) -> None:
    spellings = {str(address), address.exploded, address.exploded.upper(), address.compressed}
    origins = {origin_of(f"https://[{text}]:443/") for text in spellings}
    assert origins == {Origin("https", address.compressed, 443)}


def test_views_promise_the_types_the_fuzzer_checks() -> None:
    """Every property is covered by one of the checks in `check_view` (a new accessor must
    be added there, or it would go unchecked)."""
    checked = ID_PROPERTIES | TEXT_PROPERTIES | LIST_PROPERTIES | BOOL_PROPERTIES | {
        "types", "attachments", "tags", "public_keys", "own_keys", "total_items", "items", "object",
        "object_activity", "first",
    }  # fmt: skip
    for view in VIEWS:
        assert set(_properties(view)) <= checked, set(_properties(view)) - checked
