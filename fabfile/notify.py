"""Slack notifications through an incoming webhook (the environment's `notifications`).

A notification never breaks the operation it reports on: delivery problems come back as a
string for the caller to print as a warning.
"""

from __future__ import annotations

from typing import Literal

import httpx

from fabfile.config import Config
from fabfile.config.secrets import redact

Level = Literal["info", "success", "warning", "failure"]
ICONS: dict[Level, str] = {"info": ":information_source:", "success": ":white_check_mark:",
                           "warning": ":warning:", "failure": ":rotating_light:"}


def payload(cfg: Config, text: str, level: Level) -> dict[str, str]:
    """The JSON body Slack's incoming webhooks take; the text is redacted of every secret."""
    return {"text": redact(f"{ICONS[level]} [{cfg.project}/{cfg.env}] {text}")}


def send(cfg: Config, text: str, level: Level = "info", *, timeout: float = 10.0) -> str | None:
    """Post to Slack when a webhook is configured. Returns None when sent (or not configured),
    else a description of why delivery failed."""
    hook = cfg.notifications.slack_webhook
    if hook is None or hook.placeholder:
        return None
    where = _webhook_host(hook.reveal())
    try:
        response = httpx.post(hook.reveal(), json=payload(cfg, text, level), timeout=timeout)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return redact(f"Slack notification not delivered: {type(exc).__name__} "
                      f"reaching {where}")
    if response.status_code >= 300:
        body = " ".join(response.text.split())[:200]
        return redact(f"Slack notification not delivered: HTTP {response.status_code} "
                      f"from {where}" + (f": {body}" if body else ""))
    return None


def _webhook_host(url: str) -> str:
    """The webhook's host (its path is the secret part), for messages."""
    try:
        return httpx.URL(url).host or "the webhook"
    except (httpx.InvalidURL, TypeError):
        return "the webhook (an invalid URL)"
