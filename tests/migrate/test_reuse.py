"""A rehearsal's preflight reused by the real run (`engine.Reuse`): only for tables whose
pages did not change between the two snapshots; everything else is checked again, and the
guarantees (nothing written before every value is checked, verification) hold."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from fabfile.migrate.engine import MigrateOptions, MigrationFailed, Reuse, migrate
from fabfile.migrate.report import MigrationReport
from fabfile.migrate.spill import Spill

from .conftest import query, quiet_ui, tables
from .test_fingerprint import backup

Make = Callable[..., Path]

SCHEMA = """
    CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, born DATE);
    CREATE TABLE events (id INTEGER PRIMARY KEY, person_id INTEGER REFERENCES people(id),
                         at DATETIME, score REAL);
"""


def _live(make_db: Make) -> Path:
    return make_db(SCHEMA, {
        "INSERT INTO people VALUES (?, ?, ?)": [(i, f"p{i}", "1990-01-02") for i in range(1, 501)],
        "INSERT INTO events VALUES (?, ?, ?, ?)": [
            (i, 1 + i % 500, "2024-05-06 07:08:09", i / 3) for i in range(1, 3001)]})


def _run(path: Path, url: str, reuse: Reuse, **options: object) -> MigrationReport:
    return migrate(path, url, MigrateOptions(jobs=2, **options),  # type: ignore[arg-type]
                   ui=quiet_ui(), reuse=reuse)


def _scans(report: MigrationReport) -> set[str]:
    return {name for name, *_ in report.timeline if name.startswith("scan:")}


def test_unchanged_tables_are_not_scanned_again(make_db: Make, pg_db: str, tmp_path: Path,
                                                spill_root: Path) -> None:
    live = _live(make_db)
    reuse = Reuse(Spill())
    try:
        rehearsal = _run(backup(live, tmp_path / "s1.db"), pg_db, reuse, dry_run=True)
        assert rehearsal.ok and _scans(rehearsal) == {"scan:people", "scan:events"}
        assert tables(pg_db) == []
        with sqlite3.connect(live) as conn:
            conn.execute("INSERT INTO events VALUES (3001, 1, '2024-05-06 07:08:10', 0.5)")
        final = _run(backup(live, tmp_path / "s2.db"), pg_db, reuse)
    finally:
        reuse.spill.close()
    assert final.ok and reuse.reused == ["people"]
    assert _scans(final) == {"scan:events"}
    assert {t.table: (t.rows, t.verification) for t in final.tables} == {
        "people": (500, "checksums ok"), "events": (3001, "checksums ok")}
    assert query(pg_db, "SELECT score FROM events WHERE id = 3001") == [(0.5,)]
    assert any("1 unchanged table(s) kept from the rehearsal: people" in n.message
               for n in final.notes)


def test_a_bad_value_written_after_the_rehearsal_still_stops_the_run(
        make_db: Make, pg_db: str, tmp_path: Path, spill_root: Path) -> None:
    live = _live(make_db)
    reuse = Reuse(Spill())
    try:
        assert _run(backup(live, tmp_path / "s1.db"), pg_db, reuse, dry_run=True).ok
        with sqlite3.connect(live) as conn:
            conn.execute("UPDATE events SET at = 'not a date' WHERE id = 10")
        with pytest.raises(MigrationFailed, match="nothing was written"):
            _run(backup(live, tmp_path / "s2.db"), pg_db, reuse)
    finally:
        reuse.spill.close()
    assert reuse.reused == ["people"]
    assert tables(pg_db) == []
    assert list(spill_root.iterdir()) == []
