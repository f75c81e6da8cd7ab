"""A counter per runtime that moves whenever this process changes a block or a suspension,
so a snapshot of them (gate.py) knows to read them again at once."""

from __future__ import annotations

from instance.runtime import Runtime


class ModerationEpoch:
    def __init__(self, rt: Runtime) -> None:
        self.value = 0


def bump(rt: Runtime) -> None:
    rt.service(ModerationEpoch).value += 1


def current(rt: Runtime) -> int:
    return rt.service(ModerationEpoch).value
