"""The roster migrations against the test bed's PostgreSQL: from empty, the types the SQLite
migrator expects, a roster.db copied into Alembic's schema, adoption, and 0002 both ways."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi.testclient import TestClient

from fabfile.migrate.engine import MigrateOptions, migrate
from fabfile.migrate.typemap import map_declared
from roster_api.config import Settings, database_url
from roster_api.db import make_engine
from roster_api.main import create_app
from roster_api.models import Base
from tests.backup.roster import fingerprint, load_roster
from tests.roster_api.support import ROSTER_TABLES, alembic, roster_copy, row_counts

pytestmark = pytest.mark.testbed


def pg_columns(url: str) -> dict[tuple[str, str], tuple[str, bool]]:
    """(table, column) -> (format_type, NOT NULL) of every roster column."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull "
            "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 "
            "AND NOT a.attisdropped AND c.relname = ANY(%s)", (list(ROSTER_TABLES),)).fetchall()
    return {(t, c): (ty, nn) for t, c, ty, nn in rows}


def sqlite_columns(db: Path) -> dict[tuple[str, str], tuple[str, bool]]:
    """(table, column) -> (the type `db.migrate-from-sqlite` creates, NOT NULL)."""
    out = {}
    with sqlite3.connect(db) as conn:
        for table in ROSTER_TABLES:
            for _, name, decl, notnull, _, pk in conn.execute(f'PRAGMA table_info("{table}")'):
                pg_type = map_declared(decl).sql.replace("varchar(", "character varying(")
                out[(table, name)] = (pg_type, bool(notnull or pk))
    return out


def head(url: str) -> None:
    result = alembic(url, "upgrade", "head")
    assert result.returncode == 0, result.stderr


def test_upgrade_from_empty_gives_the_migrators_types(pg_db: str, tmp_path: Path) -> None:
    head(pg_db)
    made = pg_columns(pg_db)
    assert made.pop(("people", "phone")) == ("character varying(32)", False)
    assert made == sqlite_columns(roster_copy(tmp_path))

    engine = make_engine(database_url(pg_db), pooled=False)
    with engine.connect() as conn:
        assert list(compare_metadata(MigrationContext.configure(conn), Base.metadata)) == []
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).all() == [
            ("0002",)]
        with_ids = [t for t in ROSTER_TABLES if t not in ("organizations", "team_members")]
        serials = conn.execute(sa.text(
            "SELECT t FROM unnest(CAST(:t AS text[])) AS t "
            "WHERE pg_get_serial_sequence(t, 'id') IS NOT NULL"), {"t": with_ids}).scalars()
        assert sorted(serials) == sorted(with_ids), "ids the migrator's setval can advance"
    engine.dispose()


def test_the_migrator_accepts_the_alembic_schema_as_its_target(
        pg_db: str, tmp_path: Path) -> None:
    """`db.migrate-from-sqlite --schema=existing --dry-run`: every column of the roster.db has
    its twin in Alembic's tables, the rest are nullable, and every row passes the preflight."""
    head(pg_db)
    report = migrate(roster_copy(tmp_path), pg_db,
                     MigrateOptions(jobs=2, schema="existing", dry_run=True))
    assert report.ok, report.error
    assert report.bad_rows == []


