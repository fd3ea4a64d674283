"""`--schema=existing` sets the target's own indexes and foreign keys aside during the copies
and makes them again exactly (on a real PostgreSQL); a run that died leaves a record that
the next run acts on."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from fabfile.errors import UserError
from fabfile.migrate import aside
from fabfile.migrate.report import MigrationReport

from .conftest import query, tables

Run = Callable[..., MigrationReport]
Make = Callable[..., Path]

SOURCE = """
    CREATE TABLE orgs (id INTEGER PRIMARY KEY, slug TEXT, name TEXT);
    CREATE TABLE people (id INTEGER PRIMARY KEY, org_id INTEGER, org_slug TEXT, email TEXT,
                         boss_id INTEGER, score REAL);
    CREATE TABLE notes (id INTEGER PRIMARY KEY, person_id INTEGER, body TEXT);
"""

TARGET = [
    "CREATE TABLE orgs (id serial PRIMARY KEY, slug text NOT NULL UNIQUE, name text)",
    "CREATE TABLE people (id serial PRIMARY KEY, org_id int REFERENCES orgs ON DELETE CASCADE, "
    "org_slug text REFERENCES orgs (slug) DEFERRABLE INITIALLY DEFERRED, email text, "
    "boss_id int, score float8)",
    "ALTER TABLE people ADD CONSTRAINT people_boss_fkey FOREIGN KEY (boss_id) "
    "REFERENCES people NOT VALID",
    "CREATE INDEX ix_people_org ON people (org_id)",
    "CREATE UNIQUE INDEX ux_people_email ON people (lower(email)) WHERE email IS NOT NULL",
    "CREATE INDEX ix_people_score ON people (score DESC NULLS LAST)",
    "CREATE INDEX ix_people_commented ON people (email)",
    "COMMENT ON INDEX ix_people_commented IS 'kept in place: a comment is not in its definition'",
    "CREATE TABLE notes (id serial PRIMARY KEY, person_id int NOT NULL REFERENCES people, "
    "body text)",
    "CREATE INDEX ix_notes_person ON notes (person_id)",
]

INDEXES = ("SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index "
           "JOIN pg_class t ON t.oid = indrelid WHERE t.relname IN ('orgs', 'people', 'notes') "
           "ORDER BY 1")
KEYS = ("SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), convalidated, "
        "condeferrable FROM pg_constraint WHERE contype IN ('f', 'u', 'p') ORDER BY 1, 2")


def _roster_like(make_db: Make, pg_db: str) -> Path:
    for stmt in TARGET:
        query(pg_db, stmt)
    people = [(i, 1 + i % 3, f"org{1 + i % 3}", f"p{i}@x.org", None if i < 10 else 1 + i % 10,
               i / 7) for i in range(1, 3001)]
    return make_db(SOURCE, {
        "INSERT INTO orgs VALUES (?, ?, ?)": [(i, f"org{i}", f"Org {i}") for i in (1, 2, 3)],
        "INSERT INTO people VALUES (?, ?, ?, ?, ?, ?)": people,
        "INSERT INTO notes VALUES (?, ?, ?)": [(i, 1 + i % 3000, "n") for i in range(1, 5001)]})


def test_the_targets_indexes_and_keys_come_back_exactly(make_db: Make, pg_db: str,
                                                         run: Run) -> None:
    path = _roster_like(make_db, pg_db)
    indexes, keys = query(pg_db, INDEXES), query(pg_db, KEYS)
    with psycopg.connect(pg_db) as conn:
        found = aside.find(conn.cursor(), ["orgs", "people", "notes"])
    assert sorted((a.kind, a.name) for a in found) == [
        ("index", "ix_notes_person"), ("index", "ix_people_org"), ("index", "ix_people_score"),
        ("index", "ux_people_email"), ("key", "notes_person_id_fkey"),
        ("key", "people_boss_fkey"), ("key", "people_org_id_fkey"),
        ("key", "people_org_slug_fkey")]
    report = run(path, pg_db, schema="existing")
    assert report.ok and {t.table: t.rows for t in report.tables} == {
        "orgs": 3, "people": 3000, "notes": 5000}
    assert query(pg_db, INDEXES) == indexes
    assert query(pg_db, KEYS) == keys
    assert aside.RECORD not in tables(pg_db)
    assert {n for n, *_ in report.timeline} >= {
        "index:ix_people_org", "fk:people_org_id_fkey", "fk:notes_person_id_fkey"}


def test_a_unique_index_the_data_breaks_fails_the_run_and_comes_back(
        make_db: Make, pg_db: str, run: Run) -> None:
    path = _roster_like(make_db, pg_db)
    indexes, keys = query(pg_db, INDEXES), query(pg_db, KEYS)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE people SET email = 'P1@x.org' WHERE id = 2")
    conn.commit()
    conn.close()
    with pytest.raises(UserError, match=r"(?s)index:ux_people_email failed: could not create "
                                        r"unique index.*rolled back"):
        run(path, pg_db, schema="existing")
    assert query(pg_db, "SELECT (SELECT count(*) FROM people) + (SELECT count(*) FROM notes)"
                 ) == [(0,)]
    assert query(pg_db, INDEXES) == indexes
    assert query(pg_db, KEYS) == keys
    assert aside.RECORD not in tables(pg_db)


def test_a_failed_run_empties_a_table_another_table_references_and_puts_all_back(
        make_db: Make, pg_db: str, run: Run) -> None:
    """A table of the app's schema the source lacks references one the run fills: TRUNCATE
    refuses that table (even with nothing referencing its rows), so undoing deletes them."""
    path = _roster_like(make_db, pg_db)
    query(pg_db, "CREATE TABLE audit (id serial PRIMARY KEY, person_id int REFERENCES people)")
    indexes, keys = query(pg_db, INDEXES), query(pg_db, KEYS)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE people SET email = 'P1@x.org' WHERE id = 2")
    conn.commit()
    conn.close()
    with pytest.raises(UserError, match="rolled back"):
        run(path, pg_db, schema="existing")
    assert query(pg_db, "SELECT (SELECT count(*) FROM orgs) + (SELECT count(*) FROM people) "
                        "+ (SELECT count(*) FROM notes)") == [(0,)]
    assert query(pg_db, INDEXES) == indexes
    assert query(pg_db, KEYS) == keys
    assert aside.RECORD not in tables(pg_db)


def test_what_a_dead_run_set_aside_is_made_again_by_the_next(make_db: Make, pg_db: str,
                                                              run: Run) -> None:
    """A run killed between the set-aside and its end: the record it committed with the drops
    is all the next run needs. A dry run, which writes nothing, says what to do."""
    path = _roster_like(make_db, pg_db)
    indexes, keys = query(pg_db, INDEXES), query(pg_db, KEYS)
    with psycopg.connect(pg_db) as conn:
        aside.set_aside(conn.cursor(), ["orgs", "people", "notes"])
    assert query(pg_db, "SELECT count(*) FROM pg_constraint WHERE contype = 'f'") == [(0,)]
    with pytest.raises(UserError, match=r"a run that died had set aside the target's .*"
                                        r"index ix_people_org.*without --dry-run"):
        run(path, pg_db, schema="existing", dry_run=True)
    report = run(path, pg_db, schema="existing")
    assert report.ok
    assert any("a run that died had set aside" in n.message for n in report.notes)
    assert query(pg_db, INDEXES) == indexes
    assert query(pg_db, KEYS) == keys
    assert aside.RECORD not in tables(pg_db)


def test_statements_add_a_valid_key_not_valid_then_validate_it() -> None:
    key = aside.Aside("key", "people", "people_org_fkey",
                      "FOREIGN KEY (org_id) REFERENCES orgs(id)", parent="orgs")
    assert key.statements() == [
        'ALTER TABLE "people" ADD CONSTRAINT "people_org_fkey" FOREIGN KEY (org_id) '
        "REFERENCES orgs(id) NOT VALID",
        'ALTER TABLE "people" VALIDATE CONSTRAINT "people_org_fkey"']
    unchecked = aside.Aside("key", "people", "boss", "FOREIGN KEY (boss_id) REFERENCES "
                            "people(id) NOT VALID", parent="people", validated=False)
    assert unchecked.statements() == [
        'ALTER TABLE "people" ADD CONSTRAINT "boss" FOREIGN KEY (boss_id) REFERENCES '
        "people(id) NOT VALID"]
    index = aside.Aside("index", "people", "ux", "CREATE UNIQUE INDEX ux ON public.people "
                        "USING btree (lower(email)) WHERE (email IS NOT NULL)")
    assert index.statements() == ["CREATE UNIQUE INDEX IF NOT EXISTS ux ON public.people "
                                  "USING btree (lower(email)) WHERE (email IS NOT NULL)"]
    assert index.drop() == 'DROP INDEX "ux"'
