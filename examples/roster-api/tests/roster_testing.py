"""Helpers shared by the roster API's tests (fixtures are in conftest.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from fastapi.testclient import TestClient

from roster_api.config import Settings
from roster_api.revisions import alembic_config


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def alembic(url: str | None) -> Config:
    """The app's Alembic config on `url` (None: DATABASE_URL), leaving logging alone."""
    config = alembic_config(url)
    config.attributes["configure_logger"] = False
    return config


def migrate(url: str, revision: str = "head") -> None:
    """`alembic upgrade REVISION` on `url`, as the image's migrate command does it."""
    command.upgrade(alembic(url), revision)


def make_settings(db: Path, tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"DATABASE_URL": sqlite_url(db),
                              "DRAIN_FILE": str(tmp_path / "drain"), **env})


def create(client: TestClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(path, json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data
