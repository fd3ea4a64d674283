"""Zero failed requests: a bounded load (25 requests/s, loopback) through the Traefik
stand-in (`tests/support/front.py`: routes to healthy containers only, refreshes on
start/die/health_status events after a 2 s throttle) while `inv deploy` rolls the app ten
times between two versions, fails on a version that never turns healthy, is rolled back by
`inv rollback`, and rolls itself back after a failed smoke test.

The self-healing watcher runs throughout, set to restart a container 1 s after it turns
unhealthy: it sees every drained and every broken container, and must restart none of them.

The control: the same load while the drain is skipped (`SHIPYARD_UNSAFE_SKIP_DRAIN=1`, a
test-only switch) must fail requests, so this test can fail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fabfile.deploy.rollout import SKIP_DRAIN_VAR
from tests.deploy.stack import APP, DOMAIN, Stack, output
from tests.support.docker import DockerEngine
from tests.support.front import Front
from tests.support.heal import watcher_pid
from tests.support.images import ImageSet
from tests.support.load import LoadGenerator
from tests.support.sshd import SshHost

pytestmark = pytest.mark.e2e

RATE = 25.0
THROTTLE = 2.0


@pytest.fixture
def served(ssh_host: SshHost, test_images: ImageSet, docker_engine: DockerEngine,
           tmp_path: Path, make_front: Callable[..., Front]) -> Iterator[tuple[Stack, Front]]:
    """v1 deployed (no migrations: they are not what is measured), behind a started front
    that the smoke test checks through."""
    stack = Stack.create(tmp_path, ssh_host)
    try:
        assert stack.inv("setup").returncode == 0
        front = make_front(project=stack.project, throttle=THROTTLE, network=stack.network)
        stack.write_env(overrides={
            "app": {"migrate_command": [], "healthcheck": {"restart_after": 1}},
            "deploy": {"traefik_throttle": THROTTLE, "drain_margin": 1.0, "smoke": {
                "urls": [f"{front.url}/health"], "host_header": DOMAIN}}})
        first = stack.inv("deploy", "--yes")
        assert first.returncode == 0, output(first)
        front.wait_for(lambda t: len(t.servers_for(DOMAIN)) == 2, timeout=30)
        yield stack, front
    finally:
        stack.cleanup()


def test_zero_failed_requests_through_deploys_a_failure_and_rollbacks(
        served: tuple[Stack, Front]) -> None:
    stack, front = served
    smoke_fails = stack.write_env("smokefail", {
        "app": {"migrate_command": [], "healthcheck": {"restart_after": 1}},
        "deploy": {"traefik_throttle": THROTTLE, "drain_margin": 1.0, "smoke": {
            "urls": [f"{front.url}/health"], "host_header": "nowhere.test"}}})
    runs: list[tuple[str, int]] = []
    with LoadGenerator(f"{front.url}/version", host=DOMAIN, rate=RATE, max_seconds=900) as load:
        for i in range(10):
            version = "v2" if i % 2 == 0 else "v1"
            proc = stack.inv("deploy", "--yes", f"--version={version}")
            assert proc.returncode == 0, output(proc)
            runs.append((f"deploy {version}", proc.returncode))
        broken = stack.inv("deploy", "--yes", "--version=broken")
        assert broken.returncode == 1 and "never turned healthy" in broken.stderr
        back = stack.inv("rollback", "--yes")
        assert back.returncode == 0, output(back)
        assert stack.all_serving(f"{APP}:v2")
        auto = stack.inv("deploy", "--yes", "--version=v1", env=smoke_fails)
        assert auto.returncode == 1 and "Rolled back to" in auto.stderr, output(auto)
        assert stack.all_serving(f"{APP}:v2")
        elapsed = load.now()
    results = load.results()
    print(f"with the drain, {elapsed:.0f}s of load: {load.summary()}")
    assert not load.failures(), load.summary() + "\n" + front.summary()
    assert len(results) >= 20 * elapsed * 0.9, load.summary()
    assert load.versions_seen() == {"v1", "v2"}
    assert watcher_pid(stack.app_dir) is not None, "the self-healing watcher stopped"
    assert [a for a in stack.audit() if a["action"] == "heal"] == []
    log = (stack.app_dir / "heal" / "watch.log").read_text()
    assert "restarted" not in log and "gave up" not in log, log
    assert "the deploy lock is held" in log, log


def test_the_stand_in_fails_requests_when_the_drain_is_skipped(
        served: tuple[Stack, Front]) -> None:
    stack, front = served
    with LoadGenerator(f"{front.url}/version", host=DOMAIN, rate=RATE, max_seconds=300) as load:
        for version in ("v2", "v1"):
            proc = stack.inv("deploy", "--yes", f"--version={version}",
                             extra_env={SKIP_DRAIN_VAR: "1"})
            assert proc.returncode == 0, output(proc)
            assert "WITHOUT draining" in proc.stdout
    print(f"without the drain: {load.summary()}")
    assert load.failures(), "skipping the drain should have failed requests: " + load.summary()
