"""The Slack alert of a failed check: ONE message per run, naming the failed checks, with
each failure and its fix (`certs.check`, `backup.check` and `doctor` share it).

Delivery never changes the check's verdict: the task still fails; a missing webhook or an
undelivered message comes back as a line for the task to print.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fabfile.config import Config


@dataclass(frozen=True)
class Failure:
    """One failed check on one target: `what` says where and why, `fix` what to do."""

    check: str
    what: str
    fix: str | None = None


def message(command: str, failures: Sequence[Failure]) -> str:
    """The alert's text: a title naming the failed checks, then a bullet per failure.

    A fix shared by consecutive failures is written once, after the last of them.
    """
    names = list(dict.fromkeys(f.check for f in failures))
    lines = [f"{'Checks' if len(names) > 1 else 'Check'} failed: {', '.join(names)} "
             f"(`{command}`)"]
    for index, failure in enumerate(failures):
        lines.append(f"• {failure.what}")
        following = failures[index + 1].fix if index + 1 < len(failures) else None
        if failure.fix and failure.fix != following:
            lines.append(f"   fix: {failure.fix}")
    return "\n".join(lines)


def send(cfg: Config, command: str, failures: Sequence[Failure]) -> tuple[bool, str]:
    """Post the alert to the environment's webhook: (sent, a line saying what happened)."""
    from fabfile import notify

    hook = cfg.notifications.slack_webhook
    if hook is None or hook.placeholder:
        why = ("no notifications.slack_webhook is configured" if hook is None
               else f"the secret {hook.name} is not set")
        return False, f"no Slack alert sent: {why}"
    problem = notify.send(cfg, message(command, failures), "warning")
    if problem:
        return False, problem
    return True, "alert sent to Slack"
