"""Column defaults: translated so PostgreSQL gives what SQLite gives, or reported and left out."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from fabfile.errors import UserError
from fabfile.migrate import target
from fabfile.migrate.defaults import translate
from fabfile.migrate.plan import PlanTable, build_plan
from fabfile.migrate.report import MigrationReport
from fabfile.migrate.sqlite_schema import open_readonly, read_schema
from fabfile.migrate.typemap import map_declared
from fabfile.migrate.verify import target_copy
from fabfile.migrate.workers import connect_target, open_source

from .conftest import query, tables

Run = Callable[..., MigrationReport]
Make = Callable[..., Path]


@pytest.mark.parametrize(("raw", "declared", "expected"), [
    ("CURRENT_TIMESTAMP", "DATETIME", "date_trunc('second', now() AT TIME ZONE 'UTC')"),
    ("datetime('now')", "TIMESTAMP", "date_trunc('second', now() AT TIME ZONE 'UTC')"),
    ("strftime('%Y-%m-%d %H:%M:%f', 'now')", "DATETIME",
     "date_trunc('milliseconds', now() AT TIME ZONE 'UTC')"),
    ("CURRENT_TIMESTAMP", "TIMESTAMPTZ",
     "(date_trunc('second', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"),
    ("CURRENT_TIMESTAMP", "TEXT", "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')"),
    ("datetime('now', 'localtime')", "DATETIME", "date_trunc('second', LOCALTIMESTAMP)"),
    ("date('now')", "DATE", "(now() AT TIME ZONE 'UTC')::date"),
    ("CURRENT_DATE", "DATE", "(now() AT TIME ZONE 'UTC')::date"),
    ("strftime('%s', 'now')", "INTEGER",
     "floor(extract(epoch FROM now() AT TIME ZONE 'UTC'))::bigint"),
    ("0", "DATETIME", "'1970-01-01 00:00:00'"),
    ("'42'", "INTEGER", "42"),
    ("'1.5'", "REAL", "1.5"),
    ("'2.5'", "NUMERIC(8,3)", "2.500"),
    ("'1'", "BOOLEAN", "true"),
    ("'false'", "BOOLEAN", "false"),
    ("TRUE", "BOOLEAN", "true"),
    ('""', "TEXT", "''"),
    ("''", "VARCHAR(8)", "''"),
    ("'it''s'", "TEXT", "'it''s'"),
    ("x'00FF'", "BLOB", "'\\x00ff'"),
    ("6 * 7", "INTEGER", "42"),
    ("date()", "DATE", "(now() AT TIME ZONE 'UTC')::date"),
    ("unixepoch('2024-01-01')", "INTEGER", "1704067200"),
    ("NULL", "TEXT", None),
])
def test_translations(raw: str, declared: str, expected: str | None) -> None:
    assert translate(raw, declared, map_declared(declared)).sql == expected


@pytest.mark.parametrize(("raw", "declared", "why"), [
    ("lower(hex(randomblob(4)))", "TEXT", "randomblob() may give a different value"),
    ("'abcdef'", "VARCHAR(3)", "longer than varchar(3)"),
    ("1.5", "INTEGER", "not an integer: real"),
    ("2", "BOOLEAN", "not a boolean"),
    ("1.005", "NUMERIC(5,2)", "more than 2 decimal places"),
    ("'2024-02-30'", "DATE", "not a date"),
    ("CURRENT_TIMESTAMP", "INTEGER", "not an integer: text"),
    ("julianday('now')", "REAL", "depends on the clock"),
    ("my_function(1)", "TEXT", "my_function() may give a different value"),
])
def test_defaults_that_cannot_give_the_same_value_are_refused(raw: str, declared: str,
                                                              why: str) -> None:
    got = translate(raw, declared, map_declared(declared))
    assert got.sql is None and got.level == "warn" and why in got.why


CLOCKS = {
    "ts": "DATETIME DEFAULT CURRENT_TIMESTAMP",
    "ts2": "TIMESTAMP DEFAULT (datetime('now'))",
    "ms": "DATETIME DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))",
    "ms_text": "TEXT DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))",
    "ts_text": "VARCHAR(19) DEFAULT CURRENT_TIMESTAMP",
    "iso_text": "TEXT DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))",
    "local_ts": "DATETIME DEFAULT (datetime('now', 'localtime'))",
    "local_text": "TEXT DEFAULT (datetime('now', 'localtime'))",
    "day": "DATE DEFAULT (date('now'))",
    "day2": "DATE DEFAULT CURRENT_DATE",
    "day_text": "TEXT DEFAULT CURRENT_DATE",
    "local_day": "DATE DEFAULT (date('now', 'localtime'))",
    "at": "TIME DEFAULT CURRENT_TIME",
    "epoch": "INTEGER DEFAULT (strftime('%s', 'now'))",
    "epoch2": "INTEGER DEFAULT (unixepoch())",
    "epoch_ts": "DATETIME DEFAULT (strftime('%s', 'now'))",
}
CONSTANTS = {
    "start_time": "DATETIME DEFAULT 0",
    "n_text": "INTEGER DEFAULT '42'",
    "r_text": "REAL DEFAULT '1.5'",
    "num": "NUMERIC(8,3) DEFAULT '2.50'",
    "b_text": "BOOLEAN DEFAULT 'true'",
    "b_one": "BOOLEAN DEFAULT '1'",
    "b_false": "BOOLEAN DEFAULT 'false'",
    "b_kw": "BOOLEAN DEFAULT FALSE",
    "empty_dq": 'TEXT DEFAULT ""',
    "empty_sq": "TEXT DEFAULT ''",
    "typeless": "DEFAULT 7",
    "bytes": "BLOB DEFAULT x'00ff'",
    "doc": """JSON DEFAULT '{"b": 1, "a": [1, 2.50]}'""",
    "expr": "INTEGER DEFAULT (6 * 7)",
    "neg": "REAL DEFAULT -0.5",
    "tab": "TEXT DEFAULT 'a\tb\\c'",
}
ZONE = "Asia/Kathmandu"
"""UTC+05:45 all year: a UTC/local mix-up is hours off, not hidden by a zero offset."""


@pytest.fixture
def local_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The process (and so SQLite's 'localtime') in ZONE; PostgreSQL sessions set it too."""
    monkeypatch.setenv("TZ", ZONE)
    time.tzset()
    yield ZONE
    monkeypatch.undo()
    time.tzset()


