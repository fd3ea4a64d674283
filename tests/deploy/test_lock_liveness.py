"""The liveness of the host lock's holder, run for real: the client heartbeat (a background
command on the run's own connection, through the local transport and through the test
bed's sshd), the phase heartbeat, when a lock is stale, and taking a stale lock over."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from fabfile.config import Host
from fabfile.deploy import facts, lock, scripts
from fabfile.remote import LocalTransport
from fabfile.shell import read
from tests.helpers import PROJECT_ROOT
from tests.support.sshd import SshHost

STALE = "2"
HOLDER = {"who": "alice@laptop", "when": "2024-05-01T10:00:00Z", "command": "deploy",
          "version": "v2", "pid": 4242}
CHILD = """
import json, sys, time
from fabfile.config import Host
from fabfile.deploy import lock, scripts
from fabfile.remote import connect
host, lock_dir = Host(**json.loads(sys.argv[1])), sys.argv[2]
holder = lock.new_holder("deploy", "v9")
t = connect(host)
t.run(scripts.step("take", "facts", lock_dir.rsplit("/", 1)[0], "p", "n", "take", "0",
                   holder.to_json(), holder.token, "2", ""))
lock.keep_alive(t, lock_dir, holder, 0.5)
print("ready", flush=True)
time.sleep(120)
"""


def local() -> LocalTransport:
    return LocalTransport(Host(address="localhost", transport="local"))


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    root.mkdir()
    return root


def gather(app_dir: Path, mode: str = "read", wait: int = 0, token: str = "",
           audit: str = "") -> facts.Facts:
    """The facts script's lock part: read, take or take over (stale after 2 s)."""
    step = scripts.step("facts", "facts", str(app_dir), "p", "n", mode, str(wait),
                        json.dumps({"who": "next", "command": "deploy"}), token, STALE, audit,
                        timeout=wait + 60)
    return facts.parse(local().run(step).stdout)


def held_by_a_dead_run(app_dir: Path, holder: dict[str, Any] | None = None) -> Path:
    """A lock whose run took it 60 s ago and left no heartbeat since."""
    path = app_dir / "lock"
    path.mkdir()
    (path / "token.dead").touch()
    (path / "holder.json").write_text(json.dumps(holder or HOLDER) + "\n")
    age(path, 60)
    return path


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    for item in [*path.iterdir(), path]:
        os.utime(item, (then, then))


def library(*call: str) -> subprocess.CompletedProcess[str]:
    """Run one function of the lock library (`scripts/lock.sh`)."""
    return subprocess.run(["sh", "-c", read("fabfile.deploy", "lock") + '\n"$@"', "sh", *call],
                          capture_output=True, text=True, check=False)


def test_a_lock_without_a_sign_of_life_is_stale_and_taken_over(app_dir: Path) -> None:
    path = held_by_a_dead_run(app_dir)
    seen = gather(app_dir)
    assert seen.lock == "held" and seen.liveness is not None
    assert seen.liveness.stale and seen.liveness.age is not None and seen.liveness.age >= 59
    assert gather(app_dir, "take", token="t2").lock == "held", "`take` never takes over"

    line = json.dumps({"action": "lock.takeover", "result": "taken-over"})
    took = gather(app_dir, "take-over", token="t2", audit=line)
    assert took.lock == "taken" and took.taken_over is not None
    assert took.taken_over.holder == HOLDER and took.taken_over.stale_for is not None
    assert took.taken_over.stale_for >= 59
    assert "took over the stale lock of alice@laptop" in took.taken_over.describe()
    assert (path / "token.t2").exists() and (app_dir / "lock.dead" / "token.dead").exists()
    audit = json.loads((app_dir / "audit.log").read_text())
    assert audit["result"] == "taken-over" and audit["holder"] == HOLDER
    assert audit["stale_for"] >= 59


def test_a_busy_lock_is_never_taken_over(app_dir: Path) -> None:
    path = held_by_a_dead_run(app_dir)
    (path / "beat.client").write_text("alice@laptop pid 4242 from 198.51.100.7\n")
    started = time.monotonic()
    seen = gather(app_dir, "take-over", wait=1, token="t2", audit="{}")
    assert seen.lock == "held" and time.monotonic() - started >= 0.4, "it waited, in vain"
    assert seen.liveness is not None and not seen.liveness.stale
    assert seen.liveness.client == "alice@laptop pid 4242 from 198.51.100.7"
    assert not (app_dir / "audit.log").exists()
    err = lock.held_error("h", "prod", seen.holder, 1, seen.liveness, 2)
    assert "last heartbeat" in err.message and "(retry with --lock-wait=SECONDS)" in err.message


