"""Wake-ups between processes: "a row is waiting in queue Q", told to the processes that drain Q.

The processes of an instance (instance/roles.py) share nothing but the database, and a
worker that finds nothing to do sleeps until it is woken or its poll interval
(instance/workers.py) passes. A wake-up only shortens that sleep: a lost one costs at most
one poll interval, never a row, so every send here is fire-and-forget.

- PostgreSQL (one host or many): LISTEN/NOTIFY on the channel `dreamloom_wake`, the queue's
  name as payload. Each process keeps one extra connection for it; a listener whose
  connection drops reconnects with a growing pause, and polling covers the gap.
- SQLite (one host): each listening process binds a UDP socket on 127.0.0.1 and writes its
  port to `<data_dir>/run/wake/<queue>.<pid>`; a notifier sends one empty datagram to each
  port of the queue (the directory is re-read at most once a second). Files of processes
  that died are removed by the next listener that starts. A datagram from anything else on
  this host can at most cause an early poll.

Notifications asked for in one turn of the event loop are sent once per queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.engine import make_url

from instance.settings import Settings

log = logging.getLogger("dreamloom.wakeups")

CHANNEL = "dreamloom_wake"
RESCAN_S = 1.0  # how stale the SQLite notifier's list of listening ports may be
RECONNECT_S = (1.0, 30.0)  # a PostgreSQL listener's pause after a lost connection, min/max

Heard = Callable[[str], None]


class Wakeups(Protocol):
    def notify(self, queue: str) -> None:
        """Tell every listening process that a row waits in `queue` (never blocks, never
        raises)."""

    async def listen(self, queues: Iterable[str], heard: Heard) -> None:
        """Call `heard(queue)` whenever another process notifies one of `queues`."""

    async def aclose(self) -> None: ...


def wakeups_for(settings: Settings) -> Wakeups:
    url = make_url(settings.database_url)
    if url.get_backend_name() == "postgresql":
        return PostgresWakeups(url.set(drivername="postgresql").render_as_string(False))
    return LocalWakeups(settings.data_path / "run" / "wake")


class _Coalescing:
    """Notifications asked for during one loop turn go out once per queue, after it."""

    def __init__(self) -> None:
        self._pending: set[str] = set()
        self._scheduled = False

    def notify(self, queue: str) -> None:
        self._pending.add(queue)
        if self._scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a synchronous caller): send now
            self._flush()
            return
        self._scheduled = True
        loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        queues, self._pending = self._pending, set()
        for queue in queues:
            try:
                self.send(queue)
            except Exception:  # a wake-up is an optimisation: never an error for the caller
                log.debug("wake-up of %s not sent", queue, exc_info=True)

    def send(self, queue: str) -> None:
        raise NotImplementedError


class LocalWakeups(_Coalescing):
    """UDP datagrams on 127.0.0.1 to the ports registered under `directory` (one host)."""

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.directory = directory
        self._ports: dict[str, list[int]] = {}
        self._scanned = 0.0
        self._out: socket.socket | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._files: list[Path] = []

    def send(self, queue: str) -> None:
        if time.monotonic() - self._scanned > RESCAN_S:
            self._ports = self._scan()
            self._scanned = time.monotonic()
        ports = self._ports.get(queue)
        if not ports:
            return
        if self._out is None:
            self._out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self._out.setblocking(False)
        for port in ports:
            with contextlib.suppress(OSError):  # full buffer: a wake-up is already waiting
                self._out.sendto(queue.encode(), ("127.0.0.1", port))

    def _scan(self) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {}
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            return found
        for entry in entries:
            queue, _, pid = entry.name.rpartition(".")
            if not queue or not pid.isdigit():
                continue
            try:
                port = int(Path(entry.path).read_text().strip())
            except (OSError, ValueError):
                continue
            found.setdefault(queue, []).append(port)
        return found

    async def listen(self, queues: Iterable[str], heard: Heard) -> None:
        wanted = set(queues)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._remove_dead()

        class Receiver(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: Any) -> None:
                queue = data.decode("ascii", "replace")
                if queue in wanted:
                    heard(queue)

        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            Receiver, local_addr=("127.0.0.1", 0), family=socket.AF_INET
        )
        self._transport = transport
        port = transport.get_extra_info("sockname")[1]
        for queue in wanted:
            path = self.directory / f"{queue}.{os.getpid()}"
            staging = path.with_name(f".{path.name}.tmp")
            staging.write_text(str(port))
            staging.replace(path)  # a notifier never reads half a port
            self._files.append(path)

    def _remove_dead(self) -> None:
        for entry in os.scandir(self.directory):
            _, _, pid = entry.name.rpartition(".")
            if pid.isdigit() and not _alive(int(pid)):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)

    async def aclose(self) -> None:
        for path in self._files:
            with contextlib.suppress(OSError):
                path.unlink()
        self._files.clear()
        if self._transport is not None:
            self._transport.close()
        if self._out is not None:
            self._out.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


class PostgresWakeups(_Coalescing):
    """LISTEN/NOTIFY on CHANNEL over connections of our own (outside the engine's pool)."""

    def __init__(self, dsn: str) -> None:
        super().__init__()
        self.dsn = dsn
        self._sender: Any = None
        self._sending: asyncio.Task[None] | None = None
        self._queued: list[str] = []
        self._listener: asyncio.Task[None] | None = None

    def send(self, queue: str) -> None:
        self._queued.append(queue)
        if self._sending is None or self._sending.done():
            self._sending = asyncio.get_running_loop().create_task(self._send_queued())

    async def _send_queued(self) -> None:
        import asyncpg

        while self._queued:
            queues, self._queued = self._queued, []
            try:
                if self._sender is None or self._sender.is_closed():
                    self._sender = await asyncpg.connect(self.dsn)
                for queue in dict.fromkeys(queues):
                    await self._sender.execute("SELECT pg_notify($1, $2)", CHANNEL, queue)
            except (TimeoutError, OSError, asyncpg.PostgresError):
                log.debug("wake-up not sent", exc_info=True)
                self._sender = None
                return

    async def listen(self, queues: Iterable[str], heard: Heard) -> None:
        wanted = set(queues)
        connected = asyncio.Event()
        self._listener = asyncio.get_running_loop().create_task(
            self._listen_forever(wanted, heard, connected)
        )
        with contextlib.suppress(TimeoutError):  # polling works meanwhile
            await asyncio.wait_for(connected.wait(), 10)

    async def _listen_forever(
        self, wanted: set[str], heard: Heard, connected: asyncio.Event
    ) -> None:
        import asyncpg

        pause = RECONNECT_S[0]

        def on_notify(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
            if payload in wanted:
                heard(payload)

        while True:
            conn = None
            try:
                conn = await asyncpg.connect(self.dsn)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(CHANNEL, on_notify)
                connected.set()
                pause = RECONNECT_S[0]
                for queue in wanted:  # rows written while we were not listening
                    heard(queue)
                await lost.wait()
                log.warning("wake-up connection to PostgreSQL lost; reconnecting")
            except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
                log.warning("wake-ups from PostgreSQL unavailable (%s); polling meanwhile", exc)
            finally:
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await conn.close()
            await asyncio.sleep(pause)
            pause = min(pause * 2, RECONNECT_S[1])

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
        if self._sending is not None and not self._sending.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._sending, 2)
        if self._sender is not None and not self._sender.is_closed():
            with contextlib.suppress(Exception):
                await self._sender.close()
