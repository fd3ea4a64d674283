"""/health as the rolling deploy reads it, and /version."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from roster_testing import make_settings

from roster_api.config import Settings
from roster_api.main import create_app

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations" / "versions"


def test_healthy_when_the_database_answers(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}
    assert response.headers["cache-control"] == "no-store"


def test_draining_when_the_drain_file_exists(client: TestClient, tmp_path: Path) -> None:
    (tmp_path / "drain").touch()
    response = client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == "draining"
    assert str(tmp_path / "drain") in body["detail"]
    (tmp_path / "drain").unlink()
    assert client.get("/health").status_code == 200


def test_database_that_cannot_be_opened(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "no-such-dir" / "roster.db", tmp_path)
    with TestClient(create_app(settings)) as client:
        response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["failing"] == "database"
    assert "unable to open database file" in response.json()["detail"]


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word: a hung database."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


def test_database_that_never_answers_fails_within_the_timeout(
        silent_server: int, tmp_path: Path) -> None:
    settings = Settings.from_env({
        "DATABASE_URL": f"postgresql://app@127.0.0.1:{silent_server}/roster?connect_timeout=10",
        "HEALTH_DB_TIMEOUT": "0.3", "DRAIN_FILE": str(tmp_path / "drain")})
    with TestClient(create_app(settings)) as client:
        for _ in range(3):  # later checks wait on the same stuck probe, never longer
            started = time.monotonic()
            response = client.get("/health")
            elapsed = time.monotonic() - started
            assert response.status_code == 503
            assert response.json() == {"status": "unavailable", "failing": "database",
                                       "detail": "no answer to SELECT 1 within 0.3 s"}
            assert elapsed < 3, "bounded by HEALTH_DB_TIMEOUT, not by connect_timeout"


def test_version_names_the_release_and_the_schema_it_expects(
        db: Path, tmp_path: Path) -> None:
    newest = max(path.name.split("_", 1)[0] for path in MIGRATIONS.glob("0*.py"))
    with TestClient(create_app(make_settings(db, tmp_path, APP_VERSION="v42"))) as client:
        response = client.get("/version")
    assert response.status_code == 200
    assert response.json() == {"version": "v42", "alembic_head": newest}


def test_api_answers_503_while_the_database_is_unavailable(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "no-such-dir" / "roster.db", tmp_path)
    with TestClient(create_app(settings)) as client:
        response = client.get("/people")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json() == {"detail": "the database is unavailable, try again shortly"}
