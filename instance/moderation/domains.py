"""Domain policy: which remote domains are suspended, silenced or have their media rejected.

The `domain_blocks` table is the one source of truth (`DomainHealth.blocked` is no longer
read). The rules, as Mastodon's:

- a block covers the domain and every subdomain (`example.com` covers `a.b.example.com`);
  the most specific row wins, so `media.example.com` may be stricter or milder;
- **suspend** defederates: the inbox answers 403 before any key fetch or signature check for
  a keyId host or actor host under it (nothing is stored); the fetcher refuses it at every
  redirect hop; fan-out and delivery skip it; its posts and boosts of them leave every
  timeline. Applying it removes follows both ways with its accounts and drops queued
  deliveries to it and queued inbox items from it;
- **silence** keeps federation but takes its posts off the public (local and federated)
  timelines;
- **noop** blocks nothing by itself; with `reject_media` its remote media is neither fetched
  nor served (as with any severity that sets `reject_media`; suspend implies it).

SQL callers get clauses (`host_blocked`, `author_domain_hidden`, ...) that test a column
against `domain_blocks` with a correlated subquery, so a page stays one query however many
domains are blocked (no expanding IN of thousands of names, which SQLite refuses).
"""

from __future__ import annotations

import csv
import io
import ipaddress
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, get_args
from urllib.parse import urlsplit

from sqlalchemy import ColumnElement, delete, exists, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from activitypub.urls import normalize_host
from instance.errors import UserError
from instance.moderation import epoch
from instance.runtime import Runtime
from instance.storage.models import (
    Account,
    Delivery,
    DomainBlock,
    DomainSeverity,
    Follow,
    InboxItem,
    Post,
)

SEVERITIES: tuple[str, ...] = get_args(DomainSeverity)
STRENGTH = {"noop": 0, "silence": 1, "suspend": 2}
"""How strong each severity is: an import never lowers one without --overwrite."""

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def normalize_domain(text: str) -> str:
    """`text` as a domain: lower-case, IDNA (punycode), without scheme, user, port or path.

    Raises UserError for anything that is not a host name (an IP literal is kept)."""
    raw = text.strip()
    if not raw:
        raise UserError("no domain given")
    literal_ip = _ip_literal(raw)
    if literal_ip is not None:
        return literal_ip
    if "://" not in raw:
        raw = "//" + raw
    try:
        host = urlsplit(raw).hostname or ""
        host = normalize_host(host.rstrip(".")) if host else ""
    except (ValueError, UnicodeError) as exc:
        raise UserError(f"not a domain: {text.strip()!r}") from exc
    if not host:
        raise UserError(f"not a domain: {text.strip()!r}")
    if ":" in host or re.fullmatch(r"[0-9.]+", host):
        literal_ip = _ip_literal(host)
        if literal_ip is None:  # "4" or "3.4" would cover every address ending so
            raise UserError(f"not a domain or an IP address: {text.strip()!r}")
        return literal_ip
    labels = host.split(".")
    if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise UserError(f"not a domain: {text.strip()!r}")
    return host


def _ip_literal(text: str) -> str | None:
    """`text` (an IP address, IPv6 possibly in brackets) in its one spelling, else None."""
    try:
        return ipaddress.ip_address(text.strip().strip("[]")).compressed
    except ValueError:
        return None


def parents(host: str) -> list[str]:
    """`host` and each domain above it, most specific first (`a.b.c`, `b.c`, `c`); an IP
    address (`1.2.3.4`, `[2001:db8::1]:8443`) is only itself."""
    host = host.strip()
    if host.startswith("[") and "]" in host:  # [IPv6] or [IPv6]:port
        bare = host[1 : host.index("]")]
    elif host.count(":") == 1:  # host:port
        bare = host.rsplit(":", 1)[0]
    else:
        bare = host
    bare = bare.lower().rstrip(".")
    literal_ip = _ip_literal(bare)
    if literal_ip is not None:
        return [literal_ip]
    labels = bare.split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]


async def policy_for_host(session: AsyncSession, host: str) -> DomainBlock | None:
    """The block that applies to `host` (`host[:port]` accepted): its own row or the most
    specific one of a domain above it; None when nothing applies."""
    candidates = parents(host)
    if not candidates or not candidates[0]:
        return None
    query = select(DomainBlock).where(DomainBlock.domain.in_(candidates))
    rows = list(await session.scalars(query))
    if not rows:
        return None
    return max(rows, key=lambda row: len(row.domain))


