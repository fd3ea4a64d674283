"""How `inv deploy` fails, end to end: one clear message, a non-zero exit, the old version
still serving, the lock released and the audit log saying what happened."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.deploy.stack import APP, Stack, output, wait_for
from tests.support.net import free_port
from tests.support.sshd import write_wrong_known_hosts

pytestmark = pytest.mark.e2e


@pytest.fixture
def live(stack: Stack) -> Stack:
    """The stack set up and serving v1."""
    assert stack.inv("setup").returncode == 0
    proc = stack.inv("deploy", "--yes")
    assert proc.returncode == 0, output(proc)
    return stack


def serving_ids(stack: Stack) -> set[str]:
    return {c["id"] for c in stack.containers()
            if c["state"] == "running" and c["health"] == "healthy"}


def test_a_version_that_never_turns_healthy_is_removed(live: Stack) -> None:
    old, current = serving_ids(live), live.current()
    proc = live.inv("deploy", "--yes", "--version=broken")
    assert proc.returncode == 1, output(proc)
    assert "broken never turned healthy on root@127.0.0.1" in proc.stderr
    assert "its new containers were removed and the old ones keep serving" in proc.stderr
    assert "app broken (mode broken" in proc.stderr
    assert "Traceback" not in output(proc)
    assert {c["id"] for c in live.containers()} == old == serving_ids(live)
    assert live.current() == current and not live.locked()
    assert not [r for r in live.releases() if r.endswith("-broken")]
    last = live.audit()[-1]
    assert (last["result"], last["version"]) == ("failed", "broken")
    assert "never turned healthy" in last["message"]


def test_a_failed_migration_stops_before_the_web_service(live: Stack) -> None:
    old = serving_ids(live)
    env = live.write_env("migfail", {"app": {"tag": "v2", "env": {"MIGRATE_EXIT": "3"}}})
    proc = live.inv("deploy", "--yes", env=env)
    assert proc.returncode == 1, output(proc)
    assert "the migration `/app/migrate` failed on root@127.0.0.1" in proc.stderr
    assert "(exit 3); no web container was changed and the old version keeps serving" \
        in proc.stderr
    assert "migrate v2" in proc.stderr and "exit=3" in proc.stderr
    assert serving_ids(live) == old and live.images() == [f"{APP}:v1"] * 2
    assert not live.locked() and live.audit()[-1]["result"] == "failed"


@pytest.mark.parametrize(("command", "program"), [
    (None, "python3"),  # the default check, on an image without Python
    ("curl -fsS http://127.0.0.1:8000/health", "curl"),
    (["/usr/local/bin/healthcheck", "--port", "8000"], "/usr/local/bin/healthcheck"),
], ids=["default-python3", "shell-curl", "exec-form"])
def test_a_healthcheck_the_image_cannot_run_is_refused_before_anything_changes(
        live: Stack, command: str | list[str] | None, program: str) -> None:
    """The busybox app has wget only: a check needing another program would never pass, so
    the deploy stops before its migration and before any container is replaced."""
    old, current = serving_ids(live), live.current()
    env = live.write_env("nocheck", {"app": {"tag": "v2", "healthcheck": {"command": command}}})
    proc = live.inv("deploy", "--yes", env=env)
    assert proc.returncode == 1, output(proc)
    assert (f"the web healthcheck cannot run in {APP}:v2 on root@127.0.0.1:{live.ssh.port}: "
            f"`{program}` is not in the image") in proc.stderr
    assert "No container was replaced and no migration ran" in proc.stderr
    assert "Set app.healthcheck.command" in proc.stderr and "Traceback" not in output(proc)
    assert serving_ids(live) == old and live.images() == [f"{APP}:v1"] * 2
    assert live.current() == current and not live.locked()
    text = output(proc)
    assert "migrate: /app/migrate (" in text and "migrate v2" not in text, \
        "the migration step must stop at the check, before running the migration"
    assert not re.search(r"web: start [^\n]*\(\d+\.\ds\)", text), "the roll must not have run"
    assert "health-missing" not in live.audit()[-1]["message"]
    assert live.audit()[-1]["result"] == "failed"


def test_a_path_failing_verification_is_caught_before_the_drain(live: Stack) -> None:
    """Healthy new containers whose API fails (the busybox app answers 404 here) are
    removed before any old container is drained; the audit says which path on which one."""
    old, current = serving_ids(live), live.current()
    env = live.write_env("verify", {"app": {"tag": "v2"},
                                    "deploy": {"verify": {"paths": ["/version", "/people"]}}})
    proc = live.inv("deploy", "--yes", "--skip-migrations", env=env)
    assert proc.returncode == 1, output(proc)
    match = re.search(r"v2 failed its verification on root@127\.0\.0\.1:\d+: GET /people from "
                      r"new container ([0-9a-f]{12}) got HTTP 404 \(deploy\.verify\.paths must "
                      r"answer 2xx\); its new containers were removed and the old ones keep "
                      r"serving", proc.stderr)
    assert match, output(proc)
    assert "GET /people -> 404" in proc.stderr, "the container's own log lines are shown"
    assert serving_ids(live) == old and live.images() == [f"{APP}:v1"] * 2
    assert live.current() == current and not live.locked()
    last = live.audit()[-1]
    assert last["result"] == "failed" and f"GET /people from new container {match[1]}" \
        in last["message"]


def test_a_failed_smoke_test_rolls_back_by_itself(live: Stack) -> None:
    current = live.current()
    env = live.write_env("smokefail", {"deploy": {"smoke": {
        "urls": [f"http://127.0.0.1:{free_port()}/health"], "host_header": "roster.test"}}})
    proc = live.inv("deploy", "--yes", "--version=v2", env=env)
    assert proc.returncode == 1, output(proc)
    assert "smoke test failed: GET http://127.0.0.1:" in proc.stderr
    assert f"Rolled back to {current} (v1), which is serving again" in proc.stderr
    assert live.all_serving(f"{APP}:v1") and live.current() == current
    assert not live.locked()
    last = live.audit()[-1]
    assert (last["result"], last["version"]) == ("rolled-back", "v2")


@pytest.mark.parametrize(("sig", "phase"), [(signal.SIGTERM, "roll_up"),
                                            (signal.SIGINT, "roll_drain")],
                         ids=["sigterm-starting-new", "ctrl-c-draining-old"])
def test_interrupted_mid_rollout_releases_the_lock_and_the_next_deploy_converges(
        live: Stack, sig: signal.Signals, phase: str) -> None:
    """SIGTERM while new containers start: they are removed. Ctrl-C while the old ones
    drain: the drain completes. Either way the lock is released and nothing is switched."""
    env = live.write_env("slow", {"app": {"healthcheck": {"start_period": 10}}})
    current = live.current()
    proc = live.popen("deploy", "--yes", "--version=slow", "--skip-migrations", env=env)
    try:
        wait_for(lambda: live.phase() == phase, 60, f"the {phase} phase")
        time.sleep(1.0)
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out
    assert "interrupted" in out and "Traceback" not in out
    assert not live.locked() and live.current() == current
    assert live.audit()[-1]["result"] == "interrupted"
    web = live.containers()
    if phase == "roll_up":
        assert sorted(c["image"] for c in web) == [f"{APP}:v1"] * 2
    else:
        assert sorted(c["image"] for c in web) == [f"{APP}:slow"] * 2
    again = live.inv("deploy", "--yes", "--version=v2")
    assert again.returncode == 0, output(again)
    assert live.all_serving(f"{APP}:v2") and not live.locked()


def test_an_unreachable_host_is_one_clear_message(stack: Stack) -> None:
    port = free_port()
    env = stack.write_env("down", {"hosts": [{"address": "127.0.0.1", "port": port,
                                              "user": "root",
                                              "key_file": str(stack.ssh.key_file),
                                              "known_hosts": str(stack.ssh.known_hosts)}]})
    proc = stack.inv("deploy", "--yes", env=env, timeout=60)
    assert proc.returncode == 1
    assert f"cannot reach 127.0.0.1:{port} over SSH" in proc.stderr
    assert "Traceback" not in output(proc)


def test_a_wrong_host_key_is_refused(stack: Stack, tmp_path: Path) -> None:
    wrong = write_wrong_known_hosts(stack.ssh, tmp_path / "wrong_known_hosts")
    env = stack.write_env("mitm", {"hosts": [{**stack.base()["hosts"][0],
                                              "known_hosts": str(wrong)}]})
    proc = stack.inv("deploy", "--yes", env=env, timeout=60)
    assert proc.returncode == 1
    assert f"the host key of 127.0.0.1:{stack.ssh.port} does not match" in proc.stderr
    assert not stack.app_dir.exists()


def test_a_lock_held_by_someone_else(stack: Stack) -> None:
    assert stack.inv("setup").returncode == 0
    lock = stack.app_dir / "lock"
    lock.mkdir()
    (lock / "holder.json").write_text(json.dumps({
        "who": "alice@laptop", "when": "2024-05-01T10:00:00Z", "command": "deploy",
        "version": "v9", "pid": 4242}))
    proc = stack.inv("deploy", "--yes")
    assert proc.returncode == 75, output(proc)
    assert "is locked by alice@laptop since 2024-05-01T10:00:00Z (deploy of v9, pid 4242)" \
        in proc.stderr
    assert "--lock-wait=SECONDS" in proc.stderr
    assert "`inv lock.release --env=e2e --yes`" in proc.stderr
    status = stack.inv("lock.status")
    assert "held" in status.stdout and "alice@laptop" in status.stdout
    assert lock.exists() and stack.containers() == []

    threading.Timer(2.0, lambda: shutil.rmtree(lock)).start()
    waited = stack.inv("deploy", "--yes", "--lock-wait=30")
    assert waited.returncode == 0, output(waited)
    assert stack.all_serving(f"{APP}:v1") and not stack.locked()


def test_lock_release_removes_a_dead_runs_lock(stack: Stack) -> None:
    assert stack.inv("setup").returncode == 0
    (stack.app_dir / "lock").mkdir()
    refused = stack.inv("lock.release")
    assert refused.returncode == 1 and "pass --yes" in refused.stderr and stack.locked()
    released = stack.inv("lock.release", "--yes")
    assert released.returncode == 0, output(released)
    assert not stack.locked() and stack.audit()[-1]["result"] == "released"


def test_a_full_disk_at_upload(stack: Stack, small_disk: Callable[[str], Path]) -> None:
    disk = small_disk("1m")
    env = stack.write_env("tiny", {"deploy": {"app_dir": str(disk / "app")}})
    assert stack.inv("setup", env=env).returncode == 0
    subprocess.run(["dd", "if=/dev/zero", f"of={disk / 'fill'}", "bs=16k"],
                   capture_output=True, check=False)
    proc = stack.inv("deploy", "--yes", env=env)
    assert proc.returncode == 1, output(proc)
    assert "the disk of root@127.0.0.1" in proc.stderr and "is full" in proc.stderr
    assert "Nothing was changed" in proc.stderr and "Traceback" not in output(proc)
    assert not (disk / "app" / "lock").exists()
    assert os.listdir(disk / "app" / "releases") == []
    assert stack.containers() == []
