"""`notify` namespace: the environment's Slack webhook, tested or used from CI."""

from __future__ import annotations

import getpass
import socket
from typing import TYPE_CHECKING, get_args

from invoke.collection import Collection
from invoke.context import Context
from invoke.tasks import task

from fabfile.errors import UserError
from fabfile.tasks._adapter import friendly
from fabfile.tasks.config import ENV_HELP

if TYPE_CHECKING:
    from fabfile.config import Config

# `fabfile.notify` (httpx), `fabfile.ui` (rich) and the configuration loader are imported inside
# the tasks; `--level`'s help spells out the levels of `fabfile.notify.Level`.


def _webhook_config(env: str) -> Config:
    """The environment with only the secrets it has; the webhook's own absence is an error."""
    from fabfile.config import load_config

    cfg = load_config(env, placeholder_secrets=True)
    hook = cfg.notifications.slack_webhook
    if hook is None:
        raise UserError(f"environment {env!r} has no Slack webhook: add notifications: "
                        "{slack_webhook: {secret: SLACK_WEBHOOK_URL}} to its YAML")
    if hook.placeholder:
        raise UserError(f"the secret {hook.name} (the Slack webhook of {env!r}) is not set: "
                        f"export it or add it to .env.{env}")
    return cfg


@task(name="test", help={
    "env": ENV_HELP,
    "message": "text to send instead of the standard test message",
})
@friendly
def send_test(c: Context, env: str, message: str = "") -> None:
    """Send a test message to the environment's Slack webhook; fail if it is not delivered."""
    from fabfile import notify, ui

    cfg = _webhook_config(env)
    text = message or (f"Test message from `inv notify.test`, sent by {getpass.getuser()} "
                       f"on {socket.gethostname()}: notifications for this environment work.")
    problem = notify.send(cfg, text, "info")
    if problem:
        raise UserError(f"{problem}. Check the secret {_hook_name(cfg)}: it must be the "
                        "Slack incoming-webhook URL (https://hooks.slack.com/services/...)")
    ui.ok(f"test message delivered to the Slack webhook in {_hook_name(cfg)}")


@task(help={
    "env": ENV_HELP,
    "message": "the text to post",
    "level": "one of info, success, warning, failure (sets the icon)",
})
@friendly
def send(c: Context, env: str, message: str, level: str = "info") -> None:
    """Post a message to the environment's Slack webhook (CI uses it to report runs)."""
    from fabfile import notify, ui
    from fabfile.config import load_config

    levels: tuple[notify.Level, ...] = get_args(notify.Level)
    if level not in levels:
        raise UserError(f"--level must be one of {', '.join(levels)}, got {level!r}")
    if not message.strip():
        raise UserError("--message is empty")
    cfg = load_config(env, placeholder_secrets=True)
    hook = cfg.notifications.slack_webhook
    if hook is None or hook.placeholder:
        ui.warn(f"nothing sent: environment {env!r} has no Slack webhook set")
        return
    problem = notify.send(cfg, message, level)
    if problem:
        raise UserError(problem)
    ui.ok("posted to Slack")


def _hook_name(cfg: Config) -> str:
    hook = cfg.notifications.slack_webhook
    return hook.name if hook is not None else "-"


namespace = Collection("notify")
namespace.add_task(send_test, name="test")
namespace.add_task(send, name="send")
