"""`certs` namespace: the TLS certificates the environment's domains serve."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from invoke.collection import Collection
from invoke.context import Context
from invoke.tasks import task

from fabfile.errors import UserError
from fabfile.tasks._adapter import friendly
from fabfile.tasks.config import ENV_HELP

if TYPE_CHECKING:
    from fabfile.checks import certs
    from fabfile.config import Config

# `fabfile.checks.certs` (cryptography), `fabfile.checks.alert` (httpx) and `fabfile.ui` (rich)
# are imported where used, so that only `inv certs.check` loads them.
DEFAULT_WARN_DAYS = 15


def parse_days(value: str | None, fallback: int) -> int:
    if value is None or value == "":
        return fallback
    try:
        days = int(value)
    except ValueError:
        raise UserError(f"--warn-days expects a whole number of days, got {value!r}") from None
    if days < 0:
        raise UserError("--warn-days cannot be negative")
    return days


def endpoints_for(cfg: Config | None, url: str, connect: str) -> list[certs.Endpoint]:
    from fabfile.checks import certs

    if url:
        return [certs.parse_url(url)]
    assert cfg is not None
    if not cfg.domains:
        raise UserError(f"environment {cfg.env!r} has no domains to check")
    if connect:
        address, port = certs.parse_connect(connect)
        return [certs.Endpoint(domain, address, port) for domain in cfg.domains]
    if not cfg.traefik.enabled:
        raise UserError(f"Traefik is disabled in {cfg.env!r}, so its hosts serve no "
                        "certificates: name the server with --connect=HOST[:PORT]")
    return [endpoint for host in cfg.hosts
            for endpoint in certs.on_host(cfg.domains, host.address)]


@task(help={
    "env": ENV_HELP + "; checks each of its domains on each of its hosts (and alerts its "
                      "Slack webhook on failure)",
    "url": "check one endpoint instead: https://HOST[:PORT]",
    "warn_days": "fail when fewer days are left (default: the environment's "
                 f"checks.cert_warn_days, else {DEFAULT_WARN_DAYS})",
    "connect": "dial HOST[:PORT] for every domain instead of each host's address on 443 (as "
               "curl's --connect-to); the domain is still sent as SNI and verified",
    "ca_file": "PEM file of extra CAs to trust, e.g. a private or staging CA "
               "(default: the environment's checks.ca_file)",
    "timeout": "seconds to wait for each handshake",
})
@friendly
def check(c: Context, env: str = "", url: str = "", warn_days: str | None = None,
          connect: str = "", ca_file: str = "", timeout: int = 10) -> None:
    """Check the TLS certificate of each domain on each host: trust, hostname, days left."""
    from rich.markup import escape

    from fabfile import ui
    from fabfile.checks import alert, certs
    from fabfile.config import load_config

    if not env and not url:
        raise UserError("give --env=ENV to check its domains, or --url=https://HOST[:PORT]")
    if url and connect:
        raise UserError("--connect applies to an environment's domains; --url names its own")
    if timeout <= 0:
        raise UserError("--timeout must be at least 1 second")
    cfg = load_config(env, placeholder_secrets=True) if env else None
    days = parse_days(warn_days, cfg.checks.cert_warn_days if cfg else DEFAULT_WARN_DAYS)
    targets = endpoints_for(cfg, url, connect)
    reports = certs.probe_all(targets, ca_file=ca_file or (cfg.checks.ca_file if cfg else None),
                              timeout=timeout)
    now = datetime.now(UTC)
    rows = []
    failed: list[alert.Failure] = []
    for report in reports:
        problems = certs.assess(report, days, now)
        left = report.days_left(now)
        rows.append([
            report.endpoint.label,
            report.issuer or "-",
            report.not_after.strftime("%Y-%m-%d %H:%M UTC") if report.not_after else "-",
            "-" if left is None else str(left),
            "ok" if not problems else "FAILED",
        ])
        if problems:
            failed.append(alert.Failure("certificates",
                                        f"{report.endpoint.label}: {'; '.join(problems)}",
                                        certs.fix(report)))
    title = f"certificates of {cfg.env}" if cfg else "certificate"
    ui.console.print(ui.table(f"{title} (fail below {days} days)",
                              ["endpoint", "issuer", "expires", "days left", "result"], rows))
    for failure in failed:
        ui.fail(failure.what)
    for fix in dict.fromkeys(f.fix for f in failed if f.fix):
        ui.console.print(f"  [bold]fix:[/] {escape(fix)}")
    if not failed:
        ui.ok(f"{len(reports)} certificate(s) valid for at least {days} more days")
        return
    if cfg is not None:
        sent, note = alert.send(cfg, f"inv certs.check --env={cfg.env}", failed)
        (ui.step if sent else ui.warn)(note)
    raise UserError(f"{len(failed)} of {len(reports)} certificate(s) failed the check:\n  "
                    + "\n  ".join(f.what for f in failed))


namespace = Collection("certs")
namespace.add_task(check, name="check")
