"""Session fixtures for the real parts of the test bed; the guard keeping unit tests off SSH."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import paramiko
import pytest

from tests.support.disk import small_disk as _small_disk
from tests.support.docker import DockerEngine, ensure_docker
from tests.support.front import Front
from tests.support.heal import stop_watchers_under
from tests.support.images import ImageSet, ensure_images
from tests.support.postgres import PgCluster, cluster_fixture
from tests.support.registry import Registry, start_registry
from tests.support.s3 import S3Server, start_s3_server
from tests.support.sshd import SshHost, sshd_fixture
from tests.support.swarm import SwarmBed
from tests.support.swarm_front import SwarmFront


@pytest.fixture(scope="session")
def pg() -> Iterator[PgCluster]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (trust auth) for the whole session."""
    yield from cluster_fixture()


@pytest.fixture(scope="session")
def tls_pg() -> Iterator[PgCluster]:
    """A second throwaway cluster that also speaks TLS (self-signed), like a managed database.

    Separate from `pg`, so tests that need a server without TLS keep having one.
    """
    yield from cluster_fixture(tls=True)


@pytest.fixture(scope="session")
def managed_pg() -> Iterator[PgCluster]:
    """A cluster playing a managed database on another machine: TLS, in a network namespace
    of its own, reached by this machine and by containers alike at `managed_pg.host`."""
    yield from cluster_fixture(tls=True, remote=True)


@pytest.fixture
def pg_db(pg: PgCluster) -> Iterator[str]:
    """URL of a fresh, empty database, dropped after the test."""
    url = pg.create_database()
    yield url
    pg.drop_database(url)


@pytest.fixture(autouse=True)
def _no_real_ssh(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests may not open SSH connections; tests marked `testbed` or `e2e` may."""
    if request.node.get_closest_marker("testbed") or request.node.get_closest_marker("e2e"):
        return

    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a unit test tried to open an SSH connection: mark it `testbed`")

    monkeypatch.setattr(paramiko.SSHClient, "connect", refuse)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI (CI=true) a skipped test fails the run: everything a test needs is provided."""
    import os

    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if os.environ.get("CI") and skipped and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if reporter:
            reporter.write_line(f"CI: {len(skipped)} test(s) skipped; CI allows none", red=True)


@pytest.fixture(scope="session", autouse=True)
def _stop_watchers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The self-healing watchers `inv setup`/`inv deploy` started under this session's
    temporary directories are stopped at its end (by their pid files)."""
    yield
    stop_watchers_under(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session")
def docker_engine() -> DockerEngine:
    """The local Docker Engine with Compose v2; started if needed and left running."""
    return ensure_docker()


@pytest.fixture(scope="session")
def test_images(docker_engine: DockerEngine) -> ImageSet:
    """The fake app (`shipyard-test/app:*`) and `postgres:15` images, built when missing."""
    return ensure_images()


@pytest.fixture(scope="session")
def ssh_host() -> Iterator[SshHost]:
    """A throwaway sshd on 127.0.0.1 that lets root in with a throwaway key."""
    yield from sshd_fixture()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 API on 127.0.0.1 for the whole session."""
    server = start_s3_server()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def registry(docker_engine: DockerEngine) -> Iterator[Registry]:
    """A real registry (distribution 2.8) on 127.0.0.1: TLS from its own CA, which dockerd
    trusts, and htpasswd authentication."""
    reg = start_registry()
    yield reg
    reg.stop()


@pytest.fixture
def small_disk() -> Iterator[Callable[[str], Path]]:
    """Factory: `small_disk("2m")` mounts a tmpfs of that size and returns its directory."""
    with ExitStack() as stack:
        yield lambda size: stack.enter_context(_small_disk(size))


@pytest.fixture
def make_front(docker_engine: DockerEngine) -> Iterator[Callable[..., Front]]:
    """Factory: `make_front(project=..., throttle=2.0)` starts the Traefik stand-in
    (`tests/support/front.py`) on 127.0.0.1; every front it made is stopped after the test."""
    fronts: list[Front] = []

    def make(**kwargs: Any) -> Front:
        front = Front(**kwargs)
        fronts.append(front)
        return front.start()

    yield make
    for front in fronts:
        front.stop()


@pytest.fixture(scope="session")
def swarm_bed(test_images: ImageSet) -> Iterator[SwarmBed]:
    """Three Docker engines, each in its own network namespace with its own sshd, on one
    segment, the app's images loaded; not in a swarm yet (`tests/support/swarm.py`)."""
    bed = SwarmBed.create(3, images=[test_images.app_v1, test_images.app_v2,
                                     test_images.app_broken, test_images.app_slow])
    yield bed
    bed.close()


@pytest.fixture
def make_swarm_front(swarm_bed: SwarmBed) -> Iterator[Callable[..., SwarmFront]]:
    """Factory: `make_swarm_front(network=NET, project=STACK, refresh=2, throttle=1)` starts the
    stand-in for Traefik's Swarm provider (`tests/support/swarm_front.py`) on 127.0.0.1,
    polling the bed's first node (a manager) and dialing tasks from an idle container it puts
    on the overlay `network`; each is stopped and its container removed after the test."""
    made: list[tuple[SwarmFront, str]] = []
    manager = swarm_bed.nodes[0]

    def make(*, network: str, **kwargs: Any) -> SwarmFront:
        cid, netns = manager.idle_container(network, "shipyard-test/app:v1")
        front = SwarmFront(manager_socket=str(manager.socket), dial_from=netns, **kwargs)
        made.append((front, cid))
        return front.start()

    yield make
    for front, cid in made:
        front.stop()
        manager.docker("rm", "-f", cid, check=False)