def test_a_roster_db_copies_into_the_alembic_schema_and_is_served(
        pg_db: str, tmp_path: Path) -> None:
    """The cutover's path: `db.migrate-from-sqlite --schema=existing` into what Alembic made,
    verified by checksums, then the app on PostgreSQL writes new rows after the copied ones."""
    head(pg_db)
    db = roster_copy(tmp_path)
    report = migrate(db, pg_db, MigrateOptions(jobs=2, schema="existing"))
    assert report.ok, report.error
    counts = row_counts(db)
    assert {t: n for t, (n, _) in fingerprint(pg_db).items() if t in ROSTER_TABLES} == counts

    settings = Settings.from_env({"DATABASE_URL": pg_db, "DRAIN_FILE": str(tmp_path / "d")})
    with TestClient(create_app(settings)) as client:
        assert client.get("/health").json() == {"status": "ok", "database": "ok"}
        first = client.get("/people?limit=100").json()
        assert len(first["items"]) == 100 and first["next_after"] == first["items"][-1]["id"]
        org = first["items"][0]["org_id"]
        person = client.post("/people", json={"org_id": org, "name": "New",
                                              "phone": "+1 555 0100"})
        assert person.status_code == 201, person.text
        assert person.json()["id"] == counts["people"] + 1
        event = client.post("/events", json={"org_id": org, "type": "service",
                                              "start_time": "2025-01-05T10:00:00",
                                              "end_time": "2025-01-05T11:00:00",
                                              "price": "3.5"})
        assert event.status_code == 201 and event.json()["price"] == "3.50"
        assigned = client.post(f"/events/{event.json()['id']}/assignments",
                               json={"person_id": person.json()["id"]})
        assert assigned.status_code == 201
        assert assigned.json()["id"] == counts["assignments"] + 1


def test_a_postgres_roster_made_before_alembic_is_adopted(pg_db: str, tmp_path: Path) -> None:
    load_roster(roster_copy(tmp_path), pg_db)
    before = fingerprint(pg_db)
    result = alembic(pg_db, "upgrade", "head")
    assert result.returncode == 0, result.stderr
    after = fingerprint(pg_db)
    assert {t: after[t][0] for t in ROSTER_TABLES} == {t: before[t][0] for t in ROSTER_TABLES}
    assert ("people", "phone") in pg_columns(pg_db)


def test_a_partial_roster_is_refused_with_one_clear_message(pg_db: str) -> None:
    with psycopg.connect(pg_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE organizations (id varchar(64) PRIMARY KEY)")
        conn.execute("INSERT INTO organizations VALUES ('o1')")
    result = alembic(pg_db, "upgrade", "head")
    assert result.returncode != 0
    assert "FAILED: cannot adopt this database: it has the roster tables organizations but " \
           "not people, teams" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    with psycopg.connect(pg_db) as conn:
        assert conn.execute("SELECT id FROM organizations").fetchall() == [("o1",)]
        assert conn.execute("SELECT to_regclass('people')").fetchone() == (None,)


def test_0002_downgrades_and_upgrades_again(pg_db: str) -> None:
    head(pg_db)
    with psycopg.connect(pg_db, autocommit=True) as conn:
        conn.execute("INSERT INTO organizations VALUES ('o1', 'G', NULL, NULL, now())")
        conn.execute("INSERT INTO people (org_id, name, phone) VALUES ('o1', 'Ana', '555')")

    result = alembic(pg_db, "downgrade", "0001")
    assert result.returncode == 0, result.stderr
    assert ("people", "phone") not in pg_columns(pg_db)
    with psycopg.connect(pg_db) as conn:
        assert conn.execute("SELECT to_regclass('ix_people_phone')").fetchone() == (None,)
        assert conn.execute("SELECT name FROM people").fetchall() == [("Ana",)]
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [("0001",)]

    head(pg_db)
    with psycopg.connect(pg_db) as conn:
        assert conn.execute("SELECT to_regclass('ix_people_phone')").fetchone() != (None,)
        assert conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = "
                            "'ix_people_phone'::regclass").fetchone() == (True,)


def test_an_unreachable_database_is_one_clear_message(pg: object) -> None:
    result = alembic("postgresql://app:s3cret@127.0.0.1:1/roster", "upgrade", "head")
    assert result.returncode != 0
    assert "FAILED: cannot connect to postgresql+psycopg://app:***@127.0.0.1:1/roster" \
        in result.stdout
    output = result.stdout + result.stderr
    assert "s3cret" not in output and "Traceback" not in output
