"""Bring a host's self-healing watcher to the config (`inv setup`, `inv deploy`): one command
when it is missing, stopped or outdated, none otherwise; the outcome as one line."""

from __future__ import annotations

from dataclasses import dataclass

from fabfile.config import Config
from fabfile.deploy.rollout import markers
from fabfile.errors import UserError
from fabfile.remote import Transport

from . import plan
from .facts import Watcher


@dataclass(frozen=True)
class Outcome:
    """What happened to the watcher on one host; `warning` when it needs the operator."""

    text: str
    warning: bool = False


def ensure(cfg: Config, t: Transport, watcher: Watcher | None) -> Outcome | None:
    """Install, restart or remove the watcher on `t` as needed; None when nothing was."""
    user = t.host.user if t.host.transport == "ssh" else "this user"
    try:
        step = plan.needed(cfg, watcher)
        if step is None:
            return None
        result = t.probe(step)
    except UserError as exc:
        return Outcome(f"self-healing watcher not installed: {exc.message}", warning=True)
    m = markers(result.stdout)
    if "removed" in m:
        return Outcome("self-healing watcher removed (app.healthcheck.self_heal is false)")
    error = (m.get("error") or [""])[-1]
    if not result.ok or error:
        if error.startswith("missing"):
            tool = error.split()[-1]
            why = (f"`{tool}` (util-linux) is missing on the host: install util-linux, then "
                   "run `inv setup` again")
        else:
            why = f"{error or result.stderr.strip()[-300:] or 'no output'}"
        return Outcome(f"self-healing watcher NOT running: {why}", warning=True)
    supervisor = (m.get("supervisor") or ["none"])[-1]
    how = {"systemd": "a systemd user unit restarts it and starts it at boot",
           "cron": "cron checks on it every minute, reboots included"}.get(supervisor)
    if how is None:
        return Outcome(
            "self-healing watcher running, but nothing will start it again after a reboot "
            "(no crontab command, no lingering systemd user instance): install cron "
            f"(`apt-get install cron`) or run `sudo loginctl enable-linger {user}`, then "
            "`inv setup` again", warning=True)
    return Outcome(f"self-healing watcher running ({how})")
