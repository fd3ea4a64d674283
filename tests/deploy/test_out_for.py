"""`out_for` (lib.sh): whether containers have been out of the proxy's pool (unhealthy) long
enough that a drain need not wait for the proxy again. Real Docker, real health checks."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fabfile.config import Host
from fabfile.deploy import scripts
from fabfile.remote import LocalTransport, script
from tests.support.docker import DockerEngine, docker
from tests.support.images import ImageSet

pytestmark = pytest.mark.testbed


LIB = (Path(scripts.__file__).parent / "scripts" / "lib.sh").read_text()


def out_for(seconds: float, *ids: str) -> bool:
    step = script("out_for", LIB + '\nout_for "$@"\n', str(seconds), *ids, check=False)
    return LocalTransport(Host(address="localhost", transport="local")).probe(step).ok


@pytest.fixture
def containers(test_images: ImageSet, docker_engine: DockerEngine) -> Iterator[list[str]]:
    made: list[str] = []

    def run(check: str) -> str:
        made.append(docker("run", "-d", "--health-cmd", check, "--health-interval", "1s",
                           "--health-retries", "2", test_images.app_v1, "sleep", "60").strip())
        return made[-1]

    yield [run("false"), run("true")]
    docker("rm", "-f", *made, check=False)


def test_only_containers_failing_long_past_their_retries_count(containers: list[str]) -> None:
    failing, passing = containers
    deadline = time.monotonic() + 20
    while "unhealthy" not in docker("inspect", "-f", "{{.State.Health.Status}}", failing):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert not out_for(3, failing), "just turned unhealthy: the proxy may not have seen it"
    time.sleep(4.5)
    assert out_for(3, failing)
    assert not out_for(3, failing, passing), "a healthy one is in the pool"
    assert not out_for(3, "no-such-container")
