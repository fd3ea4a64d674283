# since 0002
"""Revision 0002's feature: people.phone (stored, filtered on, validated) and its migration."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic import command
from fastapi.testclient import TestClient
from roster_testing import alembic, create, migrate, sqlite_url


def test_phone_is_stored_and_filtered_on(client: TestClient, org: str) -> None:
    ana = create(client, "/people", {"org_id": org, "name": "Ana", "phone": "+33 1 23 45 67 89"})
    create(client, "/people", {"org_id": org, "name": "Bo", "phone": "555-0100"})
    create(client, "/people", {"org_id": org, "name": "Cy"})
    assert ana["phone"] == "+33 1 23 45 67 89"
    found = client.get("/people", params={"phone": "+33 1 23 45 67 89"}).json()["items"]
    assert [p["id"] for p in found] == [ana["id"]]
    assert len(client.get("/people").json()["items"]) == 3


def test_an_invalid_phone_is_a_422(client: TestClient, org: str) -> None:
    for phone in ("call me", "1" * 40, "+"):
        body = {"org_id": org, "name": "Ana", "phone": phone}
        assert client.post("/people", json=body).status_code == 422, phone


def test_0002_adds_the_column_and_index_and_downgrades_cleanly(tmp_path: Path) -> None:
    db = tmp_path / "roster.db"
    migrate(sqlite_url(db), "0001")
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO organizations VALUES ('o1', 'G', NULL, NULL, '2024-01-01')")
        conn.execute("INSERT INTO people (org_id, name) VALUES ('o1', 'Ana')")
    migrate(sqlite_url(db), "0002")
    with sqlite3.connect(db) as conn:
        assert "phone" in [r[1] for r in conn.execute("PRAGMA table_info(people)")]
        assert "ix_people_phone" in [r[1] for r in conn.execute("PRAGMA index_list(people)")]
        assert conn.execute("SELECT name, phone FROM people").fetchall() == [("Ana", None)]
    command.downgrade(alembic(sqlite_url(db)), "0001")
    with sqlite3.connect(db) as conn:
        assert "phone" not in [r[1] for r in conn.execute("PRAGMA table_info(people)")]
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [("0001",)]
        assert conn.execute("SELECT name FROM people").fetchall() == [("Ana",)]
