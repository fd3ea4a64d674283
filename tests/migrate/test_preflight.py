"""The preflight scan in chunks finds exactly the rows the one-query scan finds."""

# ruff: noqa: S608 - SQL text here is built from quoted identifiers, never from values

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from fabfile.migrate import preflight
from fabfile.migrate.plan import build_plan
from fabfile.migrate.render import sq, sqlite_check
from fabfile.migrate.sqlite_schema import open_readonly, read_schema
from fabfile.migrate.workers import open_source

VALUES: list[tuple[int, object, object, object]] = [
    (-2**63, "x\x00", "ok", None),  # the smallest rowid (min - 1 would be a float)
    (1, "ok", "abc", '{"a": 1}'),
    (2, "a\x00b", "abc", None),  # NUL
    (3, "café", "abc", '{"é": 1}'),  # valid non-ASCII: fine
    (7, b"caf\xe9", None, None),  # invalid UTF-8
    (8, None, None, None),
    (9, "ok", "toolong", None),  # too long
    (10, "ok", "ab", "[1,"),  # invalid JSON
    (40, "ok", "ab\x00", None),  # NUL in the varchar column of a chunk otherwise clean
    (41, "ok", "ok", b'{"x": "\xff"}'),  # invalid UTF-8 in JSON
    (42, 12, 3.5, '"\\u0000"'),  # numbers in text columns; jsonb refuses \u0000
    (100, "ünï", "äöü", None),  # three characters, six bytes: fits varchar(3)
    (101, "ünï", "äöüx", None),  # four characters
    (2**62, "x", b"\x80", None),  # lone continuation byte, far rowid
]


@pytest.mark.parametrize("chunk", [1, 2, 3, 1000])
def test_chunked_scan_matches_the_full_scan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            chunk: int) -> None:
    path = tmp_path / "s.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT, v VARCHAR(3), j JSON)")
    for row in VALUES:
        conn.execute("INSERT INTO t VALUES (?, CAST(? AS TEXT), CAST(? AS TEXT), "
                     "CAST(? AS TEXT))" if any(isinstance(v, bytes) for v in row) else
                     "INSERT INTO t VALUES (?, ?, ?, ?)", row)
    conn.commit()
    conn.close()
    plan = build_plan(read_schema(open_readonly(path)))
    t = plan.tables[0]
    src = open_source(path)
    test = " OR ".join(f"({sqlite_check(c.source, c.type)}) IS NOT NULL" for c in t.columns)
    expected = [r[0] for r in src.execute(f"SELECT rowid FROM {sq(t.source)} WHERE {test}")]
    assert expected == [-2**63, 2, 7, 9, 10, 40, 41, 42, 101, 2**62]
    monkeypatch.setattr(preflight, "CHUNK_ROWS", chunk)
    bad = preflight.scan_table(src, t)
    assert sorted({b.rowid for b in bad}) == expected
    reasons = {(b.rowid, b.column): b.reason for b in bad}
    assert reasons[(2, "s")] == reasons[(-2**63, "s")] == "NUL byte in text"
    assert reasons[(40, "v")] == "NUL byte in text"
    assert "invalid UTF-8" in reasons[(7, "s")]
    assert "invalid UTF-8" in reasons[(2**62, "v")]
    assert "longer than varchar(3)" in reasons[(101, "v")]


def test_a_column_named_rowid_is_scanned_in_one_query(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    conn = sqlite3.connect(path)
    conn.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, "rowid" INTEGER, s TEXT)')
    conn.execute("INSERT INTO t VALUES (1, 5, 'a' || char(0))")
    conn.commit()
    conn.close()
    t = build_plan(read_schema(open_readonly(path))).tables[0]
    src = open_source(path)
    chunks: list[preflight.CopyChunk] = []
    bad = preflight.scan_table(src, t, chunks)
    assert [b.reason for b in bad] == ["NUL byte in text"] and chunks == []
