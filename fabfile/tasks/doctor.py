"""Root task `doctor`: the preflight of an environment (see `fabfile.checks.doctor`)."""

from __future__ import annotations

import json as _json
import sys
from typing import TYPE_CHECKING

from invoke.context import Context
from invoke.tasks import task

from fabfile.errors import UserError
from fabfile.tasks._adapter import friendly
from fabfile.tasks.config import ENV_HELP

if TYPE_CHECKING:
    from fabfile.checks import doctor as checks
    from fabfile.config import Config

# `fabfile.checks.doctor` (with the transports it probes through), rich and the configuration
# loader are imported inside the task; `--only`'s help spells out `checks.CHECK_NAMES`.
# Secrets the environment names but the shell does not set load as placeholders: the checks
# that need one fail naming it (`fabfile.checks.doctor`), the others still run.
STYLE = {"ok": "[green]ok  [/]", "fail": "[red]FAIL[/]", "skip": "[yellow]skip[/]"}


def parse_checks(value: str, option: str) -> tuple[str, ...]:
    """Check names from a comma-separated `--only`/`--skip` value, each one known."""
    from fabfile.checks import doctor as checks

    names = tuple(part.strip() for part in value.split(",") if part.strip())
    unknown = [n for n in names if n not in checks.CHECK_NAMES]
    if unknown or not names:
        raise UserError(f"--{option} takes check names from: {', '.join(checks.CHECK_NAMES)} "
                        f"(got {', '.join(unknown) or 'nothing'})")
    return names


def select(only: str, skip: str) -> tuple[str, ...]:
    """The checks to run, in their usual order: `--only`'s (default all) minus `--skip`'s."""
    from fabfile.checks import doctor as checks

    wanted = set(parse_checks(only, "only")) if only else set(checks.CHECK_NAMES)
    left_out = set(parse_checks(skip, "skip")) if skip else set()
    selected = tuple(n for n in checks.CHECK_NAMES if n in wanted - left_out)
    if not selected:
        raise UserError("--only and --skip leave no check to run")
    return selected


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


def report(cfg: Config, results: list[checks.Result], *, command: str, json: bool) -> None:
    """Print the results (lines, or JSON on stdout); when any failed, alert Slack once with
    every failure and its fix, then fail naming the failed checks."""
    from fabfile import ui
    from fabfile.checks import alert
    from fabfile.checks import doctor as checks

    failed = [r for r in results if r.status == "fail"]
    if json:
        print(_json.dumps([r.as_dict() for r in results], indent=2))
    else:
        print_results(results)
        counts = {s: sum(r.status == s for r in results) for s in ("ok", "fail", "skip")}
        ui.console.print(f"{counts['ok']} ok, {counts['fail']} failed, {counts['skip']} skipped")
    if not failed:
        return
    sent, note = alert.send(cfg, command, [
        alert.Failure(r.check, f"{r.check} on {r.target}: {r.detail}", r.fix) for r in failed])
    if json:
        print(note, file=sys.stderr)
    else:
        (ui.step if sent else ui.warn)(note)
    names = sorted({r.check for r in failed}, key=checks.CHECK_NAMES.index)
    raise UserError(f"{len(failed)} check(s) failed: {', '.join(names)}")


@task(help={
    "env": ENV_HELP + "; when any check fails, its Slack webhook gets one alert naming them",
    "only": "comma-separated checks to run: ssh, docker, compose, swarm, disk, ports, dns, "
            "healthcheck, database, bucket, registry, backup-age, certificates",
    "skip": "comma-separated checks to leave out (the same names)",
    "ca_file": "PEM file of extra CAs to trust for the certificate check "
               "(default: the environment's checks.ca_file)",
    "timeout": "seconds to wait for each TLS handshake",
    "json": "print the results as JSON (one object per check and target)",
})
@friendly
def doctor(c: Context, env: str, only: str = "", skip: str = "", ca_file: str = "",
           timeout: int = 10, json: bool = False) -> None:
    """Preflight an environment: SSH, Docker, disk, ports, DNS, database, bucket, backups, certs."""
    from fabfile import ui
    from fabfile.checks import doctor as checks
    from fabfile.config import load_config

    selected = select(only, skip)
    if timeout <= 0:
        raise UserError("--timeout must be at least 1 second")
    cfg = load_config(env, placeholder_secrets=True)
    if not json:
        ui.step(f"checking {cfg.project}/{env}: {len(cfg.hosts)} host(s), "
                f"{len(cfg.domains)} domain(s)")
    results = checks.run(cfg, selected=selected, ca_file=ca_file or None, timeout=timeout)
    report(cfg, results, command=f"inv doctor --env={env}", json=json)
