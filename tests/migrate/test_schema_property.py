"""Property: a schema SQLite accepts migrates, or is refused up front with everything that
blocks it listed; it never fails halfway. Many small generated schemas (odd defaults, types,
names and constraints, a row of defaults in each table) go through the real engine into the
test bed's PostgreSQL."""

# ruff: noqa: S608 - SQL text here is built from quoted identifiers, never from values

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fabfile.errors import UserError
from fabfile.migrate.engine import MigrateOptions, MigrationFailed, migrate
from tests.support.postgres import PgCluster

from .conftest import quiet_ui, tables

TYPES = ["INTEGER", "INT", "BIGINT", "INT(11)", "UNSIGNED BIG INT", "TEXT", "VARCHAR(3)",
         "VARCHAR(255)", "NVARCHAR(20)", "CHAR(10)", "VARCHAR(99999999)", "CLOB", "STRING", "",
         "REAL", "DOUBLE", "FLOAT", "NUMERIC", "NUMERIC(5,2)", "DECIMAL(10,0)", "MONEY",
         "BOOLEAN", "DATE", "DATETIME", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIME", "JSON",
         "BLOB", "UUID"]
DEFAULTS = ["0", "1", "-1", "1.5", "-0.0", "1e308", "1e999", "9223372036854775807", "'0'",
            "'1.5'", "'abc'", "'abcdefghijk'", "''", '""', "'true'", "'false'", "TRUE", "FALSE",
            "NULL", "CURRENT_TIMESTAMP", "CURRENT_DATE", "CURRENT_TIME", "(datetime('now'))",
            "(datetime('now', 'localtime'))", "(date('now'))", "(time('now'))",
            "(strftime('%Y-%m-%d %H:%M:%f', 'now'))", "(strftime('%s', 'now'))",
            "(strftime('%d/%m/%Y', 'now'))", "(unixepoch())", "(julianday('now'))", "(random())",
            "(lower(hex(randomblob(4))))", "x'00ff'", "'2024-01-01'", "'2024-02-30'",
            "'2024-01-01 10:00:00'", "'2024-01-01T10:00:00.5'", "'12:30:00'",
            """'{"b": 1, "a": 2}'""",
            "'[1, 2'", "(1 + 1)", "('a' || 'b')", "(abs(-5))", "'a''b'", "'tab\there\\'",
            "'6F9619FF-8B86-D011-B42D-00CF4FC964FF'", "(CAST(7 AS TEXT))", "(1 / 0)"]
NAMES = ["a", "b", "c", "Name", "select", "order", "two words", 'qu"ote', "é", "id", "x" * 70,
         "xmin", "user", "group", "t_id_seq"]
CHECKS = ["({c} IS NOT NULL OR {c} IS NULL)", "(length({c}) < 100)", "(typeof({c}) <> 'blob')",
          "({c} <> 'never')"]
SAMPLES = {"INT": 1, "TEXT": "x", "REAL": 1.5, "BOOLEAN": 1, "DATE": "2024-01-02",
           "DATETIME": "2024-01-02 03:04:05", "TIMESTAMP": "2024-01-02 03:04:05",
           "TIME": "01:02:03", "JSON": "[]", "BLOB": b"\x01", "UUID": None}


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@st.composite
def column(draw: st.DrawFn, name: str) -> str:
    parts = [q(name), draw(st.sampled_from(TYPES))]
    if draw(st.booleans()):
        parts.append("NOT NULL")
    if draw(st.integers(0, 3)) == 0:
        parts.append("UNIQUE")
    if draw(st.integers(0, 2)) == 0:
        parts.append("CHECK " + draw(st.sampled_from(CHECKS)).format(c=q(name)))
    collate = draw(st.sampled_from([None, None, "NOCASE", "RTRIM", "BINARY"]))
    if collate:
        parts.append(f"COLLATE {collate}")
    if draw(st.integers(0, 3)) > 0:
        parts.append("DEFAULT " + draw(st.sampled_from(DEFAULTS)))
    return " ".join(parts)