def first_suspended_in(severities: dict[str, str], hosts: Iterable[str]) -> str | None:
    """The first of `hosts` whose most specific row in `severities` (domain -> severity) is
    a suspend; None when none is."""
    if not severities:
        return None
    for host in sorted(hosts):
        chain = parents(host)
        severity = next((severities[name] for name in chain if name in severities), None)
        if severity == "suspend":
            return host
    return None


async def is_suspended_host(session: AsyncSession, host: str) -> bool:
    policy = await policy_for_host(session, host)
    return policy is not None and policy.severity == "suspend"


async def suspended_domains(session: AsyncSession) -> set[str]:
    """Every suspended domain, for a caller checking many hosts at once (`under`)."""
    query = select(DomainBlock.domain).where(DomainBlock.severity == "suspend")
    return set(await session.scalars(query))


def under(host: str, domains: set[str]) -> bool:
    """`host` (`host[:port]` accepted) is one of `domains` or below one."""
    return bool(domains) and any(name in domains for name in parents(host))


def rejects_media(policy: DomainBlock | None) -> bool:
    return policy is not None and (policy.reject_media or policy.severity == "suspend")


# -- SQL clauses ---------------------------------------------------------------------------
def _covers(column: Any, block: Any) -> ColumnElement[bool]:
    """`column` (a host or `host:port`) is `block.domain` or below it."""
    domain = block.domain
    return or_(
        column == domain,
        column.like(literal("%.") + domain),
        column.like(domain + literal(":%")),
        column.like(literal("%.") + domain + literal(":%")),
        column == literal("[") + domain + literal("]"),  # IPv6 hosts are stored bracketed
        column.like(literal("[") + domain + literal("]:%")),
    )


def host_blocked(column: Any, severities: Iterable[str] = ("suspend",)) -> ColumnElement[bool]:
    """A WHERE clause: the host in `column` falls under a block of one of `severities`.

    Note: the most specific row is not consulted here; a milder subdomain row under a
    suspended domain stays suspended in SQL (the stricter reading)."""
    block = aliased(DomainBlock)
    return exists().where(block.severity.in_(list(severities)), _covers(column, block))


def media_rejected_host(column: Any) -> ColumnElement[bool]:
    block = aliased(DomainBlock)
    return exists().where(
        or_(block.reject_media.is_(True), block.severity == "suspend"), _covers(column, block)
    )


def author_domain_hidden(
    author_id: Any, severities: Iterable[str] = ("suspend",)
) -> ColumnElement[bool]:
    """A WHERE clause: the account `author_id` is remote, of a domain under such a block."""
    author = aliased(Account)
    return exists().where(
        author.id == author_id,
        author.local.is_(False),
        host_blocked(author.domain, severities),
    )


def author_media_rejected(author_id: Any) -> ColumnElement[bool]:
    """A WHERE clause: the account `author_id` is remote, of a domain whose media we reject
    (`reject_media`, or suspended)."""
    author = aliased(Account)
    return exists().where(
        author.id == author_id, author.local.is_(False), media_rejected_host(author.domain)
    )


def shown_domain(*, public: bool = False) -> ColumnElement[bool]:
    """Post queries: the author's domain is not suspended (and on public timelines, not
    silenced either)."""
    severities = ("suspend", "silence") if public else ("suspend",)
    return ~author_domain_hidden(Post.account_id, severities)


# -- applying blocks -----------------------------------------------------------------------
@dataclass(frozen=True)
class Applied:
    follows: int
    deliveries: int
    inbox_items: int


async def apply_suspension(session: AsyncSession, domain: str) -> Applied:
    """The effects of suspending `domain`: follows both ways with its accounts, queued
    deliveries to it and queued inbox items from it are removed."""
    ids = select(Account.id).where(Account.local.is_(False), covers(Account.domain, domain))
    follows = await session.execute(
        delete(Follow).where(or_(Follow.follower_id.in_(ids), Follow.followee_id.in_(ids)))
    )
    deliveries = await session.execute(
        delete(Delivery).where(
            Delivery.status.in_(("queued", "failed", "running")),
            covers(Delivery.host, domain),
        )
    )
    items = await session.execute(
        delete(InboxItem).where(
            InboxItem.status.in_(("queued", "failed")),
            _url_host_under(InboxItem.actor_uri, domain),
        )
    )
    return Applied(_count(follows), _count(deliveries), _count(items))


