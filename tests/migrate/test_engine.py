"""The migration against the real PostgreSQL of the test bed: round trip and every quirk."""

# ruff: noqa: S608 - SQL text here is built from quoted identifiers, never from values

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from fabfile.errors import UserError
from fabfile.migrate.engine import MigrationFailed
from fabfile.migrate.report import MigrationReport

from .conftest import query, sha256, tables

Run = Callable[..., MigrationReport]
Make = Callable[..., Path]


def test_roster_round_trip_with_equal_checksums(roster1: Path, pg_db: str, run: Run) -> None:
    before = sha256(roster1)
    report = run(roster1, pg_db)
    assert report.ok and report.source_unchanged
    assert all(t.verification == "checksums ok" for t in report.tables), report.tables
    assert sum(t.rows for t in report.tables) == 311_020
    assert sha256(roster1) == before
    cols = {(r[0], r[1]): r[2:] for r in query(pg_db, """
        SELECT table_name, column_name, is_nullable, data_type, character_maximum_length
        FROM information_schema.columns WHERE table_schema = 'public'""")}
    assert cols[("assignments", "event_id")][0] == "NO"
    assert cols[("people", "email")][1:] == ("character varying", 255)
    assert cols[("events", "start_time")][1] == "timestamp without time zone"
    assert cols[("assignments", "score")][1] == "double precision"
    assert cols[("people", "roles")][1] == "jsonb"
    indexes = {r[0] for r in query(
        pg_db, "SELECT indexname FROM pg_indexes WHERE schemaname='public'")}
    assert {"ix_people_org", "ix_events_org_start", "ix_assignments_event",
            "ix_assignments_person"} <= indexes
    assert query(pg_db, "SELECT count(*) FROM pg_constraint "
                        "WHERE contype = 'f' AND convalidated")[0][0] == 11
    assert query(pg_db, "SELECT count(*) FROM pg_constraint WHERE NOT convalidated")[0][0] == 0
    # naive stays naive: the text in SQLite is the text in PostgreSQL
    src = sqlite3.connect(roster1).execute(
        "SELECT created_at FROM people WHERE id = 1").fetchone()[0]
    got = query(pg_db, "SELECT created_at::text FROM people WHERE id = 1")[0][0]
    assert got == src.rstrip("0").rstrip(".")
    # identities continue past the highest id
    nxt = query(pg_db, "INSERT INTO teams (org_id, name) "
                       "VALUES ('org_0000', 'new') RETURNING id")[0][0]
    assert nxt == 1001
    assert query(pg_db, "SELECT reloptions FROM pg_class "
                        "WHERE relname = 'assignments'")[0][0] is None


def test_verify_task_engine_agrees_and_finds_a_changed_row(roster1: Path, pg_db: str,
                                                            run: Run) -> None:
    from fabfile.migrate.engine import verify

    from .conftest import quiet_ui
    run(roster1, pg_db)
    assert verify(roster1, pg_db, jobs=2, ui=quiet_ui()).ok
    query(pg_db, "UPDATE assignments SET score = score + 1e-9 WHERE id = 777")
    with pytest.raises(MigrationFailed) as err:
        verify(roster1, pg_db, jobs=2, ui=quiet_ui())
    bad = [t for t in err.value.report.tables if t.verification != "checksums ok"]
    assert [t.table for t in bad] == ["assignments"]
    assert "id=777" in bad[0].detail
    report = verify(roster1, pg_db, jobs=2, mode="counts", ui=quiet_ui())
    assert report.ok


