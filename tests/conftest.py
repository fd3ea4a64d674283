"""Session fixtures for the real parts of the test bed, and the guard that keeps unit tests off SSH."""

from __future__ import annotations

from collections.abc import Iterator

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
