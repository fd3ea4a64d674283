"""Alembic on SQLite: from empty, adopting a roster.db made before Alembic, refusing the rest.

The same revisions against PostgreSQL, and the adoption of a real generated roster.db, are
tested in the project's suite (tests/roster_api/).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.util import CommandError
from roster_testing import alembic, migrate, sqlite_url

from roster_api.db import make_engine
from roster_api.models import Base
from roster_api.revisions import expected_head

ROSTER_TABLES = {"organizations", "people", "teams", "team_members", "events", "assignments",
                 "availability_exceptions", "audit_logs", "attachments"}


def tables(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}


def revision(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT version_num FROM alembic_version")]


def differences(db: Path) -> list[object]:
    """What `alembic revision --autogenerate` would find between the models and `db`."""
    engine = make_engine(sa.make_url(sqlite_url(db)), pooled=False)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    return list(diff)


def pre_alembic(db: Path) -> None:
    """A roster.db as the app made it before Alembic: the 0001 tables, some rows, no
    alembic_version."""
    migrate(sqlite_url(db), "0001")
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE alembic_version")
        conn.execute("INSERT INTO organizations VALUES ('o1', 'Grace', NULL, NULL, "
                     "'2024-01-01 08:00:00')")
        conn.execute("INSERT INTO people (org_id, name) VALUES ('o1', 'Ana')")


def test_upgrade_from_empty_creates_the_models_schema(tmp_path: Path) -> None:
    db = tmp_path / "roster.db"
    migrate(sqlite_url(db))
    assert tables(db) == ROSTER_TABLES | {"alembic_version"}
    assert revision(db) == [expected_head()]
    assert differences(db) == []
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_roster_db_made_before_alembic_is_adopted(tmp_path: Path) -> None:
    db = tmp_path / "roster.db"
    pre_alembic(db)
    migrate(sqlite_url(db))
    assert revision(db) == [expected_head()]
    assert differences(db) == []
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT org_id, name, is_active, language FROM people").fetchall() \
            == [("o1", "Ana", 1, "en")]


def test_a_partial_roster_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    db = tmp_path / "roster.db"
    pre_alembic(db)
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE attachments")
        conn.execute("DROP TABLE audit_logs")
    with pytest.raises(CommandError, match=r"cannot adopt this database: it has the roster "
                       r"tables .* but not audit_logs, attachments"):
        migrate(sqlite_url(db))
    assert tables(db) - {"alembic_version"} == ROSTER_TABLES - {"audit_logs", "attachments"}
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM people").fetchone() == (1,)


def test_a_roster_missing_columns_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "roster.db"
    pre_alembic(db)
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE attachments DROP COLUMN content")
    with pytest.raises(CommandError, match=r"lack the columns attachments\.content"):
        migrate(sqlite_url(db))


def test_downgrading_the_first_revision_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "roster.db"
    migrate(sqlite_url(db), "0001")
    with pytest.raises(CommandError, match="would drop every table"):
        command.downgrade(alembic(sqlite_url(db)), "base")
    assert tables(db) >= ROSTER_TABLES


def test_a_missing_database_url_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(CommandError, match="DATABASE_URL is not set"):
        command.upgrade(alembic(None), "head")
