"""The watcher's install, supervision and removal, run for real with the local transport on
a temporary app directory: the watcher itself runs (its Docker calls find no container of
its made-up project). cron and systemd are stand-ins on PATH that record what they are told
(the test bed has neither); the host without either is the e2e tests' sshd host."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fabfile.config import Host
from fabfile.deploy import facts, rollout
from fabfile.heal import plan
from fabfile.heal.facts import Watcher
from fabfile.remote import LocalTransport
from tests.deploy.factgen import config
from tests.support.heal import stop_watcher, watcher_pid

HOOK = "https://hooks.slack.example/services/T0/B0/secretpart"
CRONTAB = """#!/bin/sh
# `crontab -l` and `crontab -`, the table in $STUB_DIR/crontab.table
case $1 in
  -l) cat "$STUB_DIR/crontab.table" 2>/dev/null ;;
  -) cat > "$STUB_DIR/crontab.table" ;;
esac
"""
SYSTEMCTL = """#!/bin/sh
echo "systemctl $*" >> "$STUB_DIR/calls"
"""
LOGINCTL = """#!/bin/sh
echo yes
"""


@pytest.fixture
def stubs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory first on PATH for the cron and systemd stand-ins."""
    stub_dir = tmp_path / "stubs"
    stub_dir.mkdir()
    monkeypatch.setenv("STUB_DIR", str(stub_dir))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("PATH", f"{stub_dir}:{os.environ['PATH']}")
    return stub_dir


def stub(stub_dir: Path, name: str, text: str) -> None:
    (stub_dir / name).write_text(text)
    (stub_dir / name).chmod(0o755)


@pytest.fixture
def app_dir(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "app"
    root.mkdir()
    yield root
    stop_watcher(root)


def install(app_dir: Path, **overrides: object) -> dict[str, list[str]]:
    cfg = config("unit", app_dir.parent, {"deploy": {"app_dir": str(app_dir)}, **overrides},
                 secrets={"HOOK": HOOK})
    result = LocalTransport(Host(address="localhost", transport="local")).probe(
        plan.install_step(cfg))
    assert result.ok, result.stdout + result.stderr
    return rollout.markers(result.stdout)


def remove(app_dir: Path) -> dict[str, list[str]]:
    result = LocalTransport(Host(address="localhost", transport="local")).probe(
        plan.remove_step(str(app_dir)))
    return rollout.markers(result.stdout)


def kill(pid: int) -> None:
    """SIGKILL the watcher's process group and wait until every member is gone (its lock is
    free only then)."""
    os.killpg(pid, 9)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"process group {pid} still there")


def table(stubs: Path) -> list[str]:
    path = stubs / "crontab.table"
    return path.read_text().splitlines() if path.exists() else []


@pytest.mark.testbed
def test_cron_keeps_it_running_and_a_second_install_changes_nothing(
        app_dir: Path, stubs: Path) -> None:
    stub(stubs, "crontab", CRONTAB)
    others = ["0 3 * * * /usr/local/bin/other-job",
              f"* * * * * /bin/sh {app_dir}2/heal/ensure.sh # shipyard-heal {app_dir}2"]
    (stubs / "crontab.table").write_text("\n".join(others) + "\n")
    first = install(app_dir)
    assert first["supervisor"] == ["cron"] and "started" in first
    pid = watcher_pid(app_dir)
    assert pid is not None and first["started"] == [str(pid)]
    line = (f"* * * * * /bin/sh {app_dir}/heal/ensure.sh {app_dir} >/dev/null 2>&1 "
            f"# shipyard-heal {app_dir}")
    assert table(stubs) == [*others, line]

    again = install(app_dir)
    assert again.get("running") == [str(pid)] and "stopped" not in again
    assert table(stubs) == [*others, line]

    changed = install(app_dir, app={"healthcheck": {"restart_after": 9}})
    assert changed["stopped"] == [str(pid)] and watcher_pid(app_dir) not in (None, pid)
    assert "9" in (app_dir / "heal" / "args").read_text().split()

    gone = remove(app_dir)
    assert gone["removed"] == [f"{app_dir}/heal"] and not (app_dir / "heal").exists()
    assert table(stubs) == others
    assert watcher_pid(app_dir) is None