def test_real_tiny_and_huge_doubles_survive(make_db: Make, pg_db: str, run: Run) -> None:
    values = [1e-300, 2.5e-310, 1e308, 0.1, 1 / 3, 5.0, -0.0, 1e15, 1.2345678901234567e15,
              123456789012345.6, 1e16, 1e-5, float("inf"), -float("inf")]
    path = make_db("CREATE TABLE m (id INTEGER PRIMARY KEY, v REAL, f FLOAT)",
                   {"INSERT INTO m (v, f) VALUES (?, ?)": [(v, v) for v in values]})
    report = run(path, pg_db)
    assert report.ok
    got = [r[0] for r in query(pg_db, "SELECT v FROM m ORDER BY id")]
    assert got == values
    assert query(pg_db, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE "
                        "attrelid = 'm'::regclass AND attname = 'v'")[0][0] == "double precision"


def test_integer_primary_key_without_autoincrement_gets_identity(make_db: Make, pg_db: str,
                                                                  run: Run) -> None:
    path = make_db("""
        CREATE TABLE plain (id INTEGER PRIMARY KEY, x TEXT);
        CREATE TABLE auto (id INTEGER PRIMARY KEY AUTOINCREMENT, x TEXT);
        INSERT INTO plain VALUES (5, 'a'), (41, 'b');
        INSERT INTO auto (x) VALUES ('a'), ('b'), ('c');
        DELETE FROM auto WHERE id = 3;
    """)
    run(path, pg_db)
    assert query(pg_db, "INSERT INTO plain (x) VALUES ('c') RETURNING id")[0][0] == 42
    # AUTOINCREMENT never reuses an id: sqlite_sequence says 3 was handed out
    assert query(pg_db, "INSERT INTO auto (x) VALUES ('d') RETURNING id")[0][0] == 4
    assert query(pg_db, "SELECT is_identity FROM information_schema.columns "
                        "WHERE table_name = 'plain' AND column_name = 'id'")[0][0] == "YES"


def test_integer_dates_are_unix_time_not_years(make_db: Make, pg_db: str, run: Run) -> None:
    path = make_db("CREATE TABLE d (id INTEGER PRIMARY KEY, day DATE, at DATETIME)",
                   {"INSERT INTO d (day, at) VALUES (?, ?)": [
                       (1704067200, 1704067200), ("2024-02-29", "2024-02-29T23:59:58.250"),
                       ("2024-03-01", "2024-03-01 10:00")]})
    report = run(path, pg_db)
    assert report.ok
    assert query(pg_db, "SELECT day::text, at::text FROM d ORDER BY id") == [
        ("2024-01-01", "2024-01-01 00:00:00"), ("2024-02-29", "2024-02-29 23:59:58.25"),
        ("2024-03-01", "2024-03-01 10:00:00")]


def test_naive_timestamps_stay_naive_and_utc_option_converts(make_db: Make, pg_db: str,
                                                              run: Run, pg: object) -> None:
    path = make_db("CREATE TABLE e (id INTEGER PRIMARY KEY, at DATETIME)",
                   {"INSERT INTO e (at) VALUES (?)": [("2024-06-01 12:00:00",),
                                                      ("2024-06-01 12:00:00.000001",)]})
    run(path, pg_db)
    assert query(pg_db, "SELECT data_type FROM information_schema.columns WHERE table_name = 'e' "
                        "AND column_name = 'at'")[0][0] == "timestamp without time zone"
    with_tz = make_db("CREATE TABLE e (id INTEGER PRIMARY KEY, at DATETIME)",
                      {"INSERT INTO e (at) VALUES (?)": [("2024-06-01 12:00:00",),
                                                         ("2024-06-01T14:00:00+02:00",)]})
    with pytest.raises(MigrationFailed, match="cannot move"):
        run(with_tz, pg_db, drop_existing=True)
    report = run(with_tz, pg_db, drop_existing=True, utc_timestamps=True)
    assert report.ok
    assert query(pg_db, "SELECT at AT TIME ZONE 'UTC' FROM e ORDER BY id")[0][0] == \
        query(pg_db, "SELECT at AT TIME ZONE 'UTC' FROM e ORDER BY id")[1][0]