def _count(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def covers(column: Any, domain: str) -> ColumnElement[bool]:
    """`column` (a host or `host:port`) is `domain` or below it."""
    if ":" in domain:  # IPv6: stored bracketed, nothing is below it
        return or_(column == f"[{domain}]", column.like(f"[{domain}]:%"), column == domain)
    return or_(
        column == domain,
        column.like(f"%.{domain}"),
        column.like(f"{domain}:%"),
        column.like(f"%.{domain}:%"),
    )


def _url_host_under(column: Any, domain: str) -> ColumnElement[bool]:
    """An http(s) URL in `column` whose host is `domain` or below it."""
    clauses = []
    if ":" in domain:  # IPv6 in a URL is bracketed
        for scheme in ("https://", "http://"):
            clauses += [column.like(f"{scheme}[{domain}]/%"), column.like(f"{scheme}[{domain}]:%")]
        return or_(*clauses)
    for scheme in ("https://", "http://"):
        for sep in ("/", ":"):
            clauses.append(column.like(f"{scheme}{domain}{sep}%"))
            clauses.append(column.like(f"{scheme}%.{domain}{sep}%"))
    return or_(*clauses)


def _check_severity(severity: str) -> None:
    if severity not in SEVERITIES:
        raise UserError(f"unknown severity {severity!r} (use one of {', '.join(SEVERITIES)})")


def _refuse_our_own(rt: Runtime, domain: str) -> None:
    ours = parents(rt.settings.host)[0]
    if ours == domain or ours.endswith("." + domain):
        raise UserError(f"{domain} is this instance's own domain; it cannot be blocked")


async def block_domain(
    rt: Runtime,
    domain: str,
    severity: str = "suspend",
    *,
    reject_media: bool = False,
    reject_reports: bool = False,
    public_comment: str = "",
    private_comment: str = "",
    obfuscate: bool = False,
) -> DomainBlock:
    """Create or change the block of `domain`; a suspend applies its effects at once."""
    name = normalize_domain(domain)
    _check_severity(severity)
    _refuse_our_own(rt, name)
    async with rt.sessions() as session, session.begin():
        row = await session.get(DomainBlock, name)
        if row is None:
            row = DomainBlock(domain=name, created_at=rt.now())
            session.add(row)
        _fill(row, severity, reject_media, reject_reports, public_comment, private_comment,
              obfuscate)  # fmt: skip
        row.updated_at = rt.now()
        if severity == "suspend":
            await apply_suspension(session, name)
    epoch.bump(rt)
    return row


def _fill(
    row: DomainBlock,
    severity: str,
    reject_media: bool,
    reject_reports: bool,
    public_comment: str,
    private_comment: str,
    obfuscate: bool,
) -> None:
    row.severity = severity  # type: ignore[assignment]  # checked against SEVERITIES
    row.reject_media = reject_media
    row.reject_reports = reject_reports
    row.public_comment = public_comment
    row.private_comment = private_comment
    row.obfuscate = obfuscate


async def unblock_domain(rt: Runtime, domain: str) -> bool:
    """Remove the block of `domain` itself (not of a domain above it); True if one went."""
    name = normalize_domain(domain)
    async with rt.sessions() as session, session.begin():
        result = await session.execute(delete(DomainBlock).where(DomainBlock.domain == name))
    epoch.bump(rt)
    return _count(result) > 0


async def list_blocks(session: AsyncSession) -> list[DomainBlock]:
    return list(await session.scalars(select(DomainBlock).order_by(DomainBlock.domain)))


# -- the fetcher hook ----------------------------------------------------------------------
def fetch_guard(rt: Runtime) -> Callable[[str], Awaitable[str | None]]:
    """For SafeFetcher.host_guard: the reason a fetch of `host` is refused, or None."""

    async def guard(host: str) -> str | None:
        async with rt.sessions() as session:
            if await is_suspended_host(session, host):
                return f"{host} is blocked by this instance's admin"
        return None

    return guard


def guard_fetchers(rt: Runtime) -> None:
    """Install the domain rule on every fetcher of `rt` (called by setup.ensure_instance)."""
    guard = fetch_guard(rt)
    for fetcher in (rt.fetcher, rt.key_fetcher, rt.media_fetcher):
        fetcher.host_guard = guard


# -- Mastodon's CSV blocklist --------------------------------------------------------------
CSV_HEADER = ("#domain", "#severity", "#reject_media", "#reject_reports", "#public_comment",
              "#obfuscate")  # fmt: skip


@dataclass(frozen=True)
class Entry:
    domain: str
    severity: str = "suspend"
    reject_media: bool = False
    reject_reports: bool = False
    public_comment: str = ""
    obfuscate: bool = False

    def strength(self) -> tuple[int, int, int]:
        return (STRENGTH[self.severity], int(self.reject_media), int(self.reject_reports))


def _truthy(value: str) -> bool:
    return value.strip().lower() in {"true", "1", "yes", "t"}


def parse_blocklist(text: str) -> list[Entry]:
    """Mastodon's CSV export (header `#domain,#severity,...`), or one domain per line
    (lines starting with `#` are comments). Raises UserError naming the bad line."""
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), "")
    entries: dict[str, Entry] = {}
    if first.strip().lower().startswith(("#domain", "domain,")):
        reader = csv.reader(io.StringIO(text))
        header = [h.strip().lower().lstrip("#") for h in next(reader)]
        for number, cells in enumerate(reader, start=2):
            if not any(c.strip() for c in cells):
                continue
            row = dict(zip(header, cells, strict=False))
            try:
                severity = (row.get("severity") or "suspend").strip().lower()
                _check_severity(severity)
                domain = normalize_domain(row.get("domain", ""))
            except UserError as exc:
                raise UserError(f"line {number}: {exc}") from exc
            entries[domain] = Entry(
                domain, severity, _truthy(row.get("reject_media", "")),
                _truthy(row.get("reject_reports", "")), row.get("public_comment", "").strip(),
                _truthy(row.get("obfuscate", "")),
            )  # fmt: skip
        return list(entries.values())
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            domain = normalize_domain(stripped.split(" #")[0].strip())
        except UserError as exc:
            raise UserError(f"line {number}: {exc}") from exc
        entries[domain] = Entry(domain)
    return list(entries.values())


