"""The login throttle: too many failed logins from one client, or for one account name,
answer 429 with Retry-After before any password is checked.

25 failed logins per 5 minutes per client IP and 25 per hour per account name (Mastodon's
limits). It lives in memory, per process: a restart or a second server process starts
counting afresh. The client IP is the ASGI peer: behind a reverse proxy run uvicorn with
`--proxy-headers` and the proxy's address in `--forwarded-allow-ips`, or every visitor shares
the proxy's budget.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from instance.runtime import Runtime

IP_LIMIT, IP_WINDOW = 25, timedelta(minutes=5)
ACCOUNT_LIMIT, ACCOUNT_WINDOW = 25, timedelta(hours=1)


@dataclass
class _Window:
    limit: int
    span: timedelta
    hits: dict[str, deque[datetime]] = field(default_factory=dict)
    max_keys: int = 50_000

    def retry_after(self, key: str, now: datetime) -> int:
        q = self.hits.get(key)
        if not q:
            return 0
        while q and now - q[0] >= self.span:
            q.popleft()
        if len(q) < self.limit:
            return 0
        return max(1, math.ceil((q[0] + self.span - now).total_seconds()))

    def add(self, key: str, now: datetime) -> None:
        if key not in self.hits and len(self.hits) >= self.max_keys:
            self.hits.pop(next(iter(self.hits)))  # oldest key out: memory stays bounded
        self.hits.setdefault(key, deque()).append(now)


class LoginThrottle:
    """Failed logins, counted per client IP and per account name, in this process
    (`rt.service(LoginThrottle)`)."""

    def __init__(self, rt: Runtime | None = None) -> None:
        self.by_ip = _Window(IP_LIMIT, IP_WINDOW)
        self.by_account = _Window(ACCOUNT_LIMIT, ACCOUNT_WINDOW)

    def retry_after(self, ip: str, username: str, now: datetime) -> int:
        """Seconds until a login may be tried again; 0 when it may be tried now."""
        return max(self.by_ip.retry_after(ip, now),
                   self.by_account.retry_after(username.casefold(), now))  # fmt: skip

    def failed(self, ip: str, username: str, now: datetime) -> None:
        self.by_ip.add(ip, now)
        self.by_account.add(username.casefold(), now)
