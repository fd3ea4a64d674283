"""The shell scripts the Swarm engine runs on hosts (`scripts/*.sh`, package data), read once.

Like `fabfile.deploy.scripts`: each runs as `sh -c BODY NAME ARG...`, every value a
positional argument. `entrypoint.sh` is not run here: it ships in the release and runs as the
app tasks' PID 1.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from fabfile.deploy import scripts as deploy_scripts
from fabfile.remote import Step, script

NAMES = ("facts", "gather", "node", "init", "join", "manager", "secrets", "migrate", "stack",
         "logs", "entrypoint")


@cache
def body(name: str) -> str:
    """The text of `scripts/<name>.sh`."""
    if name not in NAMES:
        raise KeyError(name)
    return resources.files(__package__).joinpath("scripts", f"{name}.sh").read_text("utf-8")


def step(title: str, name: str, *args: str, stdin: bytes | None = None,
         timeout: float | None = None, check: bool = True) -> Step:
    """A step running `scripts/<name>.sh` with `args`."""
    return script(title, body(name), *args, stdin=stdin, timeout=timeout, check=check)


def phase(title: str, lock_dir: str, name: str, *args: str, timeout: float | None = None) -> Step:
    """A step running `scripts/<name>.sh` detached from the connection (the deploy's
    `phase.sh`), so a dropped connection or an interrupt cannot stop it halfway."""
    return script(title, deploy_scripts.body("phase"), lock_dir, name, body(name), *args,
                  timeout=timeout)


def shown(argv: tuple[str, ...] | list[str]) -> list[str]:
    """`argv` with every script body (this engine's and the deploy's) as `<name.sh>`."""
    names = {body(n): f"<{n}.sh>" for n in NAMES}
    return [names.get(arg, arg) for arg in deploy_scripts.shown(argv)]
