"""Copy lines read by the preflight's chunks (plain where nothing needs escaping) are the same
bytes as those of one query."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from fabfile.migrate import chunks, preflight
from fabfile.migrate.copy import LineSink, source_queries, source_query
from fabfile.migrate.plan import PlanTable, build_plan
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


def _table(tmp_path: Path, ddl: str, insert: str,
           rows: list[tuple[object, ...]]) -> tuple[Path, PlanTable]:
    path = tmp_path / "s.db"
    conn = sqlite3.connect(path)
    conn.execute(ddl)
    conn.executemany(insert, rows)
    conn.commit()
    conn.close()
    return path, build_plan(read_schema(open_readonly(path))).tables[0]


@pytest.mark.parametrize("chunk", [1, 2, 3, 1000])
@pytest.mark.parametrize("ddl", [
    "CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT, u, j JSON)",
    "CREATE TABLE t (id INTEGER NOT NULL, s VARCHAR(20), u, j JSON)",
])
def test_chunked_lines_equal_the_single_query(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              chunk: int, ddl: str) -> None:
    path, t = _table(tmp_path, ddl, "INSERT INTO t (rowid, id, s, u, j) VALUES (?, ?, ?, ?, ?)",
                     [(r[0], *r) for r in ROWS])
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


MIXED: list[tuple[object, ...]] = [
    (1, 0.1, '{"b": 1, "a": "t\\tab"}', "x", 5),
    (2, -0.0, None, None, None),
    (3, 1e15, '[1.50, "\\u00e9"]', "back\\slash", 2**62),
    (4, float("inf"), "{}", "", -1),
    (5, 5.0, '{"a": {"b": [null, true]}}', "nl\nx", 0),
    (6, 1e-5, '"' + "long" * 2000 + '"', "é", None),
    (7, None, "null", "z", 7),
]


@pytest.mark.parametrize("chunk", [1, 3, 1000])
@pytest.mark.parametrize("ddl", [
    "CREATE TABLE t (id INTEGER PRIMARY KEY, f REAL, j JSON, s TEXT, n INTEGER)",
    "CREATE TABLE t (id INTEGER NOT NULL, f DOUBLE, j JSONB, s VARCHAR(20), n, "
    "PRIMARY KEY (id)) WITHOUT ROWID",
])
def test_one_pass_lines_equal_the_copy_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             chunk: int, ddl: str) -> None:
    path, t = _table(tmp_path, ddl, "INSERT INTO t VALUES (?, ?, ?, ?, ?)", MIXED)
    src = open_source(path)
    expected = b"".join(r[0] + b"\n" for r in src.execute(source_query(t)))
    monkeypatch.setattr(preflight, "CHUNK_ROWS", chunk)
    sink = LineSink(t.order_key is not None)
    written: list[bytes] = []
    bad, kept = preflight.scan_and_render(src, t, sink, lambda d: bool(written.append(d)) or True)
    assert bad == [] and kept and b"".join(written) == expected
    assert sink.finish().rows == len(MIXED)


def test_chunks_of_wide_text_shrink_to_their_byte_budget(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "w.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT)")
    conn.executemany("INSERT INTO t (s) VALUES (?)", [("x" * 100,)] * 3000)
    conn.commit()
    monkeypatch.setattr(chunks, "CHUNK_BYTES", 10_000)
    walked = list(chunks.key_chunks(conn, "t", "rowid", ["s"]))
    sizes = [len(joined[0] or b"") for _w, _p, joined in walked]
    assert sizes[0] == 1024 * 100  # the first chunk is small, then they follow the budget
    assert max(sizes[1:]) <= 10_000 and sum(sizes) == 300_000
