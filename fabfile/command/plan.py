"""The two commands of `inv exec`, as argv lists: one round trip that checks the host and
writes the audit line (`scripts/prepare.sh`), then the command itself.

The command never holds a secret: a one-off container gets the release's env file from its
Compose file (`env_file: app.env`, read by Docker on the host), a running container already
has its environment. Traefik must never route to a one-off container (label override).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import Literal

from fabfile.config import Config
from fabfile.deploy import audit
from fabfile.remote import Step
from fabfile.shell import Scripts

Mode = Literal["run", "reuse"]
SCRIPTS = Scripts("fabfile.command", {"prepare": ()})


def audit_line(cfg: Config, who: str, host: str, mode: Mode, command: Sequence[str]) -> str:
    where = "a running web container" if mode == "reuse" else "a one-off container"
    return audit.record(action="exec", result="started", env=cfg.env, who=who,
                        message=f"on {host}, in {where}: {shlex.join(command)}")


def prepare_step(cfg: Config, mode: Mode, line: str) -> Step:
    return SCRIPTS.step("check the host, write the audit line", "prepare", cfg.deploy.app_dir,
                        cfg.project, cfg.app.name, mode, line, timeout=60)


def argv(cfg: Config, mode: Mode, command: Sequence[str], *, tty: bool,
         container: str = "") -> tuple[str, ...]:
    """The command: `docker compose run` of the current release, or `docker exec` into
    `container`; with `tty`, a terminal (and stdin) attached."""
    if mode == "reuse":
        return ("docker", "exec", *(("-it",) if tty else ("-i",)), container, *command)
    return ("docker", "compose", "-f", f"{cfg.deploy.app_dir}/current/compose.yml", "run",
            "--rm", "--no-deps", *(() if tty else ("-T",)), "-l", "traefik.enable=false",
            cfg.app.name, *command)
