"""`inv logs` on a swarm: `docker service logs` through the control manager, which gathers
them from every node; secrets redacted, terminal escapes stripped."""

from __future__ import annotations

from collections.abc import Callable

from fabfile import ui
from fabfile.config import Config
from fabfile.config.secrets import redact
from fabfile.errors import UserError
from fabfile.remote import connect

from . import scripts
from .topology import control


def logs(cfg: Config, *, service: str, since: str, tail: int, follow: bool, host: str,
         clean: Callable[[str], str]) -> None:
    manager = control(cfg)
    if host and host != manager.address:
        raise UserError(f"--host={host}: on a swarm, logs of every node come through the first "
                        f"manager ({manager.address}); leave --host out")
    lines = str(tail) if tail > 0 else "all"
    t = connect(manager)
    try:
        if follow:
            name = f"{cfg.project}_{service or cfg.app.name}"
            argv = ["docker", "service", "logs", "--no-task-ids", "--timestamps", "--tail",
                    lines, "--follow", *(["--since", since] if since else []), name]
            t.stream(argv, sink=lambda text: print(clean(text), end="", flush=True))
            return
        result = t.probe(scripts.step("service logs", "logs", cfg.project, lines, since,
                                      *([service] if service else []), timeout=120))
    finally:
        t.close()
    if "@error nothing-deployed" in result.stdout:
        raise UserError(f"nothing is deployed on the swarm of {cfg.env} yet (no services)")
    for line in result.stdout.splitlines():
        if line.startswith("@service "):
            ui.console.rule(line.removeprefix("@service "))
        else:
            print(clean(line))
    if not result.ok:
        raise UserError(f"logs on {manager.label} failed: {redact(result.stderr.strip()[-400:])}")
