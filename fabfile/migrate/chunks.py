"""A table walked in chunks of its integer key, each chunk's text columns concatenated in C.

The concatenations (`group_concat`, a copy per value) let Python test a whole chunk's bytes at
once (`bytes.isascii`, a regex over bytes), so the per-value SQL for that chunk can leave out
tests that cannot fire in it (a GLOB scan per value costs ~10 ns a byte).
"""

# ruff: noqa: S608 - SQL text here is built from quoted identifiers, never from values

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

from .render import sq

CHUNK_ROWS = 50_000
CHUNK_BYTES = 16 << 20
"""A chunk's concatenated text stays near this size: chunks start small and grow (up to
CHUNK_ROWS rows) only while the rows are narrow, so wide text cannot blow the memory."""

CopyChunk = tuple[int | None, int | None, frozenset[str]]
"""Rowids (lo, hi] of a chunk (None: unbounded; the first chunk includes lo) and the columns
to read without COPY escaping in it."""


def key_chunks(conn: sqlite3.Connection, table: str, key: str, cols: list[str], *,
               size: int = CHUNK_ROWS) -> Iterator[tuple[str, tuple[int, int],
                                                         list[bytes | None]]]:
    """Per chunk of at most SIZE rows (fewer for wide text: `CHUNK_BYTES`) of TABLE in KEY
    order (KEY: `rowid` or a quoted integer primary key): a WHERE condition selecting exactly
    its rows, its parameters, and each of COLS (source names) concatenated over the chunk
    (bytes; None when all are NULL).

    The first chunk starts at the minimum with `>=` (never `min - 1`: below -2**63 SQLite
    turns to floating point and would skip that row)."""
    first = conn.execute(f"SELECT min({key}) FROM {sq(table)}").fetchone()[0]
    if first is None:
        return
    sel = ", ".join(sq(c) for c in cols)
    concat = ", ".join(f"group_concat({sq(c)}, '')" for c in cols)
    op, start = ">=", int(first)
    saved = conn.text_factory
    rows = min(size, 1024)
    while True:
        conn.text_factory = bytes  # invalid UTF-8 must not fail the fetch
        try:
            row = conn.execute(
                f"SELECT max({key}), {concat} FROM (SELECT {key}, {sel} FROM {sq(table)} "
                f"WHERE {key} {op} ? ORDER BY {key} LIMIT {int(rows)})", (start,)).fetchone()
        finally:
            conn.text_factory = saved
        if row is None or row[0] is None:
            return
        end = int(row[0])
        yield f"{key} {op} ? AND {key} <= ?", (start, end), list(row[1:])
        op, start = ">", end
        held = sum(len(v) for v in row[1:] if v is not None)
        rows = max(1, min(size, rows * CHUNK_BYTES // max(1, held)))
