"""The root `remove` task: take the app off its hosts."""

from __future__ import annotations

from invoke.context import Context
from invoke.tasks import task

from fabfile.tasks._adapter import friendly
from fabfile.tasks.config import ENV_HELP

# `fabfile.teardown` (with `fabfile.remote`: paramiko) and the configuration loader are
# imported inside the task, only when it runs.


@task(help={
    "env": ENV_HELP,
    "purge": "also delete acme.json (the certificates), the backup cache and the app's "
             "volumes (its local database!)",
    "yes": "go ahead without asking (needed without a terminal)",
})
@friendly
def remove(c: Context, env: str, purge: bool = False, yes: bool = False) -> None:
    """Remove the app's containers, networks and releases from its hosts."""
    from fabfile.config import load_config
    from fabfile.teardown import run

    run.remove(load_config(env), purge=purge, yes=yes)
