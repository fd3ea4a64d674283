"""Session fixtures for the real parts of the test bed; the guard keeping unit tests off SSH."""

from __future__ import annotations

from collections.abc import Iterator

import paramiko
import pytest

from tests.support.postgres import PgCluster, cluster_fixture


@pytest.fixture(scope="session")
def pg() -> Iterator[PgCluster]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (trust auth) for the whole session."""
    yield from cluster_fixture()


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
