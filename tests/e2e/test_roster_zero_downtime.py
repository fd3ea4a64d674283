"""The team's app, rolled under load: the roster app (FastAPI; its image has no wget or curl,
so the default healthcheck is Python's urllib) on SQLite on the sshd host, behind the Traefik
stand-in, with a bounded load on its API (`/people`, not only the health path).

Rolling deploys between two builds, then a build whose /health passes but whose API answers
500 (`roster:broken-api`): the deploy holds its new containers out of the pool, verifies
`deploy.verify.paths` on each, and retires them before any old container is touched. Then
`inv rollback`. No request fails at any point. The control: without the hold, the same
broken build fails requests, so this test can fail."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fabfile.deploy.rollout import SKIP_HOLD_VAR
from tests.deploy.stack import DOMAIN, Stack, output
from tests.support.docker import DockerEngine, docker
from tests.support.front import Front
from tests.support.images import ImageSet
from tests.support.load import LoadGenerator
from tests.support.sshd import SshHost

pytestmark = pytest.mark.e2e

RATE = 20.0
THROTTLE = 2.0
ROSTER = "shipyard-test/roster"


@dataclass
class Roster:
    stack: Stack
    front: Front
    tags: dict[str, str]

    def deploy(self, name: str) -> tuple[int, str]:
        proc = self.stack.inv("deploy", "--yes", f"--version={self.tags[name]}")
        return proc.returncode, output(proc)

    def serving(self, name: str) -> bool:
        return self.stack.all_serving(f"{ROSTER}:{self.tags[name]}")


@pytest.fixture
def roster(ssh_host: SshHost, test_images: ImageSet, docker_engine: DockerEngine,
           tmp_path: Path, make_front: Callable[..., Front]) -> Iterator[Roster]:
    """Builds `a` and `b` (the v2 image under two tags: the deploy reports the tag as the
    version) and `broken` (broken-api); `a` deployed and served through the front."""
    stack = Stack.create(tmp_path, ssh_host)
    tags = {name: f"{stack.project}-{name}" for name in ("a", "b", "broken")}
    docker("tag", test_images.roster_v2, f"{ROSTER}:{tags['a']}")
    docker("tag", test_images.roster_v2, f"{ROSTER}:{tags['b']}")
    docker("tag", test_images.roster_broken_api, f"{ROSTER}:{tags['broken']}")
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o777)
    try:
        assert stack.inv("setup").returncode == 0
        front = make_front(project=stack.project, throttle=THROTTLE, network=stack.network)
        stack.write_env(overrides={
            "app": {"image": ROSTER, "tag": tags["a"],
                    "migrate_command": ["alembic", "upgrade", "head"],
                    "healthcheck": {"command": None, "timeout": 3, "start_period": 15},
                    "resources": {"cpus": 1.0, "memory": "256m"},
                    "env": {"WEB_CONCURRENCY": "1"}},
            "database": {"backend": "sqlite", "sqlite_path": str(data / "roster.db")},
            "deploy": {"traefik_throttle": THROTTLE, "drain_margin": 1.0,
                       "verify": {"paths": ["/health", "/people?limit=1"]},
                       "smoke": {"urls": [f"{front.url}/health"], "host_header": DOMAIN}}})
        r = Roster(stack, front, tags)
        code, text = r.deploy("a")
        assert code == 0, text
        front.wait_for(lambda t: len(t.servers_for(DOMAIN)) == 2, timeout=30)
        yield r
    finally:
        stack.cleanup()
        for tag in tags.values():
            docker("rmi", f"{ROSTER}:{tag}", check=False)


def test_deploys_a_build_failing_its_api_and_a_rollback_fail_no_request(roster: Roster) -> None:
    with LoadGenerator(f"{roster.front.url}/people?limit=1", host=DOMAIN, rate=RATE,
                       max_seconds=600) as load:
        for name in ("b", "a", "b"):
            code, text = roster.deploy(name)
            assert code == 0, text
            assert roster.serving(name)
        code, text = roster.deploy("broken")
        assert code == 1
        assert (f"{roster.tags['broken']} failed its verification on root@127.0.0.1:"
                in text), text
        assert "GET /people?limit=1 from new container" in text and "got HTTP 500" in text
        assert roster.serving("b"), "the old version keeps serving"
        back = roster.stack.inv("rollback", "--yes")
        assert back.returncode == 0, output(back)
        assert roster.serving("a")
        elapsed = load.now()
    print(f"{elapsed:.0f}s of load on the API: {load.summary()}")
    assert not load.failures(), load.summary() + "\n" + roster.front.summary()
    assert len(load.results()) >= RATE * elapsed * 0.9, load.summary()
    last = roster.stack.audit()[-2]
    assert last["result"] == "failed" and "GET /people?limit=1" in last["message"]


def test_the_stand_in_fails_api_requests_when_new_containers_are_not_held(
        roster: Roster) -> None:
    """The control: admitted as soon as healthy (`SHIPYARD_UNSAFE_SKIP_HOLD`, test-only), the
    build failing its API takes traffic until its verification retires it."""
    with LoadGenerator(f"{roster.front.url}/people?limit=1", host=DOMAIN, rate=RATE,
                       max_seconds=300) as load:
        proc = roster.stack.inv("deploy", "--yes", f"--version={roster.tags['broken']}",
                                extra_env={SKIP_HOLD_VAR: "1"})
        assert proc.returncode == 1 and "failed its verification" in proc.stderr, output(proc)
        assert "BEFORE they are verified" in proc.stdout
    print(f"without the hold: {load.summary()}")
    assert {r.status for r in load.failures()} == {500}, load.summary()
    assert roster.serving("a")
