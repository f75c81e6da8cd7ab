"""How much one remote actor, and one remote server, may send us; and the disk we keep free.

Token buckets, one per sending actor and one per sending server (host), each holding a
minute's allowance from `[federation]`: `inbox_actor_per_minute` activities and
`inbox_actor_mb_per_minute` megabytes per actor, `inbox_domain_per_minute` activities per
server. A request past either is answered 429 with the seconds until it fits (every server
retries on that), before anything is written. Buckets live in this process's memory, in a
bounded LRU: a forgotten bucket is a full one, which only ever errs towards accepting.

Below `inbox_min_free_disk_mb` of free space where the database lives, the inbox answers 503:
a flood must not fill the disk that the rest of the instance needs.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cachetools import LRUCache

from instance.runtime import Runtime

MAX_BUCKETS = 100_000
DISK_CHECK_EVERY_S = 1.0


@dataclass
class Bucket:
    level: float
    at: float


class Buckets:
    """`capacity` units, refilled over a minute; `take` says how long to wait, 0 when it fits."""

    def __init__(self, capacity: float, clock: Callable[[], float]) -> None:
        self.capacity = capacity
        self.rate = capacity / 60.0
        self.clock = clock
        self._buckets: LRUCache[str, Bucket] = LRUCache(MAX_BUCKETS)

    def take(self, key: str, amount: float = 1.0) -> float:
        now = self.clock()
        bucket = self._buckets.get(key) or Bucket(self.capacity, now)
        bucket.level = min(self.capacity, bucket.level + (now - bucket.at) * self.rate)
        bucket.at = now
        self._buckets[key] = bucket
        amount = min(amount, self.capacity)  # more than a minute's worth: a full bucket
        if bucket.level >= amount:
            bucket.level -= amount
            return 0.0
        return (amount - bucket.level) / self.rate


class InboxLimits:
    """The runtime's inbox limits: `rt.service(InboxLimits)`."""

    def __init__(self, rt: Runtime, clock: Callable[[], float] = time.monotonic) -> None:
        fed = rt.settings.federation
        self.actors = Buckets(fed.inbox_actor_per_minute, clock)
        self.actor_bytes = Buckets(fed.inbox_actor_mb_per_minute * 1024 * 1024, clock)
        self.domains = Buckets(fed.inbox_domain_per_minute, clock)
        self.disk = DiskWatermark(rt.settings.data_path, fed.inbox_min_free_disk_mb, clock)

    def retry_after(self, actor: str, host: str, size: int) -> int:
        """Seconds until this request would fit; 0: take it now (and count it)."""
        wait = max(self.domains.take(host), self.actors.take(actor),
                   self.actor_bytes.take(actor, size))  # fmt: skip
        return math.ceil(wait)


class DiskWatermark:
    """Whether `path`'s disk has at least `min_free_mb` free, checked once a second."""

    def __init__(self, path: Path, min_free_mb: int, clock: Callable[[], float]) -> None:
        self.path = path
        self.min_free = min_free_mb * 1024 * 1024
        self.clock = clock
        self.free = disk_free
        self._checked_at = -math.inf
        self._ok = True

    def ok(self) -> bool:
        now = self.clock()
        if now - self._checked_at >= DISK_CHECK_EVERY_S:
            self._checked_at = now
            self._ok = self.free(self.path) >= self.min_free
        return self._ok


def disk_free(path: Path) -> int:
    return shutil.disk_usage(path).free
