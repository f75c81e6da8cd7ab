"""How an endpoint of the client API reads its parameters: one policy for every module.

`await read(request, Limits(...))` gives the request's `Params`: the query string's fields
and, over them, the body's, as Rails merges them for Mastodon:

- a JSON object (masto.js), or a form, url-encoded or multipart (Mastodon.py); another
  content type sends no body parameters. A form gathers `name[]` fields into a list under
  `name` and nests `a[b][c]` fields as {"a": {"b": {"c": ...}}} (Rails' reading, which
  `fields_attributes[0][name]` needs); a JSON body is taken as it is.
- the caller's `Limits`: how many fields and files, how many bytes of each file are read
  (one more than `max_file_bytes`, so the caller can say in its own words that a file is
  too large), and `max_bytes`, past which a body is 413 `too_large` (from Content-Length
  before anything is read, and while a JSON body is read).
- uploaded files are read into bytes (`Params.file`) and closed before `read` returns.
- a NUL character anywhere is 400 (auth.refuse_nul), a body that cannot be read 422.

The accessors are typed and answer 422 in Mastodon's shape naming the parameter: `text`,
`flag` (Mastodon's truthy and falsy spellings, TRUE and FALSE), `integer`, `number`, `ids`
(a list sent as `name[]` or a JSON list, or one id), `file`, `indexed` (a list of objects
sent as a JSON list, as `name[i][key]` form fields or a JSON object keyed by index).
`query_flag` is the lenient flag of a GET filter (`only_media=true`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request

from instance.api.auth import ApiError, refuse_nul

TRUE = frozenset({"1", "true", "t", "on", "yes"})
FALSE = frozenset({"0", "false", "f", "off", "no"})
FORMS = ("multipart/form-data", "application/x-www-form-urlencoded")
MAX_DEPTH = 4  # `a[b][c][d]`: a deeper form key stays a plain key
_KEY = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])+)")
_PART = re.compile(r"\[([^\[\]]*)\]")
T = TypeVar("T")


@dataclass(frozen=True)
class Limits:
    """What one endpoint's body may hold (the numbers are the caller's)."""

    max_fields: int = 64
    max_files: int = 0
    max_file_bytes: int = 0  # each file: this many bytes and one more are read
    max_part_bytes: int = 1024 * 1024  # a text field of a multipart form
    max_bytes: int | None = None  # the whole body; past it 413 with `too_large`
    too_large: str = "Request entity too large"


@dataclass
class Params:
    """A request's parameters and uploaded files, with typed accessors."""

    values: dict[str, Any] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)

    def __contains__(self, name: str) -> bool:
        return name in self.values or name in self.files

    def text(self, name: str, *, strip: bool = False) -> str | None:
        """A string (a JSON number as its digits); None when not sent."""
        value = self.values.get(name)
        if name in self.files or isinstance(value, dict | list):
            raise ApiError(422, f"{name} must be text")
        if value is None:
            return None
        return str(value).strip() if strip else str(value)

    def flag(self, name: str) -> bool | None:
        """A boolean: JSON's, or a spelling in TRUE or FALSE; None when not sent or empty."""
        value = self.values.get(name)
        if name in self.files or isinstance(value, dict | list):
            raise ApiError(422, f"{name} must be true or false")
        if value is None or isinstance(value, bool):
            return value
        spelled = str(value).strip()
        if spelled == "":
            return None
        if spelled.lower() in TRUE:
            return True
        if spelled.lower() in FALSE:
            return False
        raise ApiError(422, f"{name} must be true or false")

    def integer(self, name: str) -> int | None:
        return self._spelled(name, int, "a whole number")

    def number(self, name: str) -> float | None:
        return self._spelled(name, float, "a number")

    def _spelled(self, name: str, kind: Callable[[str], T], what: str) -> T | None:
        spelled = self.text(name, strip=True)
        if not spelled:
            return None
        try:
            return kind(spelled)
        except ValueError:
            raise ApiError(422, f"{name} must be {what}") from None

    def ids(self, name: str) -> list[str]:
        """`name[]` fields or a JSON list (one id alone is a list of one); [] when absent."""
        value = self.values.get(name)
        listed = value if isinstance(value, list) else [value]
        if isinstance(value, dict) or any(isinstance(v, dict | list) for v in listed):
            raise ApiError(422, f"{name} must be a list of ids")
        return [str(v) for v in listed if v is not None and str(v)]

    def file(self, name: str) -> bytes | None:
        """The uploaded file's bytes (at most Limits.max_file_bytes + 1); None when absent."""
        if name in self.files:
            return self.files[name]
        if self.values.get(name) in (None, ""):
            return None
        raise ApiError(422, f"{name} must be an uploaded file")

    def indexed(self, name: str) -> list[dict[str, Any]] | None:
        """A list of objects: a JSON list, or an object keyed by index as Rails' form
        fields `name[0][key]` make it (in index order); entries that are not objects are
        left out. None when not sent."""
        value = self.values.get(name)
        if value is None:
            return None
        if isinstance(value, list):
            value = {str(i): item for i, item in enumerate(value)}
        if not isinstance(value, dict):
            raise ApiError(422, f"{name} must be a list of fields")
        ordered = sorted(value.items(), key=lambda kv: (not kv[0].isdecimal(),
                         int(kv[0]) if kv[0].isdecimal() else 0))  # fmt: skip
        return [item for _, item in ordered if isinstance(item, dict)]


