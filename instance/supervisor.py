"""`dreamloom serve`'s supervisor: one process per role, each started again when it dies.

The supervisor does no work of its own. It binds the HTTP socket (so a port in use is one
clear error before anything starts, and every web process accepts on the same socket), then
runs each process of the plan (instance/roles.py: web x N, inbox, delivery, generation) as
`dreamloom web --fd N` or `dreamloom worker --role R`, and:

- starts a process that exits without being asked again after a pause that doubles from
  RESTART_S[0] to RESTART_S[1] while it keeps failing (back to the shortest once it has run
  STABLE_S); the other processes carry on meanwhile, and the database holds every piece of
  work, so nothing is lost;
- on SIGTERM or SIGINT, sends SIGTERM to every process, waits up to STOP_GRACE_S, kills what
  is left, and writes `Dreamloom stopped (SIGTERM, ...)` as its last line;
- runs the worker roles at a lower CPU priority (`[server] worker_nice`, given to the
  process and to its autogroup: `set_autogroup_nice`), so on a small machine a burst of
  work never slows the answers the web processes give, and with
  `OMP_WAIT_POLICY=PASSIVE` (unless the environment sets it): torch's OpenMP threads in the
  generation role otherwise spin on the cores for a while after each operation, which took
  0.3-0.5 s of the two cores' 1.7 s during a one-second mention burst for five builtin:tiny
  pictures (0.18 s passive; BENCHMARKS.md). A lone picture on an idle CPU is 8-17% slower;
  `dreamloom worker` on a host of its own is not started here and keeps torch's default;
- starts each process in its own session with a parent-death signal: a Ctrl-C reaches the
  supervisor only (it stops the others in order), and a supervisor killed outright takes its
  processes with it.

Nothing here is a cluster layer: on several hosts each runs `dreamloom worker --role ...`
under systemd against the shared PostgreSQL (README: "Scaling out").
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from instance.errors import UserError

log = logging.getLogger("dreamloom.server")

RESTART_S = (1.0, 30.0)
STABLE_S = 60.0
STOP_GRACE_S = 30.0
TICK_S = 0.2
BACKLOG = 2048
PR_SET_PDEATHSIG = 1
SHARED_HOST_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}  # see the module docstring
AUTOGROUP = Path("/proc/self/autogroup")
AUTOGROUP_TRIES = 10
AUTOGROUP_RETRY_S = 0.11


@dataclass
class Process:
    """One process of the plan and its state."""

    name: str  # "web.0", "inbox", ...
    argv: list[str]
    nice: int = 0
    fds: tuple[int, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    popen: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    failures: int = 0
    start_at: float = 0.0  # when a stopped process starts again


def bind(host: str, port: int) -> socket.socket:
    """The listening socket every web process shares."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(BACKLOG)
    sock.set_inheritable(True)
    return sock


def command(*args: str) -> list[str]:
    """`dreamloom ARGS...` run by this interpreter, whatever the PATH says."""
    return [sys.executable, "-m", "instance.cli", *args]


def _child_setup(nice: int) -> Callable[[], None]:
    def setup() -> None:  # runs in the child between fork and exec, after its setsid
        if sys.platform.startswith("linux"):
            with contextlib.suppress(Exception):
                ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if nice:
            with contextlib.suppress(OSError):
                os.nice(nice)
            set_autogroup_nice(nice)

    return setup


def set_autogroup_nice(nice: int, path: Path = AUTOGROUP) -> bool:
    """Give this process's autogroup the priority `nice`; False where there is none.

    With the kernel's autogroups on (most distributions' default), CPU time is shared
    first between sessions, and a process's own nice value only ranks it inside its
    session. Every process here has a session of its own, so `os.nice` alone left a
    worker role exactly level with the web; the autogroup's nice is what ranks it below.
    Without privileges the kernel takes one such change per 100 ms for the whole machine,
    hence the retries (a role started up to a second later is harmless)."""
    for _ in range(AUTOGROUP_TRIES):
        try:
            path.write_text(str(nice))
            return True
        except BlockingIOError:  # EAGAIN: another change within the last 100 ms
            time.sleep(AUTOGROUP_RETRY_S)
        except OSError:  # no autogroups (the file is missing), or not allowed
            return False
    return False


