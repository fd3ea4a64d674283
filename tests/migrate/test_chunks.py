"""Copy lines read by the preflight's chunks (plain where nothing needs escaping) are the same
bytes as those of one query."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from fabfile.migrate import preflight
from fabfile.migrate.copy import source_queries, source_query
from fabfile.migrate.plan import build_plan
from fabfile.migrate.sqlite_schema import open_readonly, read_schema
from fabfile.migrate.workers import open_source

ROWS: list[tuple[int, object, object, object]] = [
    (-2**63, "first", "x", '{"a": "b"}'),
    (1, "plain", "y", None),
    (2, "back\\slash", 5, '{"a": "tab\\there"}'),
    (3, None, None, None),
    (4, "tab\there", 2.5, "[1]"),
    (5, "nl\nand\rcr", "\x08\x0b\x0c", None),
    (6, "ok", "ok", None),
    (7, "ok", "blob\\", None),
    (8, "ok", "ok", '"\\\\"'),
    (2**62, "last\\", "z", None),
]


@pytest.mark.parametrize("chunk", [1, 2, 3, 1000])
@pytest.mark.parametrize("ddl", [
    "CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT, u, j JSON)",
    "CREATE TABLE t (id INTEGER NOT NULL, s VARCHAR(20), u, j JSON)",
])
def test_chunked_lines_equal_the_single_query(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              chunk: int, ddl: str) -> None:
    path = tmp_path / "s.db"
    conn = sqlite3.connect(path)
    conn.execute(ddl)
    conn.executemany("INSERT INTO t (rowid, id, s, u, j) VALUES (?, ?, ?, ?, ?)",
                     [(r[0], *r) for r in ROWS])
    conn.commit()
    conn.close()
    t = build_plan(read_schema(open_readonly(path))).tables[0]
    src = open_source(path)
    single = [r[0] for r in src.execute(source_query(t))]
    monkeypatch.setattr(preflight, "CHUNK_ROWS", chunk)
    chunks: list[preflight.CopyChunk] = []
    assert preflight.scan_table(src, t, chunks) == []
    assert len(chunks) == (len(ROWS) + chunk - 1) // chunk
    assert chunks[0][0] is None and chunks[-1][1] is None
    if chunk == 1:  # some chunks read plain, some not
        assert any(c[2] for c in chunks) and any(not c[2] for c in chunks)
    queries = source_queries(t, chunks=chunks)
    chunked = [r[0] for sql, params in queries for r in src.execute(sql, params)]
    assert chunked == single
    assert b"back\\\\slash" in b"".join(single) and b"tab\\there" in b"".join(single)
