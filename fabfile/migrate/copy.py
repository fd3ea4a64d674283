"""One table from SQLite into PostgreSQL with COPY, hashing what it sends.

SQLite renders each row as one COPY text line (see `render`); the worker joins a batch in C
(`bytes.join` over the rows) and writes it. The source checksum is taken on exactly these
bytes: for a table ordered by an integer key, sha256 of the whole stream (faster than md5 on CPUs
with SHA extensions, as here); for the rest, a sum of per-line md5s, which does not depend on
order.
"""

# ruff: noqa: S608 - SQL text here is built from quoted identifiers, never from values

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from operator import itemgetter

import psycopg

from .identifiers import quote_ident
from .plan import PlanTable
from .preflight import CopyChunk
from .render import sq, sqlite_line

BATCH_ROWS = 4000


@dataclass
class SourceChecksum:
    """What verification compares with the target: sha256 of the ordered stream, or a sum of
    per-line hashes (tables without a single integer key)."""

    ordered: bool
    rows: int = 0
    sha256: str = ""
    total: int = 0

    def to_json(self) -> dict[str, object]:
        if self.ordered:
            return {"rows": self.rows, "sha256": self.sha256}
        return {"rows": self.rows, "md5_sum": str(self.total)}


@dataclass
class CopyResult:
    table: str
    rows: int
    bytes: int
    seconds: float
    checksum: SourceChecksum


def line_hash(line: bytes | memoryview) -> int:
    return int.from_bytes(hashlib.md5(line, usedforsecurity=False).digest()[:8], "big", signed=True)


def source_query(t: PlanTable, *, excluded: str | None = None, where: str | None = None,
                 plain: frozenset[str] = frozenset()) -> str:
    """SQLite SELECT of T's COPY lines, in key order when T has an order key; WHERE limits it
    to a chunk, PLAIN names columns that need no escaping there (`sqlite_line`)."""
    cols = [(c.source, c.type) for c in t.columns]
    notnull = frozenset(c.source for c in t.columns if c.source_notnull)
    sql = f"SELECT {sqlite_line(cols, notnull, plain)} FROM {sq(t.source)}"
    conds = [where] if where else []
    if excluded:
        key = "rowid" if not t.without_rowid else \
            "(" + ", ".join(sq(c.source) for c in t.columns if c.name in t.primary_key) + ")"
        conds.append(f"{key} NOT IN (SELECT * FROM temp.{sq(excluded)})")
    if conds:
        sql += " WHERE " + " AND ".join(conds)
    if t.order_key:
        src = next(c.source for c in t.columns if c.name == t.order_key)
        sql += f" ORDER BY {sq(src)}"
    return sql


def source_queries(t: PlanTable, *, excluded: str | None = None,
                   chunks: list[CopyChunk] | None = None) -> list[tuple[str, tuple[int, ...]]]:
    """`source_query` of T as (SQL, parameters): one query, or one per rowid chunk of the
    preflight (`preflight.scan_table`), in rowid order, each reading plain the text columns
    that hold nothing COPY escapes there (the bytes are the same; a GLOB per value less)."""
    if not chunks or t.without_rowid:
        return [(source_query(t, excluded=excluded), ())]
    out = []
    for lo, hi, plain in chunks:
        conds, params = [], []
        if lo is not None:
            conds.append("rowid > ?")
            params.append(lo)
        if hi is not None:
            conds.append("rowid <= ?")
            params.append(hi)
        out.append((source_query(t, excluded=excluded, where=" AND ".join(conds) or None,
                                 plain=plain), tuple(params)))
    return out


def _batches(src: sqlite3.Connection, queries: list[tuple[str, tuple[int, ...]]],
             ) -> Iterator[list[tuple[bytes | None]]]:
    for sql, params in queries:
        cur = src.execute(sql, params)
        while batch := cur.fetchmany(BATCH_ROWS):
            yield batch


def copy_statement(t: PlanTable) -> str:
    cols = ", ".join(quote_ident(c.name) for c in t.columns)
    return f"COPY {quote_ident(t.name)} ({cols}) FROM STDIN"


def copy_table(src: sqlite3.Connection, pg: psycopg.Connection, t: PlanTable, *,
               excluded: str | None = None, chunks: list[CopyChunk] | None = None,
               progress: Callable[[int, int], None] | None = None) -> CopyResult:
    """Stream T into the (empty) target table in one transaction; return what was sent."""
    start = time.perf_counter()
    checksum = SourceChecksum(t.order_key is not None)
    first = itemgetter(0)
    stream = hashlib.sha256()
    rows = nbytes = 0
    last_report = start
    queries = source_queries(t, excluded=excluded, chunks=chunks)
    with pg.cursor() as pcur, pcur.copy(copy_statement(t)) as cp:
        for batch in _batches(src, queries):
            try:
                data = b"\n".join(map(first, batch)) + b"\n"
            except TypeError:
                raise RuntimeError(
                    f"{t.source}: a row rendered to NULL (a value the preflight let through "
                    "cannot be written); nothing of this table was committed") from None
            cp.write(data)
            rows += len(batch)
            nbytes += len(data)
            if checksum.ordered:
                stream.update(data)
            else:
                checksum.total += sum(map(line_hash, map(first, batch)))
            now = time.perf_counter()
            if progress and now - last_report > 0.2:
                progress(rows, nbytes)
                last_report = now
    pg.commit()
    checksum.rows = rows
    checksum.sha256 = stream.hexdigest() if checksum.ordered else ""
    if progress:
        progress(rows, nbytes)
    return CopyResult(t.source, rows, nbytes, time.perf_counter() - start, checksum)
