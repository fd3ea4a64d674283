"""The schema plan and its DDL, as data: SQLite schema in, statements out (golden files)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from fabfile.migrate import ddl
from fabfile.migrate.identifiers import fit_name
from fabfile.migrate.plan import build_plan
from fabfile.migrate.sqlite_schema import open_readonly, read_schema

GOLDEN = Path(__file__).parent / "golden"

QUIRKS = """
CREATE TABLE "User" (
    id INTEGER PRIMARY KEY,
    email VARCHAR(255) COLLATE NOCASE NOT NULL UNIQUE,
    "order" INTEGER DEFAULT 0,
    active BOOLEAN NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created DATETIME DEFAULT CURRENT_TIMESTAMP,
    born DATE DEFAULT (date('now')),
    weird TEXT DEFAULT (lower(hex(randomblob(4)))),
    price NUMERIC(8, 3) CHECK (price >= 0),
    manager_id INTEGER REFERENCES "User"(id) ON DELETE SET NULL
);
CREATE TABLE tag_assignments_for_users_with_an_extremely_long_descriptive_name_x (
    user_id INTEGER NOT NULL REFERENCES "User"(id) ON DELETE CASCADE ON UPDATE CASCADE,
    tag TEXT NOT NULL,
    PRIMARY KEY (user_id, tag)
) WITHOUT ROWID;
CREATE UNIQUE INDEX ux_user_email_lower ON "User"(lower(email));
CREATE INDEX ix_user_created ON "User"(created DESC) WHERE active = 1;
CREATE TABLE seq (id INTEGER PRIMARY KEY AUTOINCREMENT, note TEXT,
                  shout TEXT GENERATED ALWAYS AS (upper(note)) VIRTUAL);
CREATE VIEW active_users AS SELECT id, email FROM "User" WHERE active = 1;
CREATE TRIGGER user_touch AFTER UPDATE ON "User" BEGIN SELECT 1; END;
"""


def _golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{name} differs: UPDATE_GOLDEN=1 to accept"


def _script(path: Path) -> str:
    plan = build_plan(read_schema(open_readonly(path)))
    notes = "\n".join(f"-- {n.level}: {n.subject}: {n.message}" for n in plan.notes)
    return ";\n".join(ddl.script(plan)) + ";\n" + notes + "\n"


def test_roster_schema_golden(roster1: Path) -> None:
    _golden("roster_schema.sql", _script(roster1))


def test_quirks_schema_golden(make_db: Callable[..., Path]) -> None:
    _golden("quirks_schema.sql", _script(make_db(QUIRKS)))


def test_roster_plan_keeps_what_pgloader_drops(roster1: Path) -> None:
    plan = build_plan(read_schema(open_readonly(roster1)))
    events = plan.table("events")
    cols = {c.name: c for c in events.columns}
    assert cols["org_id"].notnull and cols["org_id"].type.sql == "varchar(64)"
    assert cols["start_time"].type.sql == "timestamp without time zone"
    assert cols["price"].type.sql == "numeric(10,2)"
    teams = plan.table("teams")
    assert teams.identity == "id" and teams.order_key == "id"
    assert {ix.name for ix in plan.indexes if ix.role == "index"} == {
        "ix_people_org", "ix_events_org_start", "ix_assignments_event", "ix_assignments_person"}
    assert plan.table("people").identity_floor == 20000


def test_long_names_are_shortened_stably() -> None:
    long = "x" * 70
    short = fit_name(long)
    assert len(short.encode()) <= 63 and short == fit_name(long) and short != fit_name("y" * 70)
    assert fit_name("é" * 40).encode().decode()  # cut on a character boundary
    assert fit_name("short") == "short"