def _lines(path: Path, url: str, t: PlanTable) -> tuple[list[str], list[str]]:
    """Row 1 of T as the migration renders it from SQLite, and as PostgreSQL's COPY TO
    prints it (what verification compares), split into fields."""
    from fabfile.migrate.copy import source_query

    src = open_source(path)
    try:
        sqlite_line = src.execute(source_query(t)).fetchone()[0].decode()
    finally:
        src.close()
    pg = connect_target(url)
    try:
        with pg.cursor() as cur, cur.copy(target_copy(t)) as cp:
            pg_line = b"".join(bytes(d) for d in cp).decode().rstrip("\n")
    finally:
        pg.close()
    return sqlite_line.split("\t"), pg_line.split("\t")


def _same_clock(a: str, b: str) -> bool:
    """Two readings of a clock default: the same shape (precision, format) and close."""
    if re.sub(r"\d", "d", a) != re.sub(r"\d", "d", b) and "." not in a + b:
        return False
    if re.fullmatch(r"\d+", a):
        return abs(int(a) - int(b)) <= 5
    fmt = {8: "%H:%M:%S", 10: "%Y-%m-%d"}.get(len(a))
    if fmt:
        x, y = dt.datetime.strptime(a, fmt), dt.datetime.strptime(b, fmt)
    else:
        x = dt.datetime.fromisoformat(a.rstrip("Z"))
        y = dt.datetime.fromisoformat(b.rstrip("Z"))
        if x.microsecond % 1000 or y.microsecond % 1000:
            return False  # SQLite's clock has milliseconds, never finer
    return abs((x - y).total_seconds()) <= 5


