"""The `dreamloom` command. Commands parse options, call plain async functions, print.

Every command finds its instance through --dir PATH, else DREAMLOOM_CONFIG, else ./config.toml.
Errors a person can fix are one line on stderr and a non-zero exit, never a traceback.

    common.py    the Typer apps, consoles, options, error handling, runtimes
    server.py    init, serve, db upgrade
    accounts.py  account create, list, show, set
    account_admin.py  account suspend, unsuspend, delete, password, rotate-key, avatar
    generate.py  generate, post, queue, bench generate
    social.py    follow, like, boost, remix, delete, timeline, notifications, ...
    admin.py     pin, unpin, reports
    bench.py     bench inbox, fanout, timeline
    federation.py  domain block/silence/..., deliveries status/retry/purge, remote refresh
    generator_admin.py  queue cancel, generator pause/resume/status
    maintenance.py  media prune, backup, restore, doctor
    model_admin.py  model info, fetch, warmup; the first-start model fetch
"""

from instance.cli import (
    account_admin,
    accounts,
    admin,
    bench,
    federation,
    generate,
    generator_admin,
    maintenance,
    model_admin,
    server,
    social,
)
from instance.cli.common import app, entry_point

# each adds its commands
COMMAND_MODULES = (
    account_admin,
    accounts,
    admin,
    bench,
    federation,
    generate,
    generator_admin,
    maintenance,
    model_admin,
    server,
    social,
)


def main() -> None:
    entry_point()  # one error line for any unexpected exception


__all__ = ["COMMAND_MODULES", "app", "main"]