def test_nocase_collation_becomes_case_insensitive(make_db: Make, pg_db: str, run: Run) -> None:
    path = make_db("CREATE TABLE u (id INTEGER PRIMARY KEY, email TEXT COLLATE NOCASE UNIQUE)",
                   {"INSERT INTO u (email) VALUES (?)": [("Ann@Example.org",), ("bob@x.org",)]})
    run(path, pg_db)
    assert query(pg_db, "SELECT id FROM u WHERE email = 'ann@example.ORG'") == [(1,)]
    with pytest.raises(psycopg.errors.UniqueViolation):
        query(pg_db, "INSERT INTO u (email) VALUES ('BOB@X.ORG')")


def test_composite_keys_without_rowid_long_names_reserved_words_self_reference(
        make_db: Make, pg_db: str, run: Run) -> None:
    long = "membership_records_of_people_in_teams_with_a_very_long_name_that_overflows"
    path = make_db(f"""
        CREATE TABLE "user" (id INTEGER PRIMARY KEY, "Select" TEXT NOT NULL,
                             boss INTEGER REFERENCES "user"(id));
        CREATE TABLE {long} (uid INTEGER NOT NULL REFERENCES "user"(id), team TEXT NOT NULL,
                             since DATE, PRIMARY KEY (uid, team)) WITHOUT ROWID;
        INSERT INTO "user" VALUES (1, 'a', NULL), (2, 'b', 1), (3, 'c', 2);
        INSERT INTO {long} VALUES (1, 'x', '2024-01-01'), (2, 'x', NULL), (2, 'y', NULL);
    """)
    report = run(path, pg_db)
    assert report.ok and long in report.renames
    short = report.renames[long]
    assert len(short.encode()) <= 63
    assert query(pg_db, f'SELECT count(*) FROM "{short}"')[0][0] == 3
    assert query(pg_db, 'SELECT "Select" FROM "user" WHERE boss = 2') == [("c",)]
    pk = query(pg_db, "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE contype = 'p' "
                      f"AND conrelid = '\"{short}\"'::regclass")[0][0]
    assert pk == "PRIMARY KEY (uid, team)"
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        query(pg_db, 'INSERT INTO "user" VALUES (9, \'z\', 99)')


def test_generated_columns_views_and_triggers_are_reported(make_db: Make, pg_db: str,
                                                            run: Run) -> None:
    path = make_db("""
        CREATE TABLE p (id INTEGER PRIMARY KEY, price REAL, qty INTEGER,
                        total REAL GENERATED ALWAYS AS (price * qty) STORED);
        INSERT INTO p (price, qty) VALUES (2.5, 4);
        CREATE VIEW cheap AS SELECT id FROM p WHERE price < 10;
        CREATE VIEW odd AS SELECT id, total FROM p WHERE id GLOB '1*';
        CREATE TRIGGER t AFTER INSERT ON p BEGIN UPDATE p SET qty = 1; END;
    """)
    report = run(path, pg_db)
    notes = {(n.subject, n.level): n.message for n in report.notes}
    assert ("p.total", "warn") in notes and "generated" in notes[("p.total", "warn")]
    assert notes[("view cheap", "info")] == "recreated"
    assert "not recreated" in notes[("view odd", "warn")]
    assert any(s == "trigger t" for s, _ in notes)
    assert query(pg_db, "SELECT total FROM p") == [(10.0,)]
    assert query(pg_db, "SELECT id FROM cheap") == [(1,)]


