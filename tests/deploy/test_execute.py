"""The executor's orchestration across hosts, with scripted transports standing in for SSH
(the test bed has one Docker Engine, so two real hosts cannot be told apart): facts from
every host first, then host by host; a failure stops the run and every lock is released."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fabfile.config import Config, Host
from fabfile.deploy import execute, scripts
from fabfile.errors import UserError
from fabfile.heal import scripts as heal_scripts
from fabfile.remote import Result, Step, Transport
from tests.deploy.factgen import config, report

V1 = "20240101T000000Z-v1"
HOSTS = [{"address": "203.0.113.1", "user": "deploy"}, {"address": "203.0.113.2",
                                                          "user": "deploy"}]


def script_name(step: Step) -> str:
    if step.argv[2:3] == (heal_scripts.body("install"),):
        return "heal"
    shown = scripts.shown(step.argv)
    if shown[:2] != ["sh", "-c"]:
        return shown[0]
    name = shown[2].strip("<>").removesuffix(".sh")
    return shown[8].strip("<>").removesuffix(".sh") if name == "phase" else name


class Scripted(Transport):
    """Answers each script with canned output; `fail` maps a script name to a Result or an
    exception to raise (an interrupt arriving during that command)."""

    def __init__(self, host: Host, cfg: Config, tmp: Path, calls: list[tuple[str, str, Step]],
                 lock: str = "taken", fail: dict[str, Any] | None = None,
                 watcher: str | None = "current",
                 states: list[dict[str, Any]] | None = None) -> None:
        super().__init__(host)
        self.cfg, self.tmp, self.calls, self.lock = cfg, tmp, calls, lock
        self.watcher = watcher
        self.fail = fail or {}
        self.states = list(states or [])

    def _exec(self, step: Step, on_line: Any = None) -> Result:
        name = script_name(step)
        self.calls.append((self.host.address, name, step))
        failure = self.fail.get(name)
        if isinstance(failure, BaseException):
            raise failure
        if isinstance(failure, Result):
            return Result(step, failure.exit_code, failure.stdout, failure.stderr)
        out = {
            "facts": lambda: report(self.cfg, self.states.pop(0) if self.states else {
                "lock": self.lock if step.argv[7].startswith("take") else "free",
                "current": {"release": V1, "tag": "v1"},
                "releases": {V1: "live"},
                "holder": {"who": "bob@ci"} if self.lock == "held" else None,
                "watcher": self.watcher,
                "containers": [{"id": f"{self.host.address}-a{i}", "tag": "v1",
                                "release": V1} for i in (1, 2)]}, self.tmp),
            "upload": lambda: "@uploaded x\n",
            "migrate": lambda: "migrated\n@migrate-exit 0\n",
            "roll_up": lambda: "@new n1 n2\n@healthy 1.50\n",
            "roll_drain": lambda: "@unhealthy 2.0\n@stopping 5.0\n@stopped 5.3\n",
            "smoke": lambda: "@round ok\n@smoke ok 1 1 0.1\n",
            "finish": lambda: "@switched x\n" + ("@kept\n" if step.argv[10] == "keep"
                                                  else "@unlocked\n"),
            "heal": lambda: "@supervisor cron\n@started 4242\n",
        }[name]()
        return Result(step, 0, out, "")

    def stream(self, argv: Any, sink: Any = None) -> int:
        raise AssertionError("not used")


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    return config("unit", tmp_path, {"app": {"tag": "v2"}, "hosts": HOSTS})


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    messages: list[tuple[str, str]] = []
    monkeypatch.setattr(execute.notify, "send",
                        lambda cfg, text, level="info": messages.append((level, text)))
    return messages


@pytest.fixture
def hosts(cfg: Config, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., list[tuple[str, str, Step]]]]:
    """`hosts(**{address: options})` installs scripted transports; returns the call log."""
    calls: list[tuple[str, str, Step]] = []

    def install(**options: dict[str, Any]) -> list[tuple[str, str, Step]]:
        monkeypatch.setattr(execute, "connect", lambda host: Scripted(
            host, cfg, tmp_path, calls, **options.get(host.address.replace(".", "_"), {})))
        return calls

    yield install


def steps_of(calls: list[tuple[str, str, Step]], address: str) -> list[str]:
    return [name for host, name, _ in calls if host == address]


def audit_of(calls: list[tuple[str, str, Step]], address: str) -> dict[str, Any]:
    finish = [step for host, name, step in calls if host == address and name == "finish"]
    assert len(finish) == 1
    return dict(json.loads(finish[0].argv[8]))


def test_facts_from_all_hosts_then_host_by_host(cfg: Config, hosts: Any,
                                                sent: list[tuple[str, str]]) -> None:
    calls = hosts()
    report_ = execute.deploy(cfg, execute.DeployOptions(yes=True))
    assert report_.ok
    order = [(host, name) for host, name, _ in calls]
    assert {order[0], order[1]} == {("203.0.113.1", "facts"), ("203.0.113.2", "facts")}
    steps = ("upload", "migrate", "roll_up", "roll_drain", "smoke", "finish")
    assert order[2:] == [("203.0.113.1", n) for n in steps] + [("203.0.113.2", n) for n in steps]
    assert [r.commands for r in report_.runs] == [7, 7]
    assert audit_of(calls, "203.0.113.2")["result"] == "success"
    assert sent == [("success", "deploy of v2 to unit succeeded on 2 host(s)")]


def test_a_missing_or_stopped_watcher_is_installed_after_the_lock_is_released(
        cfg: Config, hosts: Any, sent: list[tuple[str, str]],
        capsys: pytest.CaptureFixture[str]) -> None:
    calls = hosts(**{"203_0_113_1": {"watcher": None}, "203_0_113_2": {"watcher": "stopped"}})
    report_ = execute.deploy(cfg, execute.DeployOptions(yes=True))
    assert report_.ok
    for address in ("203.0.113.1", "203.0.113.2"):
        assert steps_of(calls, address)[-2:] == ["finish", "heal"]
    assert [r.commands for r in report_.runs] == [8, 8]
    assert "self-healing watcher running (cron checks on it every minute" in capsys.readouterr().out


def test_a_watcher_that_cannot_start_is_a_warning_not_a_failed_deploy(
        cfg: Config, hosts: Any, sent: list[tuple[str, str]],
        capsys: pytest.CaptureFixture[str]) -> None:
    broken = Result(Step("x", ()), 1, "@error missing flock\n", "")
    hosts(**{"203_0_113_1": {"watcher": None, "fail": {"heal": broken}}})
    assert execute.deploy(cfg, execute.DeployOptions(yes=True)).ok
    out = " ".join(capsys.readouterr().out.split())
    assert "self-healing watcher NOT running: `flock` (util-linux) is missing" in out


def test_a_failing_host_stops_the_run_and_every_lock_is_released(
        cfg: Config, hosts: Any, sent: list[tuple[str, str]]) -> None:
    bad = Result(Step("x", ()), 2, "@new n1 n2\n@log boom\n@error unhealthy n1 running "
                 "unhealthy\n@removed n1 n2\n", "")
    calls = hosts(**{"203_0_113_1": {"fail": {"roll_up": bad}}})
    expected = re.escape("v2 never turned healthy on deploy@203.0.113.1:22")
    with pytest.raises(UserError, match=expected):
        execute.deploy(cfg, execute.DeployOptions(yes=True))
    assert steps_of(calls, "203.0.113.1") == ["facts", "upload", "migrate", "roll_up", "finish"]
    assert steps_of(calls, "203.0.113.2") == ["facts", "finish"]
    first, second = audit_of(calls, "203.0.113.1"), audit_of(calls, "203.0.113.2")
    assert first["result"] == "failed" and "never turned healthy" in first["message"]
    assert second["result"] == "cancelled"
    finish = next(s for h, n, s in calls if h == "203.0.113.1" and n == "finish")
    clean, keep, *prune = finish.argv[9:]
    assert clean == "" and keep == "", "images are cleaned only after a successful deploy"
    assert len(prune) == 1 and prune[0].endswith("-v2")
    assert sent[0][0] == "failure"
    assert "203.0.113.2:22: cancelled: nothing changed here: the run stopped (v2" in sent[0][1]
    assert "boom" not in sent[0][1]


def test_a_lock_held_on_one_host_changes_nothing_anywhere(cfg: Config, hosts: Any,
                                                          sent: list[tuple[str, str]]) -> None:
    calls = hosts(**{"203_0_113_2": {"lock": "held"}})
    with pytest.raises(UserError, match=re.escape("203.0.113.2:22 is locked by bob@ci")) as info:
        execute.deploy(cfg, execute.DeployOptions(yes=True))
    assert info.value.code == 75
    assert steps_of(calls, "203.0.113.1") == ["facts", "finish"]
    assert steps_of(calls, "203.0.113.2") == ["facts"]
    assert audit_of(calls, "203.0.113.1")["result"] == "cancelled"


def test_dry_run_reads_facts_only(cfg: Config, hosts: Any, sent: list[tuple[str, str]]) -> None:
    calls = hosts()
    assert execute.deploy(cfg, execute.DeployOptions(dry_run=True)).ok
    assert [name for _, name, _ in calls] == ["facts", "facts"]
    assert all(step.argv[4 + 3] == "read" for _, _, step in calls)
    assert sent == []


def test_an_interrupt_mid_phase_stops_it_and_releases_the_lock(
        cfg: Config, hosts: Any, sent: list[tuple[str, str]]) -> None:
    calls = hosts(**{"203_0_113_1": {"fail": {"roll_up": KeyboardInterrupt()}}})
    with pytest.raises(KeyboardInterrupt):
        execute.deploy(cfg, execute.DeployOptions(yes=True))
    finish = next(s for h, n, s in calls if h == "203.0.113.1" and n == "finish")
    assert int(finish.argv[6]) > 0, "finish must wait for the interrupted phase"
    assert audit_of(calls, "203.0.113.1")["result"] == "interrupted"
    assert audit_of(calls, "203.0.113.2")["result"] == "cancelled"


def test_a_dead_runs_release_that_serves_is_finished_not_rolled_again(
        cfg: Config, hosts: Any, sent: list[tuple[str, str]]) -> None:
    """The first host's last deploy of v2 died after its drain: its release serves, `current`
    still names v1. This deploy of v2 smoke-tests it, switches `current` (keeping the lock),
    reads the host again and finds nothing to change. The other host deploys as usual."""
    v2 = "20240102T000000Z-v2"
    serving = [{"id": f"b{i}", "tag": "v2", "release": v2} for i in (1, 2)]
    dead = {"lock": "taken-over", "current": {"release": V1, "tag": "v1"},
            "releases": {V1: "live", v2: "staged"}, "containers": serving}
    after = {**dead, "lock": "taken", "current": {"release": v2, "tag": "v2"},
             "releases": {V1: "live", v2: "live"}}
    calls = hosts(**{"203_0_113_1": {"states": [dead, after]}})
    assert execute.deploy(cfg, execute.DeployOptions(yes=True, lock_wait=60)).ok
    assert steps_of(calls, "203.0.113.1") == ["facts", "smoke", "finish", "facts", "finish"]
    assert steps_of(calls, "203.0.113.2")[-2:] == ["smoke", "finish"]
    first, last = [s for h, n, s in calls if h == "203.0.113.1" and n == "finish"]
    assert first.argv[7] == v2 and first.argv[10] == "keep", "switch, keeping the lock"
    assert json.loads(first.argv[8])["action"] == "recover"
    assert (last.argv[7], last.argv[10]) == ("", "")
    assert json.loads(last.argv[8])["result"] == "no-change"
    facts_steps = [s for _, n, s in calls if n == "facts"]
    assert [s.argv[7] for s in facts_steps] == ["take-over", "take-over", "take"]