def test_each_default_gives_the_same_value_in_both_databases(make_db: Make, pg_db: str,
                                                             run: Run, local_zone: str) -> None:
    columns = {**CLOCKS, **CONSTANTS}
    body = ",\n".join(f"{name} {decl}" for name, decl in columns.items())
    path = make_db(f"CREATE TABLE d (id INTEGER PRIMARY KEY,\n{body});")
    report = run(path, pg_db)
    assert report.ok
    assert not [n for n in report.notes if n.level == "warn"], report.notes
    notes = {n.subject: n.message for n in report.notes}
    assert "read as Unix time" in notes["d.start_time"]
    assert "PostgreSQL's (its TimeZone setting)" in notes["d.local_ts"]
    # one row through each database, back to back, each taking every default
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO d (id) VALUES (1)")
    conn.commit()
    conn.close()
    with psycopg.connect(pg_db) as pg:
        pg.execute(f"SET TimeZone = '{local_zone}'")
        pg.execute("INSERT INTO d (id) VALUES (1)")
    t = build_plan(read_schema(open_readonly(path))).table("d")
    got_sqlite, got_pg = _lines(path, pg_db, t)
    fields = dict(zip([c.name for c in t.columns], zip(got_sqlite, got_pg, strict=True),
                      strict=True))
    for name in CONSTANTS:
        assert fields[name][0] == fields[name][1], (name, fields[name])
    for name in CLOCKS:
        assert _same_clock(*fields[name]), (name, fields[name])
    assert fields["start_time"][1] == "1970-01-01 00:00:00"
    assert fields["empty_dq"] == ("", "") and fields["b_text"] == ("t", "t")
    utc_now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    assert abs(dt.datetime.fromisoformat(fields["ts"][1]) - utc_now) < dt.timedelta(minutes=1)
    local_now = dt.datetime.now()
    assert abs(dt.datetime.fromisoformat(fields["local_ts"][1]) - local_now) < \
        dt.timedelta(minutes=1)


def test_clock_defaults_with_utc_timestamps(make_db: Make, pg_db: str, run: Run,
                                            local_zone: str) -> None:
    path = make_db("CREATE TABLE e (id INTEGER PRIMARY KEY, at DATETIME DEFAULT CURRENT_TIMESTAMP,"
                   " local DATETIME DEFAULT (datetime('now', 'localtime')),"
                   " day DATETIME DEFAULT (date('now')));")
    report = run(path, pg_db, utc_timestamps=True)
    assert report.ok and not [n for n in report.notes if n.level == "warn"]
    sqlite3.connect(path).execute("INSERT INTO e (id) VALUES (1)").connection.commit()
    with psycopg.connect(pg_db) as pg:
        pg.execute(f"SET TimeZone = '{local_zone}'")
        pg.execute("INSERT INTO e (id) VALUES (1)")
    t = build_plan(read_schema(open_readonly(path)), utc_timestamps=True).table("e")
    for a, b in list(zip(*_lines(path, pg_db, t), strict=True))[1:]:
        assert a.endswith("+00") and b.endswith("+00")
        assert _same_clock(a[:-3], b[:-3]), (a, b)


def test_refused_defaults_are_reported_and_the_schema_still_migrates(make_db: Make, pg_db: str,
                                                                      run: Run) -> None:
    path = make_db("""CREATE TABLE r (id INTEGER PRIMARY KEY,
        code VARCHAR(3) NOT NULL DEFAULT 'abcdef', token TEXT DEFAULT (hex(randomblob(8))),
        n INTEGER DEFAULT 1.5, flag BOOLEAN DEFAULT 2, ok INTEGER DEFAULT 3);
        INSERT INTO r (id, code, n, flag) VALUES (1, 'abc', 1, 1);""")
    report = run(path, pg_db)
    assert report.ok
    warned = {n.subject: n.message for n in report.notes if n.level == "warn"}
    assert warned.keys() == {"r.code", "r.token", "r.n", "r.flag"}
    assert warned["r.code"].startswith("DEFAULT 'abcdef' not kept: it gives 'abcdef'")
    assert "longer than varchar(3)" in warned["r.code"]
    assert query(pg_db, "SELECT column_name, column_default FROM information_schema.columns "
                        "WHERE table_name = 'r' AND column_default IS NOT NULL") == [("ok", "3")]


