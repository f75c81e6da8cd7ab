"""Mastodon's pagination: `max_id`, `since_id`, `min_id`, `limit` in, a `Link` header out.

- `max_id`: items older than this id; `since_id`: newer than it (the newest first);
  `min_id`: newer than it, the oldest of those first (reading forward without gaps).
  The answer is always newest first.
- `limit`: 20 by default, at most 40 (80 for account lists, as Mastodon allows).
- `Link: <...?max_id=OLDEST>; rel="next", <...?min_id=NEWEST>; rel="prev"`, with the
  request's other query parameters kept, absent when the page is empty.

Ids are compared as the column they page over: status and media ids are public ids,
time-sortable strings of equal length; account and notification ids are integers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Select
from sqlalchemy.sql.elements import ColumnElement
from starlette.requests import Request

from instance.api.auth import ApiError

DEFAULT_LIMIT, MAX_LIMIT = 20, 40
MAX_ROW_ID = 2**63 - 1  # the largest integer key SQLite and PostgreSQL (bigint) hold


def row_id(raw: str | int) -> int | None:
    """An API id as an integer row id; None when no row can have it (not ASCII digits, or
    beyond 64 bits, which the database would refuse to compare)."""
    if isinstance(raw, int):
        return raw if 0 <= raw <= MAX_ROW_ID else None
    if not (raw.isascii() and raw.isdigit()):
        return None
    value = int(raw)
    return value if value <= MAX_ROW_ID else None


@dataclass(frozen=True)
class Page:
    max_id: str | None
    since_id: str | None
    min_id: str | None
    limit: int

    def apply(
        self, query: Select[Any], column: ColumnElement[Any], numeric: bool = False
    ) -> Select[Any]:
        """`query` narrowed to this page over `column` (its id), newest first; a `min_id`
        page is fetched oldest first; `ordered` puts it back."""
        cast = (lambda v: max(-MAX_ROW_ID, min(int(v), MAX_ROW_ID))) if numeric else (lambda v: v)
        try:
            if self.max_id:
                query = query.where(column < cast(self.max_id))
            if self.since_id:
                query = query.where(column > cast(self.since_id))
            if self.min_id:
                query = query.where(column > cast(self.min_id))
        except ValueError:
            raise ApiError(422, "max_id, since_id and min_id must be ids") from None
        order = column.asc() if self.min_id else column.desc()
        return query.order_by(order).limit(self.limit)

    def ordered(self, rows: Sequence[Any]) -> list[Any]:
        return list(reversed(rows)) if self.min_id else list(rows)


def page_of(request: Request, max_limit: int = MAX_LIMIT) -> Page:
    q = request.query_params
    raw = q.get("limit")
    try:
        limit = DEFAULT_LIMIT if raw in (None, "") else int(raw)
    except ValueError:
        raise ApiError(422, "limit must be a number") from None
    return Page(q.get("max_id") or None, q.get("since_id") or None, q.get("min_id") or None,
                max(1, min(limit, max_limit)))  # fmt: skip


def link_header(request: Request, ids: Sequence[str]) -> dict[str, str]:
    """The `Link` header for a page whose items have `ids` (newest first)."""
    if not ids:
        return {}
    keep = [(k, v) for k, v in request.query_params.multi_items()
            if k not in ("max_id", "since_id", "min_id")]  # fmt: skip
    base = str(request.url.replace(query=""))
    nxt = f"{base}?{urlencode([*keep, ('max_id', ids[-1])])}"
    prev = f"{base}?{urlencode([*keep, ('min_id', ids[0])])}"
    return {"Link": f'<{nxt}>; rel="next", <{prev}>; rel="prev"'}
