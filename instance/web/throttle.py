"""The login throttle: answered 429 with Retry-After before any password is checked.

Every attempt is counted when it starts, before its password is hashed, so a hundred
concurrent guesses count as a hundred, not as none:

- one client address: 25 attempts per 5 minutes (Mastodon's limit);
- one address trying one account: 25 per hour;
- one account from every address together: past 100 attempts in an hour, one attempt per
  10 seconds. A soft limit: a stranger elsewhere cannot lock the owner out (they keep their
  own allowance and wait seconds at most), while guessing from many addresses stays slow.

A login that succeeds does not count. The counts live in memory, per process, with a bound
on how many addresses and names are remembered: a restart or a second server process starts
counting afresh. The client address is the TCP peer, or what `[server] trusted_proxies`
say it is.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from instance.runtime import Runtime

IP_LIMIT, IP_WINDOW = 25, timedelta(minutes=5)
PAIR_LIMIT, PAIR_WINDOW = 25, timedelta(hours=1)
ACCOUNT_SOFT_LIMIT, ACCOUNT_WINDOW = 100, timedelta(hours=1)
ACCOUNT_PACE = timedelta(seconds=10)


@dataclass
class _Window:
    limit: int
    span: timedelta
    hits: dict[str, deque[datetime]] = field(default_factory=dict)
    max_keys: int = 50_000

    def recent(self, key: str, now: datetime) -> deque[datetime]:
        q = self.hits.get(key) or deque()
        while q and now - q[0] >= self.span:
            q.popleft()
        return q

    def retry_after(self, key: str, now: datetime) -> int:
        q = self.recent(key, now)
        if len(q) < self.limit:
            return 0
        return _seconds(q[0] + self.span - now)

    def forget_last(self, key: str) -> None:
        q = self.hits.get(key)
        if q:
            q.pop()

    def add(self, key: str, now: datetime) -> None:
        if key not in self.hits and len(self.hits) >= self.max_keys:
            self.hits.pop(next(iter(self.hits)))  # oldest key out: memory stays bounded
        self.hits.setdefault(key, deque()).append(now)


def _seconds(delta: timedelta) -> int:
    return max(1, math.ceil(delta.total_seconds()))


class LoginThrottle:
    """Login attempts in this process (`rt.service(LoginThrottle)`), module docstring."""

    def __init__(self, rt: Runtime | None = None) -> None:
        self.by_ip = _Window(IP_LIMIT, IP_WINDOW)
        self.by_pair = _Window(PAIR_LIMIT, PAIR_WINDOW)
        self.by_account = _Window(ACCOUNT_SOFT_LIMIT, ACCOUNT_WINDOW)

    def begin(self, ip: str, username: str, now: datetime) -> int:
        """Seconds to wait before this attempt may be made; 0: it may, and is counted."""
        user = username.casefold()
        pair = f"{ip}\n{user}"
        wait = max(self.by_ip.retry_after(ip, now), self.by_pair.retry_after(pair, now),
                   self._paced(user, now))  # fmt: skip
        if wait:
            return wait
        self.by_ip.add(ip, now)
        self.by_pair.add(pair, now)
        self.by_account.add(user, now)
        return 0

    def succeeded(self, ip: str, username: str) -> None:
        """The attempt just begun logged in: it does not count."""
        user = username.casefold()
        for window, key in ((self.by_ip, ip), (self.by_pair, f"{ip}\n{user}"),
                            (self.by_account, user)):  # fmt: skip
            window.forget_last(key)

    def _paced(self, user: str, now: datetime) -> int:
        recent = self.by_account.recent(user, now)
        if len(recent) < ACCOUNT_SOFT_LIMIT:
            return 0
        next_try = recent[-1] + ACCOUNT_PACE
        return _seconds(next_try - now) if next_try > now else 0