def test_a_running_phase_keeps_its_lock_alive(app_dir: Path) -> None:
    path = held_by_a_dead_run(app_dir)
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        assert library("lock_phase_begin", str(path), str(sleeper.pid), "roll_up").returncode == 0
        age(path, 60)
        seen = gather(app_dir, "take-over", token="t2", audit="{}")
        assert seen.lock == "held" and seen.liveness is not None
        assert not seen.liveness.stale
        assert seen.liveness.phase == f"running roll_up pid {sleeper.pid}"
    finally:
        sleeper.kill()
        sleeper.wait()
    assert gather(app_dir, "take-over", token="t2", audit="{}").lock == "taken"


def test_a_pid_that_now_names_another_process_is_no_running_phase(app_dir: Path) -> None:
    path = held_by_a_dead_run(app_dir)
    (path / "phase.pid").write_text(f"{os.getpid()} roll_up\nsome-other-boot 12345\n")
    age(path, 60)
    assert library("lock_phase", str(path)).returncode == 1
    seen = gather(app_dir).liveness
    assert seen is not None and seen.stale
    (path / "phase.pid").write_text(f"{os.getpid()} roll_up\n")
    assert library("lock_phase", str(path)).stdout == f"{os.getpid()} roll_up\n", \
        "a phase.pid without its identity line is trusted by its pid"


def test_a_restore_or_cutover_that_died_is_not_taken_over(app_dir: Path) -> None:
    held_by_a_dead_run(app_dir, {**HOLDER, "command": "backup.restore", "version": "b1"})
    seen = gather(app_dir, "take-over", wait=1, token="t2", audit="{}")
    assert seen.lock == "held" and seen.liveness is not None and seen.liveness.stale
    message = lock.held_error("h", "prod", seen.holder, 1, seen.liveness, 2).message
    assert "a run that died" in message and "not taken over by itself" in message
    assert "run the backup.restore again" in message


def test_one_of_two_runs_takes_a_stale_lock_over(app_dir: Path) -> None:
    held_by_a_dead_run(app_dir)
    results: dict[str, facts.Facts] = {}

    def take(token: str) -> None:
        results[token] = gather(app_dir, "take-over", wait=2, token=token,
                                audit=json.dumps({"by": token}))

    runs = [threading.Thread(target=take, args=(t,)) for t in ("a", "b")]
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    states = sorted((r.lock, r.taken_over is not None) for r in results.values())
    assert states == [("held", False), ("taken", True)], results
    assert len((app_dir / "audit.log").read_text().splitlines()) == 1


def test_a_phase_keeps_its_own_heartbeat_while_it_runs(app_dir: Path) -> None:
    gather(app_dir, "take", token="t1")
    lock_dir = str(app_dir / "lock")
    step = scripts.script("p", scripts.body("phase"), lock_dir, "t1", "1", "slow",
                          "sleep 2.5; echo done")
    runner = threading.Thread(target=lambda: local().probe(step), daemon=True)
    runner.start()
    beat = app_dir / "lock" / "beat.phase"
    deadline = time.monotonic() + 10
    while not beat.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    first = beat.stat().st_mtime
    assert beat.read_text().startswith("slow pid ") and f" on {os.uname().nodename}" in \
        beat.read_text()
    time.sleep(1.5)
    assert beat.stat().st_mtime > first, "renewed while the phase runs"
    runner.join(10)
    assert not (app_dir / "lock" / "phase.pid").exists()


@pytest.mark.parametrize("transport", ["local", pytest.param("ssh", marks=pytest.mark.testbed)])
def test_the_client_heartbeat_lives_and_dies_with_its_process(
        transport: str, app_dir: Path, request: pytest.FixtureRequest) -> None:
    if transport == "ssh":
        ssh: SshHost = request.getfixturevalue("ssh_host")
        host = {"address": ssh.address, "port": ssh.port, "user": ssh.user,
                "key_file": str(ssh.key_file), "known_hosts": str(ssh.known_hosts)}
    else:
        host = {"address": "localhost", "transport": "local"}
    child = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(host),
                              str(app_dir / "lock")], cwd=PROJECT_ROOT, stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        beat = app_dir / "lock" / "beat.client"
        deadline = time.monotonic() + 10
        while not beat.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        where = beat.read_text()
        assert f" pid {child.pid}" in where
        assert (" from 127.0.0.1" in where) == (transport == "ssh"), where
        busy = gather(app_dir, "take-over", wait=int(STALE) + 2, token="t2", audit="{}")
        assert busy.lock == "held", "a live client's lock is busy, never stale"
        assert busy.liveness is not None and not busy.liveness.stale
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    took = gather(app_dir, "take-over", wait=30, token="t2", audit="{}")
    assert took.lock == "taken" and took.taken_over is not None
    assert took.taken_over.holder is not None and took.taken_over.holder["pid"] == child.pid
