"""What a host needs for self-healing, decided purely from the config and its facts.

The watcher is installed with one command (`install.sh`) whose inputs are fingerprinted: a
host whose watcher runs with the same fingerprint needs nothing, so a no-change deploy
stays at two commands. The Slack webhook travels on stdin (never on a command line) into a
mode-600 file on the host, so the watcher can alert from there.
"""

from __future__ import annotations

import hashlib

from fabfile.config import Config
from fabfile.errors import UserError
from fabfile.remote import Step, script

from . import scripts
from .facts import Watcher

SWEEP_SECONDS = 15
"""How often the watcher lists the web containers to catch what Docker's events missed."""


def watcher_args(cfg: Config) -> tuple[str, ...]:
    """`watch.sh`'s arguments (see its usage line)."""
    hc = cfg.app.healthcheck
    return (cfg.deploy.app_dir, cfg.project, cfg.app.name, cfg.env, cfg.app.drain_file,
            str(hc.restart_after), str(hc.restart_grace), str(hc.max_restarts),
            str(hc.restart_window), str(SWEEP_SECONDS), str(cfg.deploy.lock_stale_after))


def webhook(cfg: Config) -> str:
    """The Slack webhook URL the watcher alerts (empty: none configured or set)."""
    hook = cfg.notifications.slack_webhook
    if hook is None or hook.placeholder:
        return ""
    url = hook.reveal().strip()
    if any(c in url for c in '"\\\n\r\t '):
        raise UserError(f"notifications.slack_webhook: the URL in {hook.name} holds a quote, a "
                        "backslash or whitespace; a Slack webhook URL has none: check the secret")
    return url


def fingerprint(cfg: Config) -> str:
    """Changes whenever the installed watcher would behave differently."""
    parts = (scripts.body("watch"), scripts.body("ensure"), *watcher_args(cfg), webhook(cfg))
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def install_step(cfg: Config) -> Step:
    return script("self-healing watcher: install and start", scripts.body("install"), "install",
                  cfg.deploy.app_dir, fingerprint(cfg), scripts.body("watch"),
                  scripts.body("ensure"), *watcher_args(cfg), stdin=webhook(cfg).encode(),
                  timeout=60)


def remove_step(app_dir: str) -> Step:
    """Stop the watcher of the app in `app_dir` and remove it with its unit or crontab line."""
    return script("self-healing watcher: stop and remove", scripts.body("install"), "remove",
                  app_dir, "", "", "", timeout=60)


def needed(cfg: Config, watcher: Watcher | None) -> Step | None:
    """The step that brings the host's watcher to the config, or None when it is there."""
    if not cfg.app.healthcheck.self_heal:
        return remove_step(cfg.deploy.app_dir) if watcher is not None else None
    if watcher is not None and watcher.running and watcher.fingerprint == fingerprint(cfg):
        return None
    return install_step(cfg)