BAD_ROWS = [
    ("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER)", "INSERT INTO t (n) VALUES (?)",
     "twelve", "not an integer"),
    ("CREATE TABLE t (id INTEGER PRIMARY KEY, d DATETIME)", "INSERT INTO t (d) VALUES (?)",
     "yesterday-ish", "not a date-time"),
    ("CREATE TABLE t (id INTEGER PRIMARY KEY, d DATE)", "INSERT INTO t (d) VALUES (?)",
     "2024-02-30", "not a date"),
    ("CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT)", "INSERT INTO t (s) VALUES (?)",
     "a\x00b", "NUL byte"),
    ("CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT)",
     "INSERT INTO t (s) VALUES (CAST(? AS TEXT))", b"caf\xe9", "invalid UTF-8"),
    ("CREATE TABLE t (id INTEGER PRIMARY KEY, j JSON)", "INSERT INTO t (j) VALUES (?)",
     '{"a": 1,', "invalid JSON"),
    ("CREATE TABLE t (id INTEGER PRIMARY KEY, v VARCHAR(3))", "INSERT INTO t (v) VALUES (?)",
     "toolong", "longer than varchar(3)"),
    ("CREATE TABLE t (id INTEGER PRIMARY KEY, b BOOLEAN)", "INSERT INTO t (b) VALUES (?)",
     2, "not a boolean"),
    ("CREATE TABLE t (id INTEGER PRIMARY KEY, p NUMERIC(5,2))", "INSERT INTO t (p) VALUES (?)",
     1.005, "decimal places"),
    ("CREATE TABLE t (id INTEGER PRIMARY KEY, p NUMERIC(5,2))", "INSERT INTO t (p) VALUES (?)",
     -2**63, "out of range for"),
]


@pytest.mark.parametrize(("schema", "insert", "value", "reason"), BAD_ROWS,
                         ids=[b[3].split()[-1] for b in BAD_ROWS])
def test_each_bad_row_stops_before_the_target_is_touched(make_db: Make, pg_db: str, run: Run,
                                                         schema: str, insert: str, value: object,
                                                         reason: str) -> None:
    path = make_db(schema, {insert: [(value,)]})
    if isinstance(value, bytes):
        sqlite3.connect(path).execute("UPDATE t SET s = CAST(s AS TEXT)").connection.commit()
    with pytest.raises(MigrationFailed, match="nothing was written") as err:
        run(path, pg_db)
    bad = err.value.report.bad_rows
    assert len(bad) == 1 and bad[0].table == "t" and bad[0].key == "rowid=1"
    assert reason in bad[0].reason
    assert bad[0].excerpt
    assert tables(pg_db) == []


def test_orphaned_foreign_key_is_a_bad_row_and_quarantine_moves_it(make_db: Make, pg_db: str,
                                                                    run: Run) -> None:
    path = make_db("""
        CREATE TABLE a (id INTEGER PRIMARY KEY, name TEXT);
        CREATE TABLE b (id INTEGER PRIMARY KEY, a_id INTEGER REFERENCES a(id), n INTEGER);
        CREATE TABLE c (id INTEGER PRIMARY KEY, b_id INTEGER REFERENCES b(id));
        INSERT INTO a VALUES (1, 'ok'), (2, 'bad' || char(0) || 'name');
        INSERT INTO b VALUES (1, 1, 1), (2, 7, 2), (3, 2, 3), (4, 1, 'four');
        INSERT INTO c VALUES (1, 1), (2, 3), (3, 4);
    """)
    with pytest.raises(MigrationFailed) as err:
        run(path, pg_db)
    reasons = sorted((b.table, b.key, b.reason.split(":")[0]) for b in err.value.report.bad_rows)
    assert reasons == [("a", "rowid=2", "NUL byte in text"),
                       ("b", "rowid=2", "orphaned foreign key"),
                       ("b", "rowid=4", "not an integer")]
    assert tables(pg_db) == []
    report = run(path, pg_db, on_bad_rows="quarantine")
    assert report.ok
    # a#2 is bad, so b#3 (its child) and c#2 (child of b#3) follow it; b#4 and c#3 likewise
    assert query(pg_db, "SELECT id FROM a") == [(1,)]
    assert query(pg_db, "SELECT id FROM b ORDER BY id") == [(1,)]
    assert query(pg_db, "SELECT id FROM c ORDER BY id") == [(1,)]
    q = query(pg_db, "SELECT table_name, row_key FROM _quarantine ORDER BY 1, 2")
    assert q == [("a", "rowid=2"), ("b", "rowid=2"), ("b", "rowid=3"), ("b", "rowid=4"),
                 ("c", "rowid=2"), ("c", "rowid=3")]
    assert query(pg_db, "SELECT row_data->>'n' FROM _quarantine WHERE row_key = 'rowid=4' "
                        "AND table_name = 'b'") == [("four",)]
    assert {t.table: t.quarantined for t in report.tables} == {"a": 1, "b": 3, "c": 2}


