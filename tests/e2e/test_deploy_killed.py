"""A deploy whose process dies without a word (SIGKILL: a lost CI runner, a closed laptop) at
each point of its run, on the sshd host, under a bounded load through the Traefik stand-in:

- during the upload (a relay slows the connection so the host is still reading the archive,
  and its connection dies with the client);
- during the migration, the scale-up and the drain (each a detached phase: it carries on);
- between the drain and the switch of `current` (during the smoke test).

After each, the next `inv deploy --lock-wait=120` takes over the dead run's lock once it is
stale (its heartbeats stopped `deploy.lock_stale_after` seconds ago, 3 here, and no phase of
it runs), says so in its output and in the audit log, and converges: it finishes the dead
run without rolling again when its release already serves, and rolls forward from what runs
otherwise. Nobody releases anything, and no request fails at any point.

The five cases share one stack and one stand-in (module scope), each deploying the version
that does not serve yet.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.stack import APP, DOMAIN, Stack, output, wait_for
from tests.helpers import deep_merge
from tests.support.docker import DockerEngine
from tests.support.front import Front
from tests.support.images import ImageSet
from tests.support.load import LoadGenerator
from tests.support.relay import Relay
from tests.support.sshd import SshHost

pytestmark = pytest.mark.e2e

STALE_AFTER = 3
THROTTLE = 2.0
RATE = 20.0
UPLOAD_RATE = 2000.0
"""Bytes per second from client to host while the upload runs: the archive takes seconds."""


@dataclass
class Bench:
    stack: Stack
    front: Front
    relay: Relay
    relayed: Path
    """A known_hosts file naming the sshd's key at the relay's port."""

    def env(self, name: str, overrides: dict[str, Any], *, via_relay: bool = False) -> str:
        data = {"deploy": {"lock_stale_after": STALE_AFTER, "traefik_throttle": THROTTLE,
                           "drain_margin": 1.0,
                           "smoke": {"urls": [f"{self.front.url}/health"],
                                     "host_header": DOMAIN}}}
        if via_relay:
            host = {**self.stack.base()["hosts"][0], "port": self.relay.port,
                    "known_hosts": str(self.relayed)}
            data["hosts"] = [host]
        return self.stack.write_env(name, deep_merge(data, overrides))

    def serving(self) -> str:
        images = set(self.stack.images())
        assert len(images) == 1, images
        return images.pop().rsplit(":", 1)[1]


@pytest.fixture(scope="module")
def bench(ssh_host: SshHost, test_images: ImageSet, docker_engine: DockerEngine,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    """v1 served through the stand-in; a relay to the sshd for the upload case."""
    root = tmp_path_factory.mktemp("killed")
    stack = Stack.create(root, ssh_host)
    relay = Relay(ssh_host.port).start()
    relayed = root / "relayed_known_hosts"
    relayed.write_text(ssh_host.known_hosts.read_text().replace(
        f"]:{ssh_host.port} ", f"]:{relay.port} "))
    front: Front | None = None
    try:
        assert stack.inv("setup").returncode == 0
        front = Front(project=stack.project, throttle=THROTTLE, network=stack.network).start()
        b = Bench(stack, front, relay, relayed)
        first = stack.inv("deploy", "--yes", env=b.env("e2e", {}))
        assert first.returncode == 0, output(first)
        front.wait_for(lambda t: len(t.servers_for(DOMAIN)) == 2, timeout=30)
        yield b
    finally:
        relay.stop()
        if front is not None:
            front.stop()
        stack.cleanup()


def _kill_in_upload(b: Bench, proc: subprocess.Popen[str]) -> None:
    """Slow the connection once the lock is taken (the upload comes next), then kill the
    client as soon as the host unpacks the archive it is still receiving; its connection
    dies with it."""
    incoming = b.stack.app_dir / "releases"
    wait_for(b.stack.locked, 60, "the lock", every=0.01)
    b.relay.throttle(UPLOAD_RATE)
    try:
        wait_for(lambda: any(p.name.startswith(".incoming-") for p in incoming.iterdir()), 60,
                 "the upload", every=0.01)
        proc.send_signal(signal.SIGKILL)
        b.relay.cut()
    finally:
        b.relay.throttle(None)


def _kill_in_phase(name: str) -> Callable[[Bench, subprocess.Popen[str]], None]:
    def kill(b: Bench, proc: subprocess.Popen[str]) -> None:
        wait_for(lambda: b.stack.phase() == name, 120, f"the {name} phase", every=0.01)
        proc.send_signal(signal.SIGKILL)
    return kill


def _kill_after_drain(b: Bench, proc: subprocess.Popen[str]) -> None:
    """Once the drain phase is over: the client smoke-tests, then would switch `current`."""
    wait_for(lambda: b.stack.phase() == "roll_drain", 120, "the drain", every=0.01)
    wait_for(lambda: b.stack.phase() is None, 120, "the end of the drain", every=0.01)
    proc.send_signal(signal.SIGKILL)


@dataclass(frozen=True)
class Point:
    name: str
    kill: Callable[[Bench, subprocess.Popen[str]], None]
    served: bool
    """Whether the dead run's release serves by the time the next deploy starts (its
    detached phases carried on): the next deploy then finishes it without rolling again."""
    overrides: dict[str, Any] = field(default_factory=dict)
    via_relay: bool = False
    dead_log: str | None = None
    """What the dead run's last phase log ends with: it ran to its end without a client."""


