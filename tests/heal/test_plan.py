"""What a host needs for self-healing, as data: the watcher's install step, when it is needed,
and that the Slack webhook travels on stdin only."""

from __future__ import annotations

from pathlib import Path

import pytest

from fabfile.config import Config
from fabfile.errors import UserError
from fabfile.heal import plan, scripts
from fabfile.heal.facts import Watcher
from tests.deploy.factgen import config

HOOK = "https://hooks.slack.example/services/T0/B0/secretpart"


def cfg_with(tmp: Path, **healthcheck: object) -> Config:
    return config("unit", tmp, {"app": {"healthcheck": healthcheck}} if healthcheck else None)


def test_the_defaults_fit_the_30_second_target(tmp_path: Path) -> None:
    """Detection of a hang ((interval + timeout) x retries), restart_after, the stop, the first
    passing check and Traefik's 2 s throttle, with the shipped defaults."""
    hc = config("unit", tmp_path, {"app": {"healthcheck": {
        "interval": 2, "timeout": 2, "retries": 3}}}).app.healthcheck
    worst = ((hc.interval + hc.timeout) * hc.retries + hc.restart_after + 1 + hc.restart_grace
             + hc.interval + 2.0)
    assert (hc.restart_after, hc.restart_grace, hc.max_restarts, hc.restart_window) == (
        5, 3, 3, 600)
    assert hc.self_heal and worst < 30


def test_install_step_passes_every_value_as_an_argument(tmp_path: Path) -> None:
    cfg = cfg_with(tmp_path, restart_after=7)
    step = plan.install_step(cfg)
    assert step.argv[:3] == ("sh", "-c", scripts.body("install"))
    assert step.argv[4:9] == ("install", "/srv/unit", plan.fingerprint(cfg),
                              scripts.body("watch"), scripts.body("ensure"))
    assert step.argv[9:] == ("/srv/unit", "unit", "web", "unit", "/tmp/drain", "7", "3", "3",
                             "600", str(plan.SWEEP_SECONDS), "60")
    assert step.stdin == b""


def test_the_webhook_goes_on_stdin_never_on_the_command_line(tmp_path: Path) -> None:
    cfg = config("unit", tmp_path, {"notifications": {"slack_webhook": {"secret": "HOOK"}}},
                 secrets={"HOOK": HOOK})
    step = plan.install_step(cfg)
    assert step.stdin == HOOK.encode()
    assert not any(HOOK in arg or "secretpart" in arg for arg in step.argv)
    assert plan.fingerprint(cfg) != plan.fingerprint(cfg_with(tmp_path))


def test_a_webhook_with_quotes_or_spaces_is_refused(tmp_path: Path) -> None:
    cfg = config("unit", tmp_path, {"notifications": {"slack_webhook": {"secret": "HOOK"}}},
                 secrets={"HOOK": 'https://hooks.example/a"b'})
    with pytest.raises(UserError, match="quote, a backslash or whitespace"):
        plan.install_step(cfg)


def test_the_fingerprint_follows_the_settings(tmp_path: Path) -> None:
    base = plan.fingerprint(cfg_with(tmp_path))
    assert plan.fingerprint(cfg_with(tmp_path)) == base
    for change in ({"restart_after": 9}, {"restart_grace": 9}, {"max_restarts": 9},
                   {"restart_window": 60}):
        assert plan.fingerprint(cfg_with(tmp_path, **change)) != base, change


@pytest.mark.parametrize(("self_heal", "watcher", "expected"), [
    (True, "current", None),
    (True, None, "install"),
    (True, "stopped", "install"),
    (True, "other", "install"),
    (False, None, None),
    (False, "current", "remove"),
], ids=["running", "missing", "stopped", "outdated", "off", "switched-off"])
def test_needed_only_when_the_host_differs(tmp_path: Path, self_heal: bool,
                                          watcher: str | None, expected: str | None) -> None:
    cfg = cfg_with(tmp_path, self_heal=self_heal)
    found = None if watcher is None else Watcher(
        "0" * 16 if watcher == "other" else plan.fingerprint(cfg_with(tmp_path)),
        watcher != "stopped", "cron")
    step = plan.needed(cfg, found)
    assert (step.argv[4] if step else None) == expected
