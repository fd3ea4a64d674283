"""The watcher's lines of a facts report, parsed with the rest of it."""

from __future__ import annotations

from fabfile.deploy import facts
from fabfile.heal.facts import Restarts, Watcher


def parse(*lines: str) -> facts.Facts:
    return facts.parse("\n".join(["@facts 1", "docker 20.10.24", "compose 2.26.1",
                                  "app_dir present", *lines, "@end"]))


def test_watcher_and_restarts() -> None:
    found = parse("watcher 0123456789abcdef running cron",
                  "restarts aaa 1 2 1714557600 3 ok",
                  "restarts bbb 0 0 0 0 gave-up",
                  "restarts ccc 2 0 0 0 ok")
    assert found.watcher == Watcher("0123456789abcdef", True, "cron")
    assert found.restarts["aaa"] == Restarts(crashes=4, health=2,
                                             last_health="2024-05-01T10:00:00Z", gave_up=False)
    assert found.restarts["aaa"].total == 6
    assert found.restarts["bbb"].gave_up and found.restarts["bbb"].last_health is None
    assert found.restarts["ccc"] == Restarts(crashes=2, health=0, last_health=None,
                                             gave_up=False)


def test_no_watcher_and_garbled_lines_are_left_out() -> None:
    found = parse("watcher only-two stopped", "restarts aaa x 1 2 3 ok", "restarts bbb 1 2")
    assert found.watcher is None and found.restarts == {}
