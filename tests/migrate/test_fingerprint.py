"""Per-table fingerprints: alike for two online backups of an unchanged file, different for
exactly the tables written in between."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from fabfile.migrate import fingerprint

Make = Callable[..., Path]


def backup(src: Path, dst: Path) -> Path:
    """What the cutover's snapshot does on the host: SQLite's online backup."""
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    return dst


def test_a_write_moves_only_its_tables_fingerprint(make_db: Make, tmp_path: Path) -> None:
    live = make_db("""
        CREATE TABLE a (id INTEGER PRIMARY KEY, body TEXT);
        CREATE TABLE b (id INTEGER PRIMARY KEY, body TEXT);
        CREATE INDEX ix_b ON b (body);
    """, {"INSERT INTO a VALUES (?, ?)": [(i, "x" * 3000) for i in range(300)],
          "INSERT INTO b VALUES (?, ?)": [(i, f"b{i}") for i in range(300)]})
    first = fingerprint.tables(backup(live, tmp_path / "first.db"))
    assert set(first) >= {"a", "b", "ix_b"}
    assert fingerprint.tables(backup(live, tmp_path / "again.db")) == first
    with sqlite3.connect(live) as conn:
        conn.execute("UPDATE b SET body = 'changed' WHERE id = 7")
    second = fingerprint.tables(backup(live, tmp_path / "second.db"))
    assert second["a"] == first["a"]
    assert second["b"] != first["b"]


def test_no_fingerprints_when_pages_may_sit_in_a_write_ahead_log(make_db: Make) -> None:
    path = make_db("CREATE TABLE a (id INTEGER PRIMARY KEY)")
    Path(f"{path}-wal").write_bytes(b"")
    assert fingerprint.tables(path) == {}
