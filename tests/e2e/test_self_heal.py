"""Self-healing end to end, on the test bed's sshd host behind the Traefik stand-in, under a
bounded load (10 requests/s): the watcher that `inv setup` installs replaces a web container
whose app hangs within 30 s (with the default healthcheck timings), Docker's policy brings a
killed one back within 30 s, and a container that hangs again after every restart is left
alone after `max_restarts` with exactly one Slack alert. (That a rolling deploy with the
watcher on restarts nothing is `test_deploy_zero_downtime.py`.)

A request can only fail when the stand-in routed it to the broken container before it left
the routing table: those were in flight to the hung (or killed) process, which Traefik
cannot save either (it has no retries by default). Every other request must succeed.
"""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fabfile.heal.plan import SWEEP_SECONDS
from tests.checks.webhook import webhook
from tests.deploy.stack import DOMAIN, Stack, output
from tests.support.front import Front
from tests.support.heal import (
    crash,
    hang,
    name_of,
    recover,
    started_at,
    state,
    wait,
    watcher_pid,
)
from tests.support.load import LoadGenerator, Result

pytestmark = pytest.mark.e2e

RATE = 10.0
THROTTLE = 2.0
TARGET = 30.0
IN_FLIGHT = 1.0
DEFAULT_TIMINGS = {"interval": 2, "timeout": 2, "retries": 3, "start_period": 3}


def alerts(payloads: list[dict[str, str]]) -> list[str]:
    """The watcher's alerts among what reached the webhook (deploys report there too)."""
    return [p["text"] for p in payloads if "keeps turning unhealthy" in p["text"]]


def heal_audit(stack: Stack) -> list[dict[str, Any]]:
    return [a for a in stack.audit() if a["action"] == "heal"]


def setup_and_deploy(stack: Stack, front: Front, overrides: dict[str, Any],
                     extra_env: dict[str, str] | None = None) -> str:
    """`inv setup` (which starts the watcher) and a first deploy behind the stand-in."""
    stack.write_env(overrides={
        "app": {"migrate_command": [], **overrides.get("app", {})},
        "deploy": {"traefik_throttle": THROTTLE, "drain_margin": 1.0,
                   "smoke": {"urls": [f"{front.url}/health"], "host_header": DOMAIN,
                             "interval": 1.0, "failures": 6}},
        **{k: v for k, v in overrides.items() if k != "app"}})
    setup = stack.inv("setup", extra_env=extra_env)
    assert setup.returncode == 0, output(setup)
    assert "self-healing watcher running" in setup.stdout, output(setup)
    assert watcher_pid(stack.app_dir) is not None
    first = stack.inv("deploy", "--yes", extra_env=extra_env)
    assert first.returncode == 0, output(first)
    front.wait_for(lambda t: len(t.servers_for(DOMAIN)) == 2, timeout=30)
    return output(first)


@pytest.fixture
def served(stack: Stack, make_front: Any) -> Iterator[tuple[Stack, Front]]:
    front = make_front(project=stack.project, throttle=THROTTLE, network=stack.network)
    setup_and_deploy(stack, front, {"app": {"healthcheck": DEFAULT_TIMINGS}})
    yield stack, front


def unexplained(failures: list[Result], t0: float,
                windows: list[tuple[float, float]]) -> list[Result]:
    """The failures that did not start while a broken container was still routed (from
    IN_FLIGHT seconds before it broke until the stand-in's table dropped it)."""
    return [r for r in failures
            if not any(broke - IN_FLIGHT <= r.started + t0 < left for broke, left in windows)]


def test_a_hung_container_is_replaced_and_a_killed_one_is_back_within_30s(
        served: tuple[Stack, Front]) -> None:
    stack, front = served
    first, second = sorted(c["id"] for c in stack.containers())
    with LoadGenerator(f"{front.url}/version", host=DOMAIN, rate=RATE, max_seconds=180,
                       timeout=40, concurrency=300) as load:
        t0 = time.monotonic() - load.now()
        time.sleep(2)
        hung = recover(front, DOMAIN, first, hang)
        time.sleep(2)
        killed = recover(front, DOMAIN, second, crash)
        time.sleep(2)
    print(f"hang -> routed again {hung.after(hung.back):.1f}s (out of the pool after "
          f"{hung.after(hung.left):.1f}s); crash -> routed again {killed.after(killed.back):.1f}s")
    print(load.summary())
    assert hung.after(hung.back) < TARGET
    assert killed.after(killed.back) < TARGET
    failures = load.failures()
    windows = [(hung.broken, hung.left), (killed.broken, killed.left)]
    assert not unexplained(failures, t0, windows), (
        load.summary(failures) + "\n" + front.summary())
    assert len(load.results()) >= RATE * load.now() * 0.8, load.summary()

    restarts = heal_audit(stack)
    assert [(a["result"], a["id"]) for a in restarts] == [("restarted", first[:12])], restarts
    assert restarts[0]["container"] == name_of(first) and restarts[0]["env"] == "e2e"
    assert 0 < restarts[0]["seconds"] < 10
    status = stack.inv("status")
    assert status.returncode == 0, output(status)
    text = status.stdout
    assert "1 (0 crash, 1 health)" in text and restarts[0]["time"] in text, text
    assert "1 (1 crash, 0 health)" in text, text
    assert "self-healing: watching" in text
    assert "last: " in text and " deploy v1 success" in text, text
    data = json.loads(stack.inv("status", "--json").stdout)[0]
    assert data["restarts"][first]["health"] == 1 and data["restarts"][second]["crashes"] == 1
    assert data["watcher"]["running"] is True


