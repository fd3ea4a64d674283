"""The root `exec` task: a command in the app, the way `kamal app exec` runs one."""

from __future__ import annotations

import sys

from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from fabfile.errors import UserError
from fabfile.tasks._adapter import friendly
from fabfile.tasks.config import ENV_HELP

# `fabfile.command` (with `fabfile.remote`: paramiko) and the configuration loader are
# imported inside the task, only when it runs. The command never needs the environment's
# secrets (the release's env file is on the host): missing ones load as placeholders, so a
# CI job needs only the SSH key.


def command_after_dashes(argv: list[str]) -> list[str]:
    """Everything after the first `--`, word for word (Invoke's own remainder is one string
    joined with spaces, which would lose the command's quoting)."""
    if "--" not in argv:
        return []
    return argv[argv.index("--") + 1:]


@task(name="exec", help={
    "env": ENV_HELP,
    "host": "run it on this host (its address; default: the environment's first host)",
    "interactive": "allocate a terminal on the host (a shell, a REPL): keystrokes go through",
    "reuse": "run it in a running web container (docker exec) instead of a one-off container "
             "of the current release",
})
@friendly
def exec_(c: Context, env: str, host: str = "", interactive: bool = False,
          reuse: bool = False) -> None:
    """Run a command in the app: inv exec --env=ENV -- CMD..."""
    from fabfile.command import run
    from fabfile.config import load_config

    command = command_after_dashes(sys.argv)
    if not command:
        raise UserError("no command to run: put it after `--`, e.g. "
                        f"`inv exec --env={env} -- alembic current`")
    cfg = load_config(env, placeholder_secrets=True)
    code = run.run(cfg, run.pick_host(cfg, host), command, tty=interactive, reuse=reuse)
    if code:
        raise Exit(code=code)