POINTS = [
    Point("upload", _kill_in_upload, served=False, via_relay=True),
    Point("migration", _kill_in_phase("migrate"), served=False,
          overrides={"app": {"env": {"MIGRATE_SECONDS": "3"}}}, dead_log="@migrate-exit 0"),
    Point("scale-up", _kill_in_phase("roll_up"), served=True, dead_log="@healthy"),
    Point("drain", _kill_in_phase("roll_drain"), served=True, dead_log="@stopped"),
    Point("before-switch", _kill_after_drain, served=True,
          overrides={"deploy": {"smoke": {"checks": 10}}}, dead_log="@stopped"),
]


@pytest.mark.parametrize("point", POINTS, ids=[p.name for p in POINTS])
def test_a_killed_deploy_is_taken_over_and_converges(bench: Bench, point: Point) -> None:
    stack = bench.stack
    before, current = bench.serving(), stack.current()
    target = "v2" if before == "v1" else "v1"
    env = bench.env(f"kill-{point.name}", point.overrides)
    killed_env = (bench.env(f"kill-{point.name}-relay", point.overrides, via_relay=True)
                  if point.via_relay else env)
    releases = set(stack.releases())
    started = time.monotonic()
    with LoadGenerator(f"{bench.front.url}/version", host=DOMAIN, rate=RATE,
                       max_seconds=400) as load:
        proc = stack.popen("deploy", "--yes", f"--version={target}", env=killed_env)
        try:
            point.kill(bench, proc)
        finally:
            proc.kill()
            dying, _ = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL, dying
        if point.name == "upload":
            wait_for(lambda: set(stack.releases()) == releases, 10,
                     "the cut-off upload to clean up after itself")
            assert not (stack.app_dir / "lock" / "phase.log").exists(), \
                "killed during the upload: no later step may have begun"
        if point.name == "before-switch":
            _status_shows_the_dead_run(stack, current, target)
        again = stack.inv("deploy", "--yes", "--lock-wait=120", f"--version={target}", env=env)
        elapsed = load.now()
    text = output(again)
    print(f"killed during {point.name}: converged {time.monotonic() - started:.0f}s after the "
          f"kill's deploy started; {load.summary()}")
    assert again.returncode == 0, text
    assert not load.failures(), load.summary() + "\n" + bench.front.summary()
    assert len(load.results()) >= RATE * elapsed * 0.8, load.summary()

    assert "took over the stale lock of" in text and f"pid {proc.pid}" in text, text
    assert stack.all_serving(f"{APP}:{target}") and not stack.locked()
    assert stack.current() is not None and stack.current().endswith(f"-{target}")
    assert not [r for r in stack.releases() if r.startswith(".incoming-")]
    took = [e for e in stack.audit() if e["action"] == "lock.takeover"][-1]
    assert took["result"] == "taken-over" and took["holder"]["pid"] == proc.pid
    assert took["stale_for"] > STALE_AFTER

    dead = stack.app_dir / "lock.dead"
    if point.dead_log is not None:
        assert point.dead_log in (dead / "phase.log").read_text(), \
            "the detached phase ran to its end without its client"
    last = stack.audit()[-1]
    if point.served:
        assert "web: start" not in text, "the dead run's roll must not be repeated:\n" + text
        recovered = [e for e in stack.audit() if e["action"] == "recover"][-1]
        assert recovered["result"] == "success" and recovered["release"] == stack.current()
        assert recovered["previous"] == current
        assert (last["action"], last["result"]) == ("deploy", "no-change")
        word = "rolling forward" if point.name == "scale-up" else "finishing it"
        assert word in text, text
    else:
        assert "nothing to finish; going on from there" in text, text
        assert "web: start" in text
        assert (last["action"], last["result"]) == ("deploy", "success")
        assert stack.current() not in releases


def _status_shows_the_dead_run(stack: Stack, current: str | None, target: str) -> None:
    """What an operator sees before anyone acts: `current` names the old release while the
    containers run the new one, and, once its heartbeats are old enough, a stale lock."""
    wait_for(lambda: stack.all_serving(f"{APP}:{target}"), 60, "the new containers")
    serving = {c["config"].rsplit("/", 2)[-2] for c in stack.containers()}
    assert len(serving) == 1 and current not in serving
    time.sleep(STALE_AFTER + 1)
    status = stack.inv("status")
    assert status.returncode == 0, output(status)
    text = " ".join(output(status).split())
    assert (f"`current` says {current}, the containers run {serving.pop()}: a deploy was "
            "interrupted") in text, text
    locks = stack.inv("lock.status", extra_env={"COLUMNS": "400"})
    text = " ".join(output(locks).split())
    assert "stale" in text and "no heartbeat for" in text, text