def test_the_target_check_drops_a_default_postgresql_would_not_take(make_db: Make,
                                                                     pg_db: str) -> None:
    path = make_db("CREATE TABLE c (id INTEGER PRIMARY KEY, a INTEGER DEFAULT 1, "
                   "b NUMERIC(8,3) DEFAULT 2, c BOOLEAN DEFAULT 1, d TEXT DEFAULT 'x')")
    plan = build_plan(read_schema(open_readonly(path)))
    t = plan.tables[0]
    broken = {"a": ("'abc'", "abc"), "b": ("1.0", "1.0"), "c": ("1::integer", None)}
    cols = tuple(replace(c, default=broken[c.name][0], default_expect=broken[c.name][1])
                 if c.name in broken else c for c in t.columns)
    plan = replace(plan, tables=(replace(t, columns=cols),))
    conn = target.connect(pg_db)
    try:
        checked = target.check_defaults(conn, plan)
    finally:
        conn.close()
    kept = {c.name: c.default for c in checked.tables[0].columns}
    assert kept == {"id": None, "a": None, "b": None, "c": None, "d": "'x'"}
    why = {n.subject: n.message for n in checked.notes}
    assert "PostgreSQL refuses 'abc' for bigint" in why["c.a"]
    assert "PostgreSQL reads 1.0 as '1.000', not '1.0'" in why["c.b"]
    assert "1::integer is not of a type boolean takes" in why["c.c"]  # an explicit cast only
    assert tables(pg_db) == []


def test_names_postgresql_cannot_hold_are_all_refused_up_front(make_db: Make, pg_db: str,
                                                               run: Run) -> None:
    path = make_db('CREATE TABLE a (id INTEGER PRIMARY KEY, xmin INTEGER, ctid TEXT);'
                   'CREATE TABLE "" (x INTEGER);'
                   'CREATE TABLE fine (id INTEGER PRIMARY KEY);')
    with pytest.raises(UserError) as err:
        run(path, pg_db)
    message = str(err.value)
    assert "a.xmin: PostgreSQL keeps this name for a system column" in message
    assert "a.ctid" in message and 'a table named ""' in message
    assert "nothing was written" in message
    assert tables(pg_db) == []


def test_schema_shapes_postgresql_takes_differently(make_db: Make, pg_db: str, run: Run) -> None:
    path = make_db("""
        CREATE TABLE p (id INTEGER PRIMARY KEY, code TEXT, UNIQUE (code COLLATE NOCASE));
        CREATE TABLE c (id INTEGER PRIMARY KEY, p_text TEXT REFERENCES p(id),
                        p_id INTEGER REFERENCES p(id), note VARCHAR(99999999));
        CREATE TABLE "c_id_seq" (x INTEGER);
        INSERT INTO p VALUES (1, 'A'), (2, 'b');
        INSERT INTO c VALUES (1, 'x', 1, 'long');
    """)
    report = run(path, pg_db)
    assert report.ok
    warned = [n.message for n in report.notes if n.level == "warn"]
    assert any("('p_text',) -> p('id',): PostgreSQL cannot compare the types (text -> bigint)"
               in m for m in warned), warned
    with pytest.raises(psycopg.errors.UniqueViolation):
        query(pg_db, "INSERT INTO p (code) VALUES ('a')")
    assert query(pg_db, "SELECT data_type FROM information_schema.columns "
                        "WHERE table_name = 'c' AND column_name = 'note'") == [("text",)]
    assert query(pg_db, "INSERT INTO c (p_id) VALUES (2) RETURNING id") == [(2,)]