def test_existing_tables_refuse_unless_drop_existing_and_rerun_converges(
        make_db: Make, pg_db: str, run: Run) -> None:
    path = make_db("CREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT);"
                   "INSERT INTO t (x) VALUES ('a');")
    run(path, pg_db)
    with pytest.raises(UserError, match="already holds t"):
        run(path, pg_db)
    report = run(path, pg_db, drop_existing=True)
    assert report.ok and query(pg_db, "SELECT x FROM t") == [("a",)]


def test_failed_run_leaves_the_target_as_it_was(make_db: Make, pg_db: str, run: Run) -> None:
    # SQLite took these rows; PostgreSQL's unique index with the ICU collation refuses them
    path = make_db("CREATE TABLE u (id INTEGER PRIMARY KEY, name TEXT COLLATE NOCASE UNIQUE)",
                   {"INSERT INTO u (name) VALUES (?)": [("École",), ("école",)]})
    query(pg_db, "CREATE TABLE keep_me (x int)")
    with pytest.raises(MigrationFailed, match="rolled back"):
        run(path, pg_db)
    assert tables(pg_db) == ["keep_me"]
    assert query(pg_db, "SELECT count(*) FROM pg_collation "
                        "WHERE collname = 'sqlite_nocase'")[0][0] == 0


def test_dry_run_writes_nothing(roster1: Path, pg_db: str, run: Run) -> None:
    report = run(roster1, pg_db, dry_run=True)
    assert report.ok and any(s.startswith('CREATE TABLE "assignments"') for s in report.statements)
    assert tables(pg_db) == []


def test_dry_run_answers_as_the_real_run_would_about_a_busy_target(
        roster1: Path, pg_db: str, run: Run) -> None:
    query(pg_db, "CREATE TABLE people (id bigint)")
    with pytest.raises(UserError, match="already holds people"):
        run(roster1, pg_db, dry_run=True)
    assert run(roster1, pg_db, dry_run=True, drop_existing=True).ok
    assert tables(pg_db) == ["people"]


def test_existing_schema_copies_by_column_name(make_db: Make, pg_db: str, run: Run) -> None:
    path = make_db("""
        CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, created DATETIME, flag BOOLEAN);
        INSERT INTO users VALUES (1, 'a@x', '2024-01-01 10:00:00', 1), (2, 'b@x', NULL, 0);
    """)
    query(pg_db, "CREATE TABLE users (created timestamptz, id serial PRIMARY KEY, "
                 "email varchar(100) NOT NULL, flag boolean, note text DEFAULT 'n/a')")
    report = run(path, pg_db, schema="existing")
    assert report.ok and report.tables[0].verification == "checksums ok"
    assert query(pg_db, "SELECT id, email, note FROM users ORDER BY id") == [
        (1, "a@x", "n/a"), (2, "b@x", "n/a")]
    assert query(pg_db, "INSERT INTO users (email) VALUES ('c@x') RETURNING id") == [(3,)]
    with pytest.raises(UserError, match=r"differ from the source's \(nothing was written\):"
                                        r"\n  table users: row count differs: source 2, target 3"):
        run(path, pg_db, schema="existing")
    assert query(pg_db, "SELECT count(*) FROM users") == [(3,)]


PARENT_CHILD = """
    CREATE TABLE a_child (id INTEGER PRIMARY KEY, parent_id INTEGER, note TEXT);
    CREATE TABLE z_parent (id INTEGER PRIMARY KEY, name TEXT);
    CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY);
    INSERT INTO alembic_version VALUES ('0001');
    INSERT INTO z_parent VALUES (1, 'p1'), (2, 'p2');
"""
"""No foreign key in the source: only the target's own key says which table goes first."""