def query_flag(request: Request, name: str) -> bool:
    """A GET filter's flag: true when spelled as one of TRUE (anything else is false)."""
    return request.query_params.get(name, "").strip().lower() in TRUE


async def read(request: Request, limits: Limits | None = None) -> Params:
    """The query's and body's parameters (the module docstring says how they are read)."""
    limits = limits or Limits()
    size = request.headers.get("content-length", "")
    if limits.max_bytes is not None and size.isdigit() and int(size) > limits.max_bytes:
        raise ApiError(413, limits.too_large)
    params = Params()
    for key, value in request.query_params.multi_items():
        _put(params.values, key, value)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json":
        try:
            body = json.loads(await _capped_body(request, limits) or b"{}")
        except ValueError:
            raise ApiError(422, "The request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise ApiError(422, "The request body must be a JSON object")
        params.values.update(body)
    elif ctype in FORMS:
        await _read_form(request, limits, params)
    refuse_nul(params.values)
    return params


async def _capped_body(request: Request, limits: Limits) -> bytes:
    if limits.max_bytes is None:
        return await request.body()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limits.max_bytes:
            raise ApiError(413, limits.too_large)
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_form(request: Request, limits: Limits, params: Params) -> None:
    try:  # the form's files are closed when the `async with` block ends
        async with request.form(
            max_files=limits.max_files, max_fields=limits.max_fields,
            max_part_size=limits.max_part_bytes,
        ) as form:  # fmt: skip
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    params.files[key] = await value.read(limits.max_file_bytes + 1)
                else:
                    _put(params.values, key, value)
    except HTTPException as exc:  # a malformed or oversized form, as Starlette words it
        raise ApiError(422, f"The form could not be read: {exc.detail}") from None
    except Exception as exc:  # a broken body in some other way: say so, in Mastodon's shape
        raise ApiError(422, f"The form could not be read: {exc}") from None


def _put(values: dict[str, Any], key: str, value: str) -> None:
    """Set a form field: `name[]` appends to a list, `a[b][c]` nests (a clash with a value
    already there, as in `a=1&a[b]=2`, keeps the first)."""
    matched = _KEY.fullmatch(key)
    path = [matched[1], *_PART.findall(matched[2])] if matched else []
    if not path or len(path) > MAX_DEPTH or "" in path[1:-1]:
        values[key] = value
        return
    *outer, last = path
    node: Any = values
    for depth, part in enumerate(outer):
        empty: list[str] | dict[str, Any] = [] if depth == len(outer) - 1 and not last else {}
        node = node.setdefault(part, empty)
        if type(node) is not type(empty):
            return
    if last:
        node[last] = value
    else:
        node.append(value)
