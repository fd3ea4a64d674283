"""Root task `doctor`: the preflight of an environment (see `fabfile.checks.doctor`)."""

from __future__ import annotations

import json as _json
from typing import TYPE_CHECKING

from invoke.context import Context
from invoke.tasks import task

from fabfile.errors import UserError
from fabfile.tasks._adapter import friendly
from fabfile.tasks.config import ENV_HELP

if TYPE_CHECKING:
    from fabfile.checks import doctor as checks

# `fabfile.checks.doctor` (with the transports it probes through), rich and the configuration
# loader are imported inside the task; `--only`'s help spells out `checks.CHECK_NAMES`.
STYLE = {"ok": "[green]ok  [/]", "fail": "[red]FAIL[/]", "skip": "[yellow]skip[/]"}


def parse_only(value: str) -> tuple[str, ...]:
    from fabfile.checks import doctor as checks

    if not value:
        return checks.CHECK_NAMES
    names = tuple(part.strip() for part in value.split(",") if part.strip())
    unknown = [n for n in names if n not in checks.CHECK_NAMES]
    if unknown or not names:
        raise UserError(f"--only takes check names from: {', '.join(checks.CHECK_NAMES)} "
                        f"(got {', '.join(unknown) or 'nothing'})")
    return names


def print_results(results: list[checks.Result]) -> None:
    from rich.markup import escape

    from fabfile import ui
    from fabfile.config.secrets import redact

    name_width = max((len(r.check) for r in results), default=0)
    target_width = max((len(r.target) for r in results), default=0)
    for r in results:
        line = (f"{STYLE[r.status]}  {r.check:<{name_width}}  {r.target:<{target_width}}  "
                f"{escape(redact(r.detail))}")
        ui.console.print(line)
        if r.fix:
            pad = " " * (4 + 2 + name_width + 2 + target_width + 2)
            ui.console.print(f"{pad}[bold]fix:[/] {escape(redact(r.fix))}")


@task(help={
    "env": ENV_HELP,
    "only": "comma-separated checks to run: ssh, docker, compose, swarm, disk, ports, dns, "
            "database, bucket, backup-age, certificates",
    "ca_file": "PEM file of extra CAs to trust for the certificate check "
               "(default: the environment's checks.ca_file)",
    "timeout": "seconds to wait for each TLS handshake",
    "json": "print the results as JSON (one object per check and target)",
})
@friendly
def doctor(c: Context, env: str, only: str = "", ca_file: str = "", timeout: int = 10,
           json: bool = False) -> None:
    """Preflight an environment: SSH, Docker, disk, ports, DNS, database, bucket, backups, certs."""
    from fabfile import ui
    from fabfile.checks import doctor as checks
    from fabfile.config import load_config

    selected = parse_only(only)
    if timeout <= 0:
        raise UserError("--timeout must be at least 1 second")
    cfg = load_config(env)
    if not json:
        ui.step(f"checking {cfg.project}/{env}: {len(cfg.hosts)} host(s), "
                f"{len(cfg.domains)} domain(s)")
    results = checks.run(cfg, selected=selected, ca_file=ca_file or None, timeout=timeout)
    failed = [r for r in results if r.status == "fail"]
    if json:
        print(_json.dumps([r.as_dict() for r in results], indent=2))
    else:
        print_results(results)
        counts = {s: sum(r.status == s for r in results) for s in ("ok", "fail", "skip")}
        ui.console.print(f"{counts['ok']} ok, {counts['fail']} failed, {counts['skip']} skipped")
    if failed:
        names = sorted({r.check for r in failed}, key=checks.CHECK_NAMES.index)
        raise UserError(f"{len(failed)} check(s) failed: {', '.join(names)}")
