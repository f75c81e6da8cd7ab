"""SQLite on one host: the web's group commit writes before the inbox worker's next item.

SQLite has one write lock and no queue for it. A writer that finds it taken sleeps (SQLite's
busy handler) or, as the web's group commit does (instance/inbound/writer.py), tries again
every millisecond; the inbox worker, whose transactions follow one another a fraction of a
millisecond apart, wins most of those races, so under a flood the 202s waited for its
drain. The processes of one instance therefore agree through an advisory lock (`flock`) on
a file beside the database (`<database>.turns`):

- the web holds it *shared* from the moment it has a batch to write until the batch is
  committed (`writing()`); several web processes share it;
- the inbox worker, before each item of a group but the first, asks whether anyone holds it
  (`wanted()`: an exclusive try, let go at once); when someone does, it commits what it has.
  Before its next transaction it waits until nobody holds it (`wait_turn()`), polling every
  POLL_S, for at most PATIENCE_S, and then goes anyway: a web that writes without a pause
  slows the inbox down, it never stops it.

So a 202 waits for at most one inbox item, not for a group of them. PostgreSQL needs none
of this (row locks, many writers): there, and when the file cannot be opened, every method
answers at once. The file holds nothing; the lock goes with the process that held it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy.engine import make_url

from instance.runtime import Runtime
from instance.storage.db import is_sqlite

log = logging.getLogger("dreamloom.storage")

POLL_S = 0.001
PATIENCE_S = 0.05


def turns_path(database_url: str) -> Path | None:
    """The lock file of an SQLite database file; None for PostgreSQL or an in-memory one."""
    if not is_sqlite(database_url):
        return None
    database = make_url(database_url).database
    return Path(f"{database}.turns") if database and database != ":memory:" else None


class WriteTurns:
    """One per runtime (`rt.service(WriteTurns)`). The web side and the worker side use two
    open descriptions of the file, so that they also take turns inside one process."""

    def __init__(self, rt: Runtime) -> None:
        self.path = turns_path(rt.settings.database_url)
        self._fds: dict[str, int | None] = {}

    def _fd(self, side: str) -> int | None:
        if self.path is None:
            return None
        if side not in self._fds:
            try:
                self._fds[side] = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as exc:
                log.warning("write turns off: %s cannot be opened (%s)", self.path, exc)
                self._fds[side] = None
        return self._fds[side]

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[None]:
        """The web: hold the turn (shared) while a batch waits for the lock and is written."""
        fd = self._fd("web")
        if fd is None:
            yield
            return
        while True:  # only a worker's try holds it exclusively, for microseconds
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(0)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def wanted(self) -> bool:
        """The worker: whether a web process holds the turn (is waiting for the lock or
        writing) right now."""
        fd = self._fd("worker")
        if fd is None:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False

    async def wait_turn(self) -> None:
        """The worker, before a transaction: until no web process holds the turn, for at
        most PATIENCE_S."""
        deadline = time.monotonic() + PATIENCE_S
        for _ in range(int(PATIENCE_S / POLL_S) + 1):  # a file lock has no event to await
            if not self.wanted() or time.monotonic() >= deadline:
                return
            await asyncio.sleep(POLL_S)

    async def aclose(self) -> None:
        for fd in self._fds.values():
            if fd is not None:
                os.close(fd)
        self._fds.clear()