TARGET_PARENT_CHILD = [
    "CREATE TABLE z_parent (id serial PRIMARY KEY, name text)",
    "CREATE TABLE a_child (id serial PRIMARY KEY, parent_id int NOT NULL REFERENCES z_parent, "
    "note text)",
    "CREATE TABLE alembic_version (version_num varchar(32) NOT NULL PRIMARY KEY)",
]


def parent_child(make_db: Make, pg_db: str, revision: str | None, orphan: bool = False) -> Path:
    for stmt in TARGET_PARENT_CHILD:
        query(pg_db, stmt)
    if revision:
        query(pg_db, "INSERT INTO alembic_version VALUES (%s)", (revision,))
    children = [(i, 99 if orphan and i == 500 else 1 + i % 2, f"n{i}") for i in range(1, 2001)]
    return make_db(PARENT_CHILD, {"INSERT INTO a_child VALUES (?, ?, ?)": children})


def test_existing_schema_copies_with_the_targets_key_set_aside_and_makes_it_again(
        make_db: Make, pg_db: str, run: Run) -> None:
    """One worker, the child table first by size and by name: its copy need not wait for the
    parent's, because the target's foreign key is set aside during the copies; it comes back
    with the same definition, validated, after both are in."""
    path = parent_child(make_db, pg_db, revision=None)
    before = query(pg_db, "SELECT conname, pg_get_constraintdef(oid), convalidated "
                          "FROM pg_constraint WHERE contype = 'f'")
    report = run(path, pg_db, schema="existing", jobs=1)
    assert report.ok and {t.table: t.rows for t in report.tables} == {
        "a_child": 2000, "z_parent": 2, "alembic_version": 1}
    assert query(pg_db, "SELECT conname, pg_get_constraintdef(oid), convalidated "
                        "FROM pg_constraint WHERE contype = 'f'") == before
    copies = [name for name, *_ in report.timeline if name.startswith("copy:")]
    assert copies[0] == "copy:a_child"
    ends = {name: end for name, _start, end, _cpu in report.timeline}
    starts = {name: start for name, start, *_ in report.timeline}
    key = next(n for n in starts if n.startswith("fk:"))
    assert starts[key] >= max(ends["copy:a_child"], ends["copy:z_parent"])
    assert "_shipyard_set_aside" not in tables(pg_db)


def test_existing_schema_leaves_a_table_equal_to_the_source_as_it_is(
        make_db: Make, pg_db: str, run: Run) -> None:
    path = parent_child(make_db, pg_db, revision="0001")
    report = run(path, pg_db, schema="existing")
    assert report.ok and [t.table for t in report.tables] == ["a_child", "z_parent"]
    assert any(n.subject == "table alembic_version" and "same 1 row(s): left as it is" in
               n.message for n in report.notes), report.notes
    assert query(pg_db, "SELECT version_num FROM alembic_version") == [("0001",)]
    assert query(pg_db, "SELECT count(*) FROM a_child") == [(2000,)]


def test_existing_schema_refuses_another_alembic_revision_and_writes_nothing(
        make_db: Make, pg_db: str, run: Run) -> None:
    path = parent_child(make_db, pg_db, revision="0002")
    for dry_run in (True, False):
        with pytest.raises(UserError) as err:
            run(path, pg_db, schema="existing", dry_run=dry_run)
        assert err.value.message.splitlines()[1:] == [
            "  alembic_version: the target is at revision 0002, the SQLite database at 0001",
            "Make both the same Alembic revision: migrate the SQLite database with the release "
            "whose migrations made the target, or make the target with the release the SQLite "
            "database is at; then run again"]
    assert query(pg_db, "SELECT version_num FROM alembic_version") == [("0002",)]
    assert query(pg_db, "SELECT (SELECT count(*) FROM a_child) + (SELECT count(*) FROM z_parent)"
                 ) == [(0,)]


