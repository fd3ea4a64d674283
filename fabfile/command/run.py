"""Run `inv exec` on one host: check it and write the audit line (one round trip), then the
command with this terminal attached. Returns the command's exit code."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence

from fabfile.config import Config, Host
from fabfile.config.secrets import redact
from fabfile.deploy import facts, rollout
from fabfile.deploy.lock import operator
from fabfile.errors import UserError
from fabfile.remote import connect

from . import plan


def pick_host(cfg: Config, address: str) -> Host:
    """The host `--host` names (its address), or the environment's first."""
    if not address:
        return cfg.hosts[0]
    for host in cfg.hosts:
        if host.address == address:
            return host
    raise UserError(f"--host={address}: not a host of {cfg.env} "
                    f"({', '.join(h.address for h in cfg.hosts)})")


def run(cfg: Config, host: Host, command: Sequence[str], *, tty: bool, reuse: bool) -> int:
    """Check the host, audit, run `command`; its exit code."""
    mode: plan.Mode = "reuse" if reuse else "run"
    t = connect(host)
    try:
        line = plan.audit_line(cfg, operator(), host.label, mode, command)
        result = t.probe(plan.prepare_step(cfg, mode, line))
        m = rollout.markers(result.stdout)
        if not result.ok or "ready" not in m:
            raise UserError(_explain(cfg, host, m, result.stderr))
        where = (f"running container {m['container'][-1][:12]}" if reuse
                 else f"a one-off container of release {m['current'][-1]}")
        print(redact(f"{host.label}: {shlex.join(command)} in {where}"), file=sys.stderr,
              flush=True)
        argv = plan.argv(cfg, mode, command, tty=tty, container=m.get("container", [""])[-1])
        return t.interact(argv, tty=tty, sink=_print)
    finally:
        t.close()


def _print(text: str) -> None:
    sys.stdout.write(redact(text))
    sys.stdout.flush()


def _explain(cfg: Config, host: Host, m: dict[str, list[str]], stderr: str) -> str:
    detail = m.get("error", [""])[-1]
    if detail == "no-current":
        return (f"nothing is deployed on {host.label} yet (no current release under "
                f"{cfg.deploy.app_dir}): deploy first (`inv deploy --env={cfg.env}`)")
    if detail == "no-web":
        return (f"no {cfg.app.name} container is running on {host.label} to --reuse: run "
                "without --reuse (a one-off container of the current release), or deploy")
    if detail.startswith("docker"):
        found = facts.Facts(docker_error=detail.removeprefix("docker").strip() or "no output")
        user = host.user if host.transport == "ssh" else "this user"
        return facts.docker_problem(found, host.label, user) or detail
    return f"cannot run the command on {host.label}: {detail or stderr.strip()[-300:]}"