@pytest.mark.testbed
def test_what_cron_runs_brings_a_killed_watcher_back(app_dir: Path, stubs: Path) -> None:
    stub(stubs, "crontab", CRONTAB)
    install(app_dir)
    pid = watcher_pid(app_dir)
    assert pid is not None
    kill(pid)
    ensure = table(stubs)[-1].split(" >/dev/null")[0].split(" ", 5)[5]
    assert ensure == f"/bin/sh {app_dir}/heal/ensure.sh {app_dir}"
    out = subprocess.run(ensure.split(), capture_output=True, text=True, check=True).stdout
    assert out.startswith("@started ") and watcher_pid(app_dir) not in (None, pid)
    again = subprocess.run(ensure.split(), capture_output=True, text=True, check=True).stdout
    assert again == f"@running {watcher_pid(app_dir)}\n"


@pytest.mark.testbed
def test_a_lingering_systemd_user_instance_gets_a_unit(app_dir: Path, stubs: Path,
                                                       tmp_path: Path) -> None:
    stub(stubs, "crontab", CRONTAB)
    stub(stubs, "systemctl", SYSTEMCTL)
    stub(stubs, "loginctl", LOGINCTL)
    first = install(app_dir)
    assert first["supervisor"] == ["systemd"] and first["started"][0].startswith("systemd ")
    unit = first["started"][0].split()[1]
    text = (tmp_path / "home" / ".config" / "systemd" / "user" / unit).read_text()
    assert f"ExecStart=/bin/sh {app_dir}/heal/ensure.sh {app_dir} foreground" in text
    assert "Restart=always" in text and "WantedBy=default.target" in text
    calls = (stubs / "calls").read_text().splitlines()
    assert calls[-3:] == ["systemctl --user daemon-reload", f"systemctl --user enable {unit}",
                          f"systemctl --user restart {unit}"]
    assert table(stubs) == []
    install(app_dir)
    assert (stubs / "calls").read_text().splitlines()[-1] == f"systemctl --user start {unit}"
    remove(app_dir)
    assert f"systemctl --user disable --now {unit}" in (stubs / "calls").read_text()
    assert not (tmp_path / "home" / ".config" / "systemd" / "user" / unit).exists()


@pytest.mark.testbed
def test_the_webhook_file_is_0600_and_goes_when_the_config_drops_it(
        app_dir: Path, stubs: Path) -> None:
    stub(stubs, "crontab", CRONTAB)
    install(app_dir, notifications={"slack_webhook": {"secret": "HOOK"}})
    hook = app_dir / "heal" / "slack_webhook"
    assert hook.read_text() == HOOK + "\n" and hook.stat().st_mode & 0o777 == 0o600
    for path in (app_dir / "heal").iterdir():
        if path.is_file() and path != hook:
            assert "secretpart" not in path.read_text(errors="replace"), path
    install(app_dir)
    assert not hook.exists()


@pytest.mark.testbed
def test_heal_facts_report_the_watcher(app_dir: Path, stubs: Path) -> None:
    stub(stubs, "crontab", CRONTAB)
    cfg = config("unit", app_dir.parent, {"deploy": {"app_dir": str(app_dir)}})
    local = LocalTransport(Host(address="localhost", transport="local"))

    def watcher() -> object:
        return facts.parse(local.run(facts.gather_step(cfg, take_lock=False)).stdout).watcher

    assert watcher() is None
    install(app_dir)
    assert watcher() == Watcher(plan.fingerprint(cfg), True, "cron")
    pid = watcher_pid(app_dir)
    assert pid is not None
    kill(pid)
    assert watcher() == Watcher(plan.fingerprint(cfg), False, "cron")
