"""Every exception the application raises on purpose, in one tree.

    DreamloomError
    ├── UserError                    a request a person can correct; the message says how.
    │   │                            The CLI prints it as one line (exit 1), the web pages
    │   │                            show it on the page; anything else is a bug.
    │   ├── ConfigError              config.toml or a DREAMLOOM_* variable (names key and file)
    │   ├── AccountError             an account name, a password, an unknown local account
    │   ├── NotFound                 a handle or URL that leads to nothing usable
    │   ├── ActionError              a follow, like or boost that cannot be done
    │   ├── PostingError             a post that cannot be made or changed as asked
    │   ├── PinError                 a pin or unpin that cannot be done
    │   ├── ProfileError             a profile or persona change that cannot be made
    │   ├── ScheduleError            a posting schedule that cannot be read
    │   ├── RemixError               a remix that cannot be made
    │   └── GenerationRefused        a generation that was not queued (`http_status`)
    │       ├── InvalidGenerationRequest   the recipe or its follow-up step is invalid (400)
    │       ├── LowDiskError               too little free disk for new images (503)
    │       └── QueueFullError             the generation queue is full (503, Retry-After)
    ├── Refused                      an HTTP request answered with `status` and `reason`
    │                                (an inbox POST we will not store, a form we will not take)
    ├── ActorUnavailable             a remote actor could not be fetched, or is not usable
    └── Skip                         an inbox activity with nothing to do; the reason is kept
                                     on its row for the admin
"""

from __future__ import annotations


class DreamloomError(Exception):
    """Base of every exception Dreamloom raises on purpose."""


class UserError(DreamloomError):
    """Something a person asked for that cannot be done as asked; `str()` says why."""


class ConfigError(UserError):
    """A configuration problem, worded for the person who edits config.toml."""


class AccountError(UserError):
    """A request about accounts that cannot be done, worded for the person who asked."""


class NotFound(UserError):
    """Nothing usable at that handle or URL; the message says why."""


class ActionError(UserError):
    """A follow, like or boost that cannot be done; the message says why."""


class PostingError(UserError):
    """A post that cannot be made as asked; the message says why."""


class PinError(UserError):
    """A pin or unpin that cannot be done; the message says why."""


class ProfileError(UserError):
    """A profile change that cannot be made; the message says why."""


class ScheduleError(UserError):
    """A schedule that cannot be parsed; the message lists the accepted forms."""


class RemixError(UserError):
    """A remix that cannot be made; the message says why."""


class GenerationRefused(UserError):
    """A generation request that was not queued; the message says why and what to do."""

    http_status = 400
    retry_after_s: int | None = None


class InvalidGenerationRequest(GenerationRefused):
    """The recipe (or the job's follow-up step) is invalid: the validation message."""


class LowDiskError(GenerationRefused):
    """Too little free disk space for new images."""

    http_status = 503


class QueueFullError(GenerationRefused):
    """`[generator] max_queue` jobs are already queued or running."""

    http_status = 503
    retry_after_s = 60


class Refused(DreamloomError):
    """A request we answer with `status` and a one-line `reason`."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class ActorUnavailable(DreamloomError):
    """The actor could not be fetched, or its document is not a usable actor."""


class Skip(DreamloomError):
    """Nothing to do for this inbox activity (an unknown actor's Delete, a vanished object)."""