def test_existing_schema_failure_empties_what_it_filled_and_keeps_what_it_skipped(
        make_db: Make, pg_db: str, run: Run) -> None:
    """A row the target's own key refuses (the source declares none, so no preflight sees
    it): the run rolls back the tables it filled, never the equal one it left alone."""
    path = parent_child(make_db, pg_db, revision="0001", orphan=True)
    with pytest.raises(MigrationFailed, match=r"(?s)fk:a_child_parent_id_fkey failed: .*"
                                              r"violates foreign key.*rolled back"):
        run(path, pg_db, schema="existing")
    assert query(pg_db, "SELECT version_num FROM alembic_version") == [("0001",)]
    assert query(pg_db, "SELECT (SELECT count(*) FROM a_child) + (SELECT count(*) FROM z_parent)"
                 ) == [(0,)]
    assert query(pg_db, "SELECT conname, convalidated FROM pg_constraint WHERE contype = 'f'"
                 ) == [("a_child_parent_id_fkey", True)]
    assert "_shipyard_set_aside" not in tables(pg_db)


def test_existing_schema_missing_column_is_refused(make_db: Make, pg_db: str, run: Run) -> None:
    path = make_db("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)")
    query(pg_db, "CREATE TABLE users (id bigint PRIMARY KEY)")
    with pytest.raises(UserError, match=r"users\.email has no column"):
        run(path, pg_db, schema="existing")


def test_unreachable_target_is_a_user_error(make_db: Make, run: Run) -> None:
    path = make_db("CREATE TABLE t (x INTEGER)")
    with pytest.raises(UserError, match="cannot connect to the target"):
        run(path, "postgresql://nobody@127.0.0.1:1/none")


def test_single_column_and_not_null_tables(make_db: Make, pg_db: str, run: Run) -> None:
    path = make_db("""
        CREATE TABLE one (n INTEGER NOT NULL);
        CREATE TABLE other (s TEXT);
        INSERT INTO one VALUES (1), (2);
        INSERT INTO other VALUES ('a'), (NULL), ('tab\there');
    """)
    report = run(path, pg_db)
    assert report.ok
    assert query(pg_db, "SELECT n FROM one ORDER BY n") == [(1,), (2,)]
    assert query(pg_db, "SELECT s FROM other ORDER BY s NULLS LAST") == [("a",), ("tab\there",),
                                                                         (None,)]


def test_checks_defaults_partial_and_expression_indexes(make_db: Make, pg_db: str,
                                                        run: Run) -> None:
    path = make_db("""
        CREATE TABLE item (
            id INTEGER PRIMARY KEY,
            sku TEXT NOT NULL,
            qty INTEGER NOT NULL DEFAULT 0 CHECK (qty >= 0),
            kind TEXT CHECK (typeof(kind) = 'text'),
            active BOOLEAN NOT NULL DEFAULT 1,
            added DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
        );
        CREATE INDEX ix_item_active_sku ON item (sku) WHERE active = 1;
        CREATE UNIQUE INDEX ux_item_sku_lower ON item (lower(sku));
        INSERT INTO item (sku, qty, kind) VALUES ('A-1', 3, 'x'), ('b-2', 0, 'y');
    """)
    report = run(path, pg_db)
    assert report.ok
    warned = {n.subject: n.message for n in report.notes if n.level == "warn"}
    assert any("check" in s.lower() and "typeof" in m for s, m in warned.items()), warned
    with pytest.raises(psycopg.errors.CheckViolation):
        query(pg_db, "INSERT INTO item (sku, qty) VALUES ('c', -1)")
    row = query(pg_db, "INSERT INTO item (sku) VALUES ('d') "
                       "RETURNING qty, active, added IS NOT NULL")
    assert row == [(0, True, True)]
    indexes = dict(query(pg_db, "SELECT indexname, indexdef FROM pg_indexes "
                                "WHERE tablename = 'item'"))
    assert "WHERE" in indexes["ix_item_active_sku"]
    assert "lower(sku)" in indexes["ux_item_sku_lower"]


