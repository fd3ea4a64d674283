"""Reading a SQLite schema: PRAGMAs plus what only the CREATE TABLE text says."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from fabfile.errors import UserError
from fabfile.migrate.sqlite_schema import open_readonly, parse_create_table, read_schema


def test_parse_collation_checks_generated_and_without_rowid() -> None:
    parsed = parse_create_table(
        'CREATE TABLE "Weird Table" (\n'
        '  id INTEGER PRIMARY KEY AUTOINCREMENT,\n'
        '  email TEXT COLLATE NOCASE UNIQUE CHECK (length(email) > 3),\n'
        '  [select] VARCHAR(10) DEFAULT \'a,b\',\n'
        '  total NUMERIC(10, 2) GENERATED ALWAYS AS (price * 2) STORED,\n'
        '  price REAL, -- a comment, with a comma\n'
        '  CONSTRAINT positive CHECK (price >= 0)\n'
        ') WITHOUT ROWID')
    assert parsed.without_rowid
    assert parsed.columns["email"].collation == "NOCASE"
    assert parsed.columns["email"].checks == ("length(email) > 3",)
    assert parsed.columns["total"].generated == "price * 2"
    assert parsed.columns["total"].stored
    assert parsed.columns["id"].autoincrement
    assert "select" in parsed.columns
    assert parsed.checks == ("price >= 0",)


def test_read_schema_keys_indexes_and_rowid_alias(make_db: Callable[..., Path]) -> None:
    path = make_db("""
        CREATE TABLE parent (id INTEGER PRIMARY KEY, code TEXT UNIQUE);
        CREATE TABLE child (a INTEGER, b TEXT, pid INTEGER REFERENCES parent(id) ON DELETE CASCADE,
                            PRIMARY KEY (a, b)) WITHOUT ROWID;
        CREATE INDEX ix_child_pid ON child(pid DESC);
        CREATE TABLE lonely (x INTEGER PRIMARY KEY DESC);
        CREATE VIEW v AS SELECT id FROM parent;
        CREATE TRIGGER trg AFTER INSERT ON parent BEGIN SELECT 1; END;
    """)
    schema = read_schema(open_readonly(path))
    parent, child = schema.table("parent"), schema.table("child")
    assert parent.rowid_alias == "id"
    assert child.without_rowid and child.primary_key == ("a", "b") and child.rowid_alias is None
    assert schema.table("lonely").rowid_alias is None
    fk = child.foreign_keys[0]
    assert (fk.columns, fk.parent, fk.parent_columns, fk.on_delete) == (
        ("pid",), "parent", ("id",), "CASCADE")
    ix = next(i for i in child.indexes if i.name == "ix_child_pid")
    assert ix.descending == (True,)
    assert [v.name for v in schema.views] == ["v"]
    assert [t.name for t in schema.triggers] == ["trg"]


def test_refuses_missing_and_non_sqlite_files(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        open_readonly(tmp_path / "nope.db")
    bogus = tmp_path / "bogus.db"
    bogus.write_text("hello, not a database")
    with pytest.raises(UserError, match="not a SQLite database"):
        open_readonly(bogus)


def test_opens_read_only(make_db: Callable[..., Path]) -> None:
    path = make_db("CREATE TABLE t (x INTEGER);")
    conn = open_readonly(path)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        conn.execute("INSERT INTO t VALUES (1)")
