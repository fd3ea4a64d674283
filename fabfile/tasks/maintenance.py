"""`maintenance` namespace: put the site behind the maintenance page on purpose, and back."""

from __future__ import annotations

from invoke.collection import Collection
from invoke.context import Context
from invoke.tasks import task

from fabfile.tasks._adapter import friendly
from fabfile.tasks.config import ENV_HELP
from fabfile.tasks.deploy import LOCK_WAIT_HELP, lock_wait_seconds

# `fabfile.maintenance` (with `fabfile.remote`: paramiko) and the configuration loader are
# imported inside the tasks, only when they run. The page needs no secret but the Slack
# webhook: missing ones load as placeholders (never used).


@task(help={
    "env": ENV_HELP,
    "message": "what the page says (default: maintenance.message of the environment)",
    "lock_wait": LOCK_WAIT_HELP,
})
@friendly
def on(c: Context, env: str, message: str | None = None, lock_wait: int = 0) -> None:
    """Serve the maintenance page (503, Retry-After) for every domain."""
    from fabfile.config import load_config
    from fabfile.maintenance import run

    text = run.check_message(message)
    run.turn_on(load_config(env, placeholder_secrets=True), text, lock_wait_seconds(lock_wait))


@task(help={"env": ENV_HELP, "lock_wait": LOCK_WAIT_HELP})
@friendly
def off(c: Context, env: str, lock_wait: int = 0) -> None:
    """Take the maintenance page down; the app serves again."""
    from fabfile.config import load_config
    from fabfile.maintenance import run

    run.turn_off(load_config(env, placeholder_secrets=True), lock_wait_seconds(lock_wait))


namespace = Collection("maintenance")
namespace.add_task(on, name="on")
namespace.add_task(off, name="off")
