"""How `inv status` shows self-healing: the watcher's line and each container's restarts."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from fabfile.deploy import facts, show
from fabfile.heal import plan
from fabfile.heal.facts import Restarts, Watcher
from fabfile.ui import console
from tests.deploy.factgen import config, report

V1 = "20240101T000000Z-v1"


def test_the_watcher_line_says_what_to_do(tmp_path: Path) -> None:
    cfg = config("unit", tmp_path)
    current = plan.fingerprint(cfg)

    def line(watcher: Watcher | None) -> str:
        return show.watcher_line(cfg, facts.Facts(watcher=watcher))

    assert line(Watcher(current, True, "cron")) == (
        "watching (cron): restarts a web container 5s after it turns unhealthy, at most 3 "
        "times in 600s")
    assert "nothing restarts it after a reboot" in line(Watcher(current, True, "none"))
    assert line(None) == "NOT INSTALLED: run `inv setup --env=unit`"
    assert line(Watcher(current, False, "cron")).startswith("installed but NOT RUNNING")
    assert line(Watcher("0" * 16, True, "cron")).startswith("running with other settings")
    off = config("unit", tmp_path, {"app": {"healthcheck": {"self_heal": False}}})
    assert show.watcher_line(off, facts.Facts()) == "off (app.healthcheck.self_heal: false)"


def test_status_shows_restarts_and_the_last_health_restart(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console, "width", 220)
    cfg = config("unit", tmp_path)
    text = report(cfg, {"current": {"release": V1, "tag": "v1"}, "releases": {V1: "live"},
                        "containers": [{"id": "c1", "tag": "v1", "release": V1,
                                        "health": "unhealthy"},
                                       {"id": "c2", "tag": "v1", "release": V1}]}, tmp_path)
    found = dataclasses.replace(facts.parse(text), restarts={
        "c1": Restarts(crashes=1, health=2, last_health="2024-05-01T10:00:00Z", gave_up=True)})
    with console.capture() as captured:
        show.show_status(cfg, "deploy@203.0.113.10:22", found)
    out = captured.get()
    row = next(line for line in out.splitlines() if "unit-web-1" in line)
    assert "unhealthy (watcher gave up)" in row
    assert "3 (1 crash, 2 health)" in row and "2024-05-01T10:00:00Z" in row
    other = next(line for line in out.splitlines() if "unit-web-2" in line)
    assert "│ 0 " in other and " - " in other
    assert "self-healing: watching (cron)" in out
