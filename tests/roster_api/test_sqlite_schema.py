"""The app's schema on SQLite is exactly the generated roster.db's, and such a file (made before
Alembic) is adopted by `alembic upgrade head` and served by the app.

Compared through SQLite's own PRAGMAs: SQLAlchemy's reflection misses what the generated file
declares inline (`email ... UNIQUE`, `REFERENCES ... ON DELETE CASCADE`), so
`compare_metadata` cannot judge this file (it does judge Alembic's own schemas, in the app's
tests and on PostgreSQL).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from roster_api.config import Settings
from roster_api.main import create_app
from tests.roster_api.support import ROSTER_TABLES, alembic, roster_copy, row_counts


def shape(db: Path, *, without: tuple[str, ...] = ()) -> dict[str, Any]:
    """Per table, what SQLite knows of it: columns (name, declared type, not null, default,
    primary-key position), indexes (origin, unique, columns; names of explicit ones), foreign
    keys (columns, parent, ON DELETE/UPDATE) and AUTOINCREMENT.

    The one liberty: an `INTEGER PRIMARY KEY` column (the rowid) counts as NOT NULL whether
    declared so or not (the generated file leaves it out, SQLAlchemy writes it); SQLite
    never stores NULL there either way.
    """
    out: dict[str, Any] = {}
    with sqlite3.connect(db) as conn:
        for table in ROSTER_TABLES:
            sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?",
                               (table,)).fetchone()[0]
            info = list(conn.execute(f'PRAGMA table_info("{table}")'))
            pks = [(name, decl.upper()) for _, name, decl, _, _, pk in info if pk]
            rowid = pks[0][0] if len(pks) == 1 and pks[0][1] == "INTEGER" else None
            columns = [(name, decl.upper(), notnull or name == rowid,
                        (default or "").strip("()"), pk)
                       for _, name, decl, notnull, default, pk in info
                       if f"{table}.{name}" not in without]
            indexes = sorted(
                (origin, unique, name if origin == "c" else "",
                 tuple(r[2] for r in conn.execute(f'PRAGMA index_info("{name}")')))
                for _, name, unique, origin, _ in conn.execute(f'PRAGMA index_list("{table}")')
                if name not in without)
            keys = sorted((fk[3], fk[2], fk[4], fk[5], fk[6])
                          for fk in conn.execute(f'PRAGMA foreign_key_list("{table}")'))
            out[table] = {"columns": columns, "indexes": indexes, "foreign_keys": keys,
                          "autoincrement": "AUTOINCREMENT" in sql.upper()}
    return out


def test_alembic_makes_exactly_the_generated_schema(tmp_path: Path) -> None:
    generated = roster_copy(tmp_path)
    made = tmp_path / "alembic.db"
    result = alembic(f"sqlite:///{made}", "upgrade", "0001")
    assert result.returncode == 0, result.stderr
    assert shape(made) == shape(generated)

    assert alembic(f"sqlite:///{made}", "upgrade", "head").returncode == 0
    assert shape(made, without=("people.phone", "ix_people_phone")) == shape(generated)


def test_a_generated_roster_db_is_adopted_and_served(tmp_path: Path) -> None:
    db = roster_copy(tmp_path)
    before = row_counts(db)

    result = alembic(f"sqlite:///{db}", "upgrade", "head")
    assert result.returncode == 0, result.stderr
    assert "Running upgrade  -> 0001" in result.stderr
    assert "Running upgrade 0001 -> 0002" in result.stderr
    assert row_counts(db) == before
    fresh = tmp_path / "fresh.db"
    assert alembic(f"sqlite:///{fresh}", "upgrade", "head").returncode == 0
    assert shape(db) == shape(fresh)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [("0002",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        last_person = conn.execute("SELECT max(id) FROM people").fetchone()[0]

    settings = Settings.from_env({"DATABASE_URL": f"sqlite:///{db}",
                                  "DRAIN_FILE": str(tmp_path / "drain")})
    with TestClient(create_app(settings)) as client:
        seen, path = 0, "/people?limit=100"
        while path:
            page = client.get(path)
            assert page.status_code == 200, page.text
            seen += len(page.json()["items"])
            path = page.json()["next"]
        assert seen == before["people"]
        for path in ("/events?limit=100", "/organizations", "/events/1/assignments"):
            assert client.get(path).status_code == 200, path
        org = client.get("/organizations?limit=1").json()["items"][0]["id"]
        created = client.post("/people", json={"org_id": org, "name": "New", "phone": "555-0100"})
        assert created.status_code == 201, created.text
        assert created.json()["id"] == last_person + 1
