"""Fixtures of the roster API's own tests: a migrated SQLite database per test, the app on it."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from roster_testing import make_settings, migrate, sqlite_url

from roster_api.main import create_app


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database at head, made once; tests get copies."""
    path = tmp_path_factory.mktemp("template") / "roster.db"
    migrate(sqlite_url(path))
    return path


@pytest.fixture
def db(migrated_template: Path, tmp_path: Path) -> Path:
    path = tmp_path / "roster.db"
    with sqlite3.connect(migrated_template) as src, sqlite3.connect(path) as dst:
        src.backup(dst)
    return path


@pytest.fixture
def app_env() -> dict[str, str]:
    """Extra environment for the `client` fixture's app (override in a test module)."""
    return {}


@pytest.fixture
def client(db: Path, tmp_path: Path, app_env: dict[str, str]) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(db, tmp_path, **app_env))) as test_client:
        yield test_client


@pytest.fixture
def org(client: TestClient) -> str:
    created = client.post("/organizations", json={"id": "org_a", "name": "Grace Church"})
    assert created.status_code == 201, created.text
    return "org_a"