def export_csv(rows: Iterable[DomainBlock]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for row in rows:
        writer.writerow([row.domain, row.severity, str(row.reject_media).lower(),
                         str(row.reject_reports).lower(), row.public_comment,
                         str(row.obfuscate).lower()])  # fmt: skip
    return buffer.getvalue()


def _entry_of(row: DomainBlock) -> Entry:
    return Entry(row.domain, row.severity, row.reject_media, row.reject_reports,
                 row.public_comment, row.obfuscate)  # fmt: skip


@dataclass
class ImportPlan:
    new: list[Entry]
    stronger: list[Entry]  # changes that only strengthen (or keep) an existing block
    downgrades: list[tuple[Entry, Entry]]  # (existing, imported) where imported is weaker
    unchanged: int


async def plan_import(session: AsyncSession, entries: list[Entry]) -> ImportPlan:
    existing = {row.domain: _entry_of(row) for row in await list_blocks(session)}
    plan = ImportPlan([], [], [], 0)
    for entry in entries:
        old = existing.get(entry.domain)
        if old is None:
            plan.new.append(entry)
        elif old == entry:
            plan.unchanged += 1
        elif any(n < o for n, o in zip(entry.strength(), old.strength(), strict=True)):
            plan.downgrades.append((old, entry))
        else:
            plan.stronger.append(entry)
    return plan


def to_write(plan: ImportPlan, *, overwrite: bool) -> list[Entry]:
    return [*plan.new, *plan.stronger, *([e for _, e in plan.downgrades] if overwrite else [])]


async def apply_import(
    rt: Runtime,
    plan: ImportPlan,
    *,
    overwrite: bool,
    progress: Callable[[int], None] = lambda n: None,
) -> int:
    """Write the plan in one transaction; downgrades only with `overwrite`. Returns how many
    rows were written. `progress(1)` is called per row written and per suspension applied
    (`len(todo)` plus the suspends among them in all)."""
    todo = to_write(plan, overwrite=overwrite)
    for entry in todo:
        _refuse_our_own(rt, entry.domain)
    now = rt.now()
    async with rt.sessions() as session, session.begin():
        existing = {row.domain: row for row in await list_blocks(session)}
        for entry in todo:
            row = existing.get(entry.domain)
            if row is None:
                row = DomainBlock(domain=entry.domain, created_at=now, private_comment="")
                session.add(row)
            _fill(row, entry.severity, entry.reject_media, entry.reject_reports,
                  entry.public_comment, row.private_comment or "", entry.obfuscate)  # fmt: skip
            row.updated_at = now
            progress(1)
        await session.flush()
        for entry in todo:
            if entry.severity == "suspend":
                await apply_suspension(session, entry.domain)
                progress(1)
    epoch.bump(rt)
    return len(todo)
