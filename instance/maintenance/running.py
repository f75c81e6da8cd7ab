"""Whether `dreamloom serve` is running on this instance's data directory.

`serve` holds a shared lock (flock) on `<data_dir>/serve.lock` for as long as it runs;
`restore` takes the exclusive lock, so it refuses while any `serve` on this host holds the
directory, and a `serve` started during a restore refuses to start. The kernel drops the lock
when the process ends, however it ends, so a crash never leaves a stale lock behind. Workers
on other hosts (PostgreSQL deployments) share no directory with this one: stop them by hand.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from instance.errors import UserError
from instance.settings import Settings

LOCK_NAME = "serve.lock"


def _lock_path(settings: Settings) -> Path:
    settings.data_path.mkdir(parents=True, exist_ok=True)
    return settings.data_path / LOCK_NAME


@contextmanager
def _flock(path: Path, mode: int, refusal: str) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(refusal) from None
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


@contextmanager
def serving(settings: Settings) -> Iterator[None]:
    """Held by `serve` while it runs (several `serve` processes may share it)."""
    refusal = f"a restore is running on {settings.data_path}; start serve after it ends"
    with _flock(_lock_path(settings), fcntl.LOCK_SH, refusal):
        yield


@contextmanager
def stopped(settings: Settings) -> Iterator[None]:
    """Held by `restore`: refused while any `serve` runs on this data directory."""
    refusal = f"dreamloom serve is running on {settings.data_path}: stop it before a restore"
    with _flock(_lock_path(settings), fcntl.LOCK_EX, refusal):
        yield
