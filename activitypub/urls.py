"""Host and origin normalisation for remote URLs (against CVE-2023-42451-class spoofing).

Two spellings of one host must compare equal, and two hosts must never compare equal by
accident. So every comparison in this package goes through `normalize_host`:

- lowercase, one trailing dot dropped (`A.EXAMPLE.` == `a.example`);
- internationalised names converted to punycode (`bücher.example` == `xn--bcher-kva.example`);
- IP literals written canonically (`[::FFFF:1.2.3.4]` -> `::ffff:102:304`);
- default ports dropped (`https://a:443/` and `https://a/` share an origin).

URLs with userinfo (`https://a@b/`) are refused outright: they are a classic way of making a
human or a naive parser read the wrong host.

`normalize_host` and `origin_of` are pure, so their results for `str` arguments are
memoised (bounded LRU; actor and key URLs repeat on every inbox request, and parsing them
was most of the inbox CPU after RSA). Errors are not cached: an invalid URL raises each time.
"""

from __future__ import annotations

import functools
import ipaddress
import unicodedata
from typing import NamedTuple
from urllib.parse import urlsplit

import idna

from activitypub.errors import InvalidURLError

DEFAULT_PORTS = {"http": 80, "https": 443}
_MAX_URL_LENGTH = 4096


class Origin(NamedTuple):
    """A normalised (scheme, host, port) triple; the port is always explicit."""

    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.scheme}://{authority(self.host, self.port, self.scheme)}"


def normalize_host(host: str) -> str:
    """Lowercase, strip one trailing dot, punycode IDNs and canonicalise IP literals."""
    if type(host) is str:  # memoise exact strings only: hashable, and equal means same
        return _normalize_host_memo(host)
    return _normalize_host(host)


_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
"""The ideographic and fullwidth full stops IDNA reads as label separators."""


def _normalize_host(host: str) -> str:
    if not host or len(host) > 255:
        raise InvalidURLError(f"invalid host {host!r}")
    host = host.translate(_DOTS)  # before the trailing-dot and empty-label checks
    literal = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return ipaddress.ip_address(literal).compressed
    except ValueError:
        pass
    name = host[:-1] if host.endswith(".") else host
    if not name or name.startswith(".") or ".." in name:
        raise InvalidURLError(f"invalid host {host!r}")
    if name.isascii():
        name = name.lower()
        _check_ascii_labels(name, host)
        return name
    try:
        return idna.encode(name, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise InvalidURLError(f"invalid internationalised host {host!r}: {exc}") from exc


_normalize_host_memo = functools.lru_cache(maxsize=4096)(_normalize_host)


def _check_ascii_labels(name: str, original: str) -> None:
    for label in name.split("."):
        if not label or len(label) > 63:
            raise InvalidURLError(f"invalid host {original!r}")
        if not all(c.isalnum() or c in "-_" for c in label):
            raise InvalidURLError(f"invalid character in host {original!r}")


def origin_of(url: str) -> Origin:
    """Parse an http(s) URL and return its normalised origin; refuses userinfo."""
    if not isinstance(url, str) or not url or len(url) > _MAX_URL_LENGTH:
        raise InvalidURLError("URL missing or too long")
    if type(url) is str:  # memoise exact strings only, as in `normalize_host`
        return _origin_of_memo(url)
    return _origin_of(url)


def _origin_of(url: str) -> Origin:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidURLError(f"malformed URL {url!r}: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise InvalidURLError(f"unsupported URL scheme in {url!r}")
    if "@" in parts.netloc:
        raise InvalidURLError(f"URL with userinfo refused: {url!r}")
    if parts.hostname is None:
        raise InvalidURLError(f"URL without host: {url!r}")
    host = normalize_host(_raw_host(parts.netloc))
    return Origin(scheme, host, DEFAULT_PORTS[scheme] if port is None else port)


_origin_of_memo = functools.lru_cache(maxsize=4096)(_origin_of)


def _raw_host(netloc: str) -> str:
    """The host part of a netloc, with its original case and brackets kept."""
    if netloc.startswith("["):
        return netloc[: netloc.index("]") + 1]
    return netloc.rsplit(":", 1)[0] if ":" in netloc else netloc


def host_of(url: str) -> str:
    """The normalised host of an http(s) URL (no port)."""
    return origin_of(url).host


def authority_of(url: str) -> str:
    """The normalised `host[:port]` of a URL, the port only when it is not the default."""
    origin = origin_of(url)
    return authority(origin.host, origin.port, origin.scheme)


def authority(host: str, port: int, scheme: str = "https") -> str:
    """Format `host[:port]`, bracketing IPv6 literals and dropping default ports."""
    shown = f"[{host}]" if ":" in host else host
    return shown if DEFAULT_PORTS.get(scheme) == port else f"{shown}:{port}"


def same_origin(a: str, b: str) -> bool:
    """True when both URLs parse and share scheme, normalised host and port."""
    try:
        return origin_of(a) == origin_of(b)
    except InvalidURLError:
        return False


def same_host(a: str, b: str) -> bool:
    """True when both URLs parse and share the normalised host (ports and schemes ignored)."""
    try:
        return host_of(a) == host_of(b)
    except InvalidURLError:
        return False


def is_http_url(value: object) -> bool:
    """True for a string that parses as a usable http(s) URL."""
    if not isinstance(value, str):
        return False
    try:
        origin_of(value)
    except InvalidURLError:
        return False
    return True


def safe_link(value: object, fallback: str | None = None) -> str | None:
    """`value` when it may be stored and shown as a link: an absolute http(s) URL with no
    whitespace or control characters; else `fallback`.

    The one rule for every link that comes from elsewhere (a remote actor's or post's `url`,
    an attachment, a mention's target): `javascript:`, `data:`, relative and malformed values
    never reach an `href` or `src`. Whitespace and control characters are refused because
    browsers drop them before reading the scheme (`java\tscript:`); format characters
    (bidi overrides such as U+202E, zero-width marks) because a link shown as text could
    then read as another (`https://evil.example/\u202egro.elpmaxe`)."""
    if not isinstance(value, str) or not is_http_url(value):
        return fallback
    if any(c.isspace() or ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in value):
        return fallback
    if any(unicodedata.category(c) == "Cf" for c in value):
        return fallback
    return value