@st.composite
def schema(draw: st.DrawFn) -> list[str]:
    """CREATE TABLE statements (1 to 3 tables; later ones may reference earlier ones)."""
    statements: list[str] = []
    made: list[tuple[str, str]] = []  # (table, its INTEGER PRIMARY KEY column)
    for n in range(draw(st.integers(1, 3))):
        table = draw(st.sampled_from([f"t{n}", f"T {n}", f"order{n}", f"t{n}_" + "y" * 60,
                                      "t0_pkey", "t0_id_seq", f"ix_t{n}"]))
        if any(table.lower() == m.lower() for m, _k in made):
            continue
        names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=5, unique_by=str.lower))
        names = [c for c in names if c.lower() != "id"]
        cols = ["id INTEGER PRIMARY KEY"] + [draw(column(c)) for c in names]
        if made and draw(st.booleans()):
            parent, key = draw(st.sampled_from(made))
            kind = draw(st.sampled_from(["INTEGER", "TEXT", "REAL"]))
            action = draw(st.sampled_from(["", " ON DELETE CASCADE", " ON DELETE SET NULL",
                                           " ON UPDATE SET DEFAULT"]))
            cols.append(f"parent_id {kind} REFERENCES {q(parent)}({q(key)}){action}")
        if draw(st.integers(0, 3)) == 0:
            cols.append("g INTEGER GENERATED ALWAYS AS (id * 2)" +
                        draw(st.sampled_from(["", " STORED"])))
        if draw(st.integers(0, 3)) == 0:
            cols.append("CHECK (id > 0)")
        tail = ""
        if draw(st.integers(0, 4)) == 0 and len(cols) > 1:
            cols[0] = "id INTEGER NOT NULL"
            cols.append("PRIMARY KEY (id)")
            tail = " WITHOUT ROWID"
        statements.append(f"CREATE TABLE {q(table)} ({', '.join(cols)}){tail}")
        made.append((table, "id"))
        first = q(names[0] if names else "id")
        unique = "UNIQUE " if draw(st.booleans()) else ""
        index = draw(st.sampled_from([None, f"{first} COLLATE NOCASE DESC", f"lower({first})",
                                      f"{first}) WHERE ({first} IS NOT NULL"]))
        if index:
            statements.append(f"CREATE {unique}INDEX {q('ix_' + table)} ON {q(table)} ({index})")
        if draw(st.integers(0, 3)) == 0:
            statements.append(f"CREATE VIEW {q('v_' + table)} AS SELECT * FROM {q(table)}")
    return statements


def _make(statements: list[str], directory: Path) -> Path | None:
    """The SQLite file, with one row per table taking every default it can; None when SQLite
    itself refuses the schema."""
    path = Path(tempfile.mkstemp(suffix=".db", dir=directory)[1])
    conn = sqlite3.connect(path)
    try:
        for stmt in statements:
            conn.execute(stmt)
    except sqlite3.Error:
        conn.close()
        return None
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
        info = conn.execute(f"PRAGMA table_info({q(name)})").fetchall()
        given_cols = [(c[1], c[2]) for c in info if c[3] and c[4] is None and c[1] != "id"]
        values = [_sample(declared) for _n, declared in given_cols]
        cols = ", ".join(["id", *(q(n) for n, _d in given_cols)])
        marks = ", ".join("?" * (len(values) + 1))
        with contextlib.suppress(sqlite3.Error):  # a CHECK refused it: the table stays empty
            conn.execute(f"INSERT INTO {q(name)} ({cols}) VALUES ({marks})", [1, *values])
    conn.commit()
    conn.close()
    return path


def _sample(declared: str) -> object:
    upper = declared.upper()
    for key, value in SAMPLES.items():
        if key in upper:
            return value
    return 1


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("schemas")


@settings(max_examples=int(os.environ.get("SCHEMA_EXAMPLES", "40")), deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(statements=schema())
def test_every_schema_sqlite_accepts_migrates_or_is_refused_up_front(
        statements: list[str], pg: PgCluster, scratch: Path) -> None:
    path = _make(statements, scratch)
    if path is None:
        return
    url = pg.create_database("prop")
    try:
        try:
            report = migrate(path, url, MigrateOptions(jobs=2), ui=quiet_ui())
        except MigrationFailed as exc:
            # the preflight found values that cannot move (a row took a default SQLite stores
            # but PostgreSQL's type refuses): refused before anything was written
            assert "nothing was written" in str(exc), (statements, str(exc))
            assert exc.report.bad_rows, statements
            assert tables(url) == [], statements
            return
        except UserError as exc:
            assert str(exc).startswith("PostgreSQL cannot hold this SQLite schema"), \
                (statements, str(exc))
            assert tables(url) == [], statements
            return
        assert report.ok, statements
        assert all(t.verification == "checksums ok" for t in report.tables), statements
    finally:
        pg.drop_database(url)
        path.unlink()