def test_a_container_that_hangs_after_every_restart_is_left_after_n_with_one_alert(
        stack: Stack, make_front: Any) -> None:
    front = make_front(project=stack.project, throttle=THROTTLE, network=stack.network)
    timings = {"interval": 1, "timeout": 1, "retries": 2, "start_period": 1,
               "restart_after": 1, "max_restarts": 2, "restart_window": 600}
    with webhook() as hook:
        secrets = {"E2E_SLACK_WEBHOOK": hook.url}
        deployed = setup_and_deploy(stack, front, {
            "app": {"healthcheck": timings},
            "notifications": {"slack_webhook": {"secret": "E2E_SLACK_WEBHOOK"}}}, secrets)
        victim = sorted(c["id"] for c in stack.containers())[0]
        hangs: list[str] = []
        stop = threading.Event()

        def keep_hanging() -> None:
            """Hang the app each time it is healthy again after a (re)start."""
            while not stop.wait(0.2):
                started = started_at(victim)
                if started not in hangs and state(victim) == "running healthy":
                    hangs.append(started)
                    hang(victim)

        hanger = threading.Thread(target=keep_hanging, daemon=True)
        hanger.start()
        try:
            wait(lambda: any(a["result"] == "gave-up" for a in heal_audit(stack)), 90,
                 "the watcher to give up", step=0.5)
            wait(lambda: alerts(hook.payloads), 20, "the alert")
            time.sleep(SWEEP_SECONDS + 3)
        finally:
            stop.set()
            hanger.join(5)
        results = [a["result"] for a in heal_audit(stack)]
        assert results == ["restarted", "restarted", "gave-up"], heal_audit(stack)
        assert len(hangs) == 3 and state(victim) == "running unhealthy"
        assert len(alerts(hook.payloads)) == 1, hook.payloads
        text = alerts(hook.payloads)[0]
        assert name_of(victim) in text and "restarted 2 times" in text, text
        status = stack.inv("status", extra_env=secrets)
        assert "unhealthy (watcher gave up)" in status.stdout, output(status)
        assert "2 (0 crash, 2 health)" in status.stdout

    stored = stack.app_dir / "heal" / "slack_webhook"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stored.read_text().strip() == hook.url
    for path in Path(stack.app_dir).rglob("*"):
        if path.is_file() and path != stored:
            assert hook.url not in path.read_text(errors="replace"), path
    assert hook.url not in deployed and hook.url not in output(status)


def test_a_lock_left_by_a_run_that_died_does_not_stop_the_healing(
        served: tuple[Stack, Front]) -> None:
    """A deploy SIGKILLed at night leaves its lock: once that lock is stale (no heartbeat for
    `deploy.lock_stale_after`), a hung container is healed as without it."""
    stack, front = served
    lock = stack.app_dir / "lock"
    lock.mkdir()
    (lock / "token.dead-run").touch()
    (lock / "holder.json").write_text(json.dumps({"command": "deploy", "version": "v9",
                                                  "who": "ci@runner", "pid": 4242}) + "\n")
    long_ago = time.time() - 600
    for path in (lock / "token.dead-run", lock / "holder.json", lock):
        os.utime(path, (long_ago, long_ago))
    first = sorted(c["id"] for c in stack.containers())[0]
    hung = recover(front, DOMAIN, first, hang)
    assert hung.after(hung.back) < TARGET
    assert [(a["result"], a["id"]) for a in heal_audit(stack)] == [("restarted", first[:12])]
    assert (lock / "token.dead-run").exists(), "the watcher leaves the dead run's lock alone"
    status = stack.inv("status")
    assert "lock: stale: " in status.stdout, output(status)
