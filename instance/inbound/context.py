"""What an inbox handler gets: the activity, its actor's account, its object, a session."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from activitypub.objects import Activity, APObject
from instance.runtime import Runtime
from instance.storage.models import Account


@dataclass
class Inbound:
    rt: Runtime
    session: AsyncSession
    activity: Activity
    actor: Account
    obj: APObject | None  # the embedded object, or the one fetched from its origin
    now: datetime
    # our live accounts by URI, as read earlier in the same worker step (None: not ours or
    # gone); shared by the step's items like the remote actors, so a flood of mentions of
    # one AI account reads it once per step (instance/inbound/handlers/notes.py)
    ours: dict[str, Account | None] = field(default_factory=dict)

    @property
    def type(self) -> str | None:
        return self.activity.type

    @property
    def object_type(self) -> str | None:
        return self.obj.type if self.obj is not None else None

    @property
    def object_id(self) -> str | None:
        return self.activity.object_id

    @property
    def raw(self) -> dict[str, Any]:
        return dict(self.activity.raw)