def test_foreign_key_cycle(make_db: Make, pg_db: str, run: Run) -> None:
    path = make_db("""
        PRAGMA foreign_keys = OFF;
        CREATE TABLE team (id INTEGER PRIMARY KEY, owner_id INTEGER REFERENCES person(id));
        CREATE TABLE person (id INTEGER PRIMARY KEY, team_id INTEGER REFERENCES team(id));
        INSERT INTO team VALUES (1, 1), (2, 2);
        INSERT INTO person VALUES (1, 1), (2, 2), (3, NULL);
    """)
    report = run(path, pg_db)
    assert report.ok
    assert query(pg_db, "SELECT count(*) FROM pg_constraint WHERE contype = 'f' "
                        "AND convalidated") == [(2,)]


def test_odd_names_empty_tables_and_quarantine_by_primary_key(make_db: Make, pg_db: str,
                                                              run: Run) -> None:
    path = make_db("""
        CREATE TABLE "my table" ("a b" TEXT, "it's" INTEGER);
        CREATE TABLE empty (id INTEGER PRIMARY KEY, x TEXT);
        CREATE TABLE tags (name TEXT NOT NULL, n INTEGER, PRIMARY KEY (name)) WITHOUT ROWID;
        INSERT INTO "my table" VALUES ('x y', 1), (NULL, NULL);
        INSERT INTO tags VALUES ('ok', 1), ('bad', 'many'), ('fine', 3);
    """)
    report = run(path, pg_db, on_bad_rows="quarantine")
    assert report.ok
    assert query(pg_db, 'SELECT "a b", "it\'s" FROM "my table" ORDER BY 2') == [("x y", 1),
                                                                                (None, None)]
    assert query(pg_db, "SELECT count(*) FROM empty") == [(0,)]
    assert query(pg_db, "SELECT name FROM tags ORDER BY name") == [("fine",), ("ok",)]
    assert query(pg_db, "SELECT table_name, row_key FROM _quarantine") == [("tags", "name='bad'")]
    assert {t.table: t.verification for t in report.tables} == {
        "my table": "checksums ok", "empty": "checksums ok", "tags": "checksums ok"}


def test_boolean_words_move_as_booleans(make_db: Make, pg_db: str, run: Run) -> None:
    path = make_db("CREATE TABLE b (id INTEGER PRIMARY KEY, on_ BOOLEAN)",
                   {"INSERT INTO b (on_) VALUES (?)": [(1,), (0,), ("true",), ("FALSE",), ("t",),
                                                       ("F",), (None,)]})
    report = run(path, pg_db)
    assert report.ok and report.tables[0].verification == "checksums ok"
    assert [r[0] for r in query(pg_db, "SELECT on_ FROM b ORDER BY id")] == [
        True, False, True, False, True, False, None]
    refused = make_db("CREATE TABLE b (id INTEGER PRIMARY KEY, on_ BOOLEAN)",
                      {"INSERT INTO b (on_) VALUES (?)": [("yes",)]})
    with pytest.raises(MigrationFailed, match="cannot move"):
        run(refused, pg_db, drop_existing=True)


def test_time_text_that_is_no_time_is_a_bad_row(make_db: Make, pg_db: str, run: Run) -> None:
    path = make_db("CREATE TABLE t (id INTEGER PRIMARY KEY, at TIME)",
                   {"INSERT INTO t (at) VALUES (?)": [("12:30:00",), ("536bb4ec",), ("12:30",)]})
    with pytest.raises(MigrationFailed, match="cannot move") as err:
        run(path, pg_db)
    assert [(b.key, b.reason) for b in err.value.report.bad_rows] == [
        ("rowid=2", "not a time (HH:MM[:SS[.ffffff]])")]
    assert tables(pg_db) == []