class Supervisor:
    def __init__(self, processes: list[Process], *, grace_s: float = STOP_GRACE_S,
                 on_exit: Callable[[int], None] | None = None) -> None:  # fmt: skip
        self.processes = processes
        self.grace_s = grace_s
        self.on_exit = on_exit  # told each pid that ended (prometheus multiprocess files)
        self.stopped_by: str | None = None

    def _signal(self, sig: int, _frame: FrameType | None) -> None:
        if self.stopped_by is None:
            self.stopped_by = signal.Signals(sig).name

    def run(self) -> None:
        """Run the plan until a signal; every process has ended when this returns."""
        previous = {s: signal.signal(s, self._signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            for process in self.processes:
                self._start(process)
            while self.stopped_by is None:
                self._tend()
                time.sleep(TICK_S)
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _start(self, process: Process) -> None:
        env = {**os.environ, **process.env}
        process.popen = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
            process.argv,
            env=env,
            pass_fds=process.fds,
            start_new_session=True,
            preexec_fn=_child_setup(process.nice),  # safe: the supervisor has no threads
        )
        process.started = time.monotonic()
        log.debug("started %s (pid %d)", process.name, process.popen.pid)

    def _tend(self) -> None:
        now = time.monotonic()
        for process in self.processes:
            popen = process.popen
            if popen is None:
                if now >= process.start_at:
                    self._start(process)
                continue
            code = popen.poll()
            if code is None:
                continue
            self._ended(popen.pid)
            ran = now - process.started
            process.failures = 1 if ran >= STABLE_S else process.failures + 1
            pause = min(RESTART_S[0] * 2 ** (process.failures - 1), RESTART_S[1])
            log.warning(
                "%s (pid %d) exited with code %s after %.1f s; starting it again in %.0f s",
                process.name, popen.pid, code, ran, pause,
                extra={"role_process": process.name, "pid": popen.pid, "exit_code": code},
            )  # fmt: skip
            process.popen = None
            process.start_at = now + pause

    def _stop_all(self) -> None:
        running = [p.popen for p in self.processes if p.popen is not None]
        for popen in running:
            with contextlib.suppress(ProcessLookupError):
                popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace_s
        for popen in running:
            try:
                popen.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("pid %d did not stop within %.0f s: killed", popen.pid, self.grace_s)
                popen.kill()
                popen.wait()
            self._ended(popen.pid)
        for process in self.processes:
            process.popen = None

    def _ended(self, pid: int) -> None:
        if self.on_exit is not None:
            with contextlib.suppress(Exception):
                self.on_exit(pid)


def plan(
    config: Path,
    roles: tuple[str, ...],
    *,
    counts: dict[str, int],
    web_fd: int | None,
    worker_nice: int,
    env: dict[str, str] | None = None,
) -> list[Process]:
    """The processes `dreamloom serve` runs: `counts[role]` (default 1) of each of `roles`."""
    shared = dict(env or {})
    workers = {k: v for k, v in SHARED_HOST_ENV.items() if k not in os.environ} | shared
    processes: list[Process] = []
    for role in roles:
        count = counts.get(role, 1)
        for index in range(count):
            name = role if count == 1 and role != "web" else f"{role}.{index}"
            if role == "web":
                if web_fd is None:
                    raise ValueError("the web role needs the listening socket")
                argv = command("web", "--dir", str(config), "--fd", str(web_fd))
                processes.append(Process(name, argv, fds=(web_fd,), env=shared))
            else:
                argv = command("worker", "--role", role, "--dir", str(config))
                processes.append(Process(name, argv, nice=worker_nice, env=workers))
    return processes


def parse_counts(text: str, roles: tuple[str, ...]) -> dict[str, int]:
    """`--processes inbox=2,delivery=1` -> {"inbox": 2, "delivery": 1}."""
    counts: dict[str, int] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        role, _, number = part.partition("=")
        role = role.strip().lower()
        if role not in roles or not number.strip().isdigit() or int(number) < 1:
            raise UserError(
                f"--processes takes ROLE=N with N >= 1 and ROLE one of {', '.join(roles)}, "
                f"not {part!r}"
            )
        counts[role] = int(number)
    return counts
