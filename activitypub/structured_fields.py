"""The subset of RFC 8941 Structured Field Values that RFC 9421 signatures need.

`parse_dictionary` reads `Signature-Input`, `Signature` and `Content-Digest`;
`serialize_inner_list` writes the canonical `@signature-params` line. The parser is strict
(it follows the RFC 8941 algorithms) and raises only `StructuredFieldError` on bad input, so
it can be fuzzed and its callers can turn any failure into one clear rejection.
"""

from __future__ import annotations

import base64
import binascii
import string
from collections.abc import Iterable

__all__ = [
    "BareItem",
    "InnerList",
    "Item",
    "Params",
    "StructuredFieldError",
    "Token",
    "parse_dictionary",
    "serialize_inner_list",
]

_MAX_INPUT = 16384
_KEY_FIRST = set(string.ascii_lowercase + "*")
_KEY_REST = set(string.ascii_lowercase + string.digits + "_-.*")
_TOKEN_FIRST = set(string.ascii_letters + "*")
_TCHAR = set(string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~:/")
_BASE64 = set(string.ascii_letters + string.digits + "+/=")


class StructuredFieldError(ValueError):
    """The field value is not a valid RFC 8941 structure."""


class Token(str):
    """An RFC 8941 token (distinct from a string)."""

    __slots__ = ()


BareItem = int | float | str | bytes | bool
Params = dict[str, BareItem]
Item = tuple[BareItem, Params]
InnerList = tuple[list[Item], Params]


class _Parser:
    def __init__(self, text: str) -> None:
        if len(text) > _MAX_INPUT:
            raise StructuredFieldError("field value too long")
        if not text.isascii():
            raise StructuredFieldError("field value is not ASCII")
        self.text = text
        self.pos = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def take(self) -> str:
        char = self.peek()
        self.pos += 1
        return char

    def skip(self, chars: str) -> None:
        while self.peek() and self.peek() in chars:
            self.pos += 1

    def dictionary(self) -> dict[str, Item | InnerList]:
        result: dict[str, Item | InnerList] = {}
        self.skip(" ")
        while self.peek():
            key = self.key()
            if key in result:
                raise StructuredFieldError(f"duplicate dictionary key {key!r}")
            if self.peek() == "=":
                self.pos += 1
                result[key] = self.item_or_inner_list()
            else:
                result[key] = (True, self.params())
            self.skip(" \t")
            if not self.peek():
                break
            if self.take() != ",":
                raise StructuredFieldError("expected ',' between dictionary members")
            self.skip(" \t")
            if not self.peek():
                raise StructuredFieldError("trailing comma")
        return result

    def item_or_inner_list(self) -> Item | InnerList:
        if self.peek() != "(":
            return self.item()
        self.pos += 1
        items: list[Item] = []
        while True:
            self.skip(" ")
            if self.peek() == ")":
                self.pos += 1
                return (items, self.params())
            items.append(self.item())
            if self.peek() not in (" ", ")"):
                raise StructuredFieldError("malformed inner list")

    def item(self) -> Item:
        return (self.bare_item(), self.params())

    def params(self) -> Params:
        params: Params = {}
        while self.peek() == ";":
            self.pos += 1
            self.skip(" ")
            key = self.key()
            value: BareItem = True
            if self.peek() == "=":
                self.pos += 1
                value = self.bare_item()
            params[key] = value
        return params

    def key(self) -> str:
        start = self.pos
        if self.peek() not in _KEY_FIRST or not self.peek():
            raise StructuredFieldError("invalid key")
        self.pos += 1
        while self.peek() and self.peek() in _KEY_REST:
            self.pos += 1
        return self.text[start : self.pos]

    def bare_item(self) -> BareItem:
        char = self.peek()
        if char == "-" or char.isdigit():
            return self.number()
        if char == '"':
            return self.string()
        if char == ":":
            return self.byte_sequence()
        if char == "?":
            return self.boolean()
        if char and char in _TOKEN_FIRST:
            return self.token()
        raise StructuredFieldError("invalid bare item")

    def number(self) -> int | float:
        start = self.pos
        if self.peek() == "-":
            self.pos += 1
        while self.peek().isdigit() or self.peek() == ".":
            self.pos += 1
        text = self.text[start : self.pos]
        digits = text.lstrip("-")
        if "." not in digits:
            if not digits or len(digits) > 15:
                raise StructuredFieldError("invalid integer")
            return int(text)
        whole, _, frac = digits.partition(".")
        if not whole or not frac or "." in frac or len(whole) > 12 or len(frac) > 3:
            raise StructuredFieldError("invalid decimal")
        return float(text)

    def string(self) -> str:
        self.pos += 1
        out: list[str] = []
        while True:
            char = self.take()
            if not char:
                raise StructuredFieldError("unterminated string")
            if char == "\\":
                escaped = self.take()
                if escaped not in ('"', "\\"):
                    raise StructuredFieldError("invalid escape in string")
                out.append(escaped)
            elif char == '"':
                return "".join(out)
            elif not (" " <= char <= "~"):
                raise StructuredFieldError("invalid character in string")
            else:
                out.append(char)

    def token(self) -> Token:
        start = self.pos
        self.pos += 1
        while self.peek() and self.peek() in _TCHAR:
            self.pos += 1
        return Token(self.text[start : self.pos])

    def byte_sequence(self) -> bytes:
        self.pos += 1
        end = self.text.find(":", self.pos)
        if end < 0:
            raise StructuredFieldError("unterminated byte sequence")
        encoded = self.text[self.pos : end]
        self.pos = end + 1
        if not set(encoded) <= _BASE64:
            raise StructuredFieldError("invalid byte sequence")
        try:
            return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise StructuredFieldError("invalid base64 in byte sequence") from exc

    def boolean(self) -> bool:
        self.pos += 1
        char = self.take()
        if char not in ("0", "1"):
            raise StructuredFieldError("invalid boolean")
        return char == "1"


def parse_dictionary(text: str) -> dict[str, Item | InnerList]:
    """Parse an RFC 8941 Dictionary; raises `StructuredFieldError` on any invalid input."""
    return _Parser(text).dictionary()


def serialize_inner_list(items: Iterable[Item], params: Params) -> str:
    """Serialise an Inner List with parameters canonically (RFC 8941 section 4.1.1.1)."""
    inner = " ".join(_serialize_bare(value) + _serialize_params(p) for value, p in items)
    return f"({inner}){_serialize_params(params)}"


def _serialize_params(params: Params) -> str:
    out = []
    for key, value in params.items():
        out.append(f";{key}" if value is True else f";{key}={_serialize_bare(value)}")
    return "".join(out)


def _serialize_bare(value: BareItem) -> str:
    if isinstance(value, bool):
        return "?1" if value else "?0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if value % 1 else f"{value:.1f}"
    if isinstance(value, bytes):
        return ":" + base64.b64encode(value).decode("ascii") + ":"
    if isinstance(value, Token):
        return str(value)
    if any(not (" " <= c <= "~") for c in value):
        raise StructuredFieldError("string contains characters outside printable ASCII")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
