"""The shell scripts the Swarm engine runs on hosts (`scripts/*.sh`, package data), read by
the one loader, `fabfile.shell`.

Each runs as `sh -c BODY NAME ARG...`, every value a positional argument. `entrypoint.sh` is
not run here: it ships in the release and runs as the app tasks' PID 1.
"""

from __future__ import annotations

from collections.abc import Sequence

from fabfile import shell
from fabfile.deploy import scripts as deploy_scripts
from fabfile.remote import Step, script

SCRIPTS = shell.Scripts("fabfile.swarm", {name: () for name in (
    "facts", "gather", "node", "init", "join", "manager", "secrets", "migrate", "stack", "logs",
    "entrypoint")})
NAMES = SCRIPTS.names
body = SCRIPTS.body
step = SCRIPTS.step


def phase(title: str, lock: deploy_scripts.PhaseLock, name: str, *args: str,
          timeout: float | None = None) -> Step:
    """A step running `scripts/<name>.sh` detached from the connection (the deploy's
    `phase.sh`, only while `lock.token` holds the lock, with its heartbeat), so a dropped
    connection or an interrupt cannot stop it halfway."""
    return script(title, deploy_scripts.body("phase"), lock.path, lock.token, str(lock.beat),
                  name, body(name), *args, timeout=timeout)


def shown(argv: Sequence[str]) -> list[str]:
    """`argv` with every script body (this engine's and the deploy's) as `<name.sh>`."""
    return SCRIPTS.shown(deploy_scripts.shown(argv))
