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
from contextlib import AbstractContextManager
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path

import psycopg

from .chunks import CopyChunk
from .identifiers import quote_ident
from .plan import PlanTable
from .render import sq, sqlite_line

BATCH_ROWS = 4000
BATCH_BYTES = 8 << 20
"""A batch holds at most BATCH_ROWS rows, fewer when rows are wide (`batches`), so memory
stays bounded whatever the rows hold."""


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


_first = itemgetter(0)


class LineSink:
    """Batches of rendered rows (1-tuples of one COPY line each) -> the bytes COPY is sent,
    counted and hashed the way verification hashes the target (`SourceChecksum`)."""

    def __init__(self, ordered: bool) -> None:
        self.checksum = SourceChecksum(ordered)
        self.bytes = 0
        self._stream = hashlib.sha256()

    def add(self, batch: list[tuple[bytes | None]]) -> bytes:
        """The batch as COPY data; a RuntimeError if a row rendered to NULL."""
        try:
            data = b"\n".join(map(_first, batch)) + b"\n"
        except TypeError:
            raise RuntimeError("a row rendered to NULL (a value the preflight let through "
                               "cannot be written)") from None
        self.checksum.rows += len(batch)
        self.bytes += len(data)
        if self.checksum.ordered:
            self._stream.update(data)
        else:
            self.checksum.total += sum(map(line_hash, map(_first, batch)))
        return data

    def finish(self) -> SourceChecksum:
        if self.checksum.ordered:
            self.checksum.sha256 = self._stream.hexdigest()
        return self.checksum


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


def batches(cur: sqlite3.Cursor) -> Iterator[list[tuple[bytes | None]]]:
    """CUR's rows (1-tuples of a COPY line) in batches of about BATCH_BYTES: the batch size
    follows the width of the rows seen so far."""
    size = 64
    while batch := cur.fetchmany(size):
        yield batch
        try:
            width = sum(map(len, map(_first, batch))) // len(batch) + 1
        except TypeError:  # a NULL line: the consumer stops here
            continue
        size = max(1, min(BATCH_ROWS, BATCH_BYTES // width))


def _batches(src: sqlite3.Connection, queries: list[tuple[str, tuple[int, ...]]],
             ) -> Iterator[list[tuple[bytes | None]]]:
    for sql, params in queries:
        yield from batches(src.execute(sql, params))


def _copy_in(cur: psycopg.Cursor, t: PlanTable,
             freeze: bool) -> AbstractContextManager[psycopg.Copy]:
    if freeze:
        cur.execute(f"TRUNCATE {quote_ident(t.name)}")
    return cur.copy(copy_statement(t, freeze=freeze))


def copy_statement(t: PlanTable, *, freeze: bool = False) -> str:
    cols = ", ".join(quote_ident(c.name) for c in t.columns)
    return f"COPY {quote_ident(t.name)} ({cols}) FROM STDIN" + (" (FREEZE)" if freeze else "")


def copy_table(src: sqlite3.Connection, pg: psycopg.Connection, t: PlanTable, *,
               excluded: str | None = None, chunks: list[CopyChunk] | None = None,
               freeze: bool = False,
               progress: Callable[[int, int], None] | None = None) -> CopyResult:
    """Render T from SQLite and stream it into the (empty) target table in one transaction;
    return what was sent. FREEZE as in `copy_spilled`; PROGRESS gets (rows, bytes) sent so
    far after each batch."""
    start = time.perf_counter()
    sink = LineSink(t.order_key is not None)
    queries = source_queries(t, excluded=excluded, chunks=chunks)
    with pg.cursor() as pcur, _copy_in(pcur, t, freeze) as cp:
        for batch in _batches(src, queries):
            try:
                cp.write(sink.add(batch))
            except RuntimeError as exc:
                raise RuntimeError(f"{t.source}: {exc}; nothing of this table was "
                                   "committed") from None
            if progress:
                progress(sink.checksum.rows, sink.bytes)
    pg.commit()
    checksum = sink.finish()
    return CopyResult(t.source, checksum.rows, sink.bytes, time.perf_counter() - start, checksum)


SPILL_BLOCK = 1 << 20


def copy_spilled(pg: psycopg.Connection, t: PlanTable, path: Path, checksum: SourceChecksum,
                 nbytes: int, *, freeze: bool = False,
                 progress: Callable[[int, int], None] | None = None) -> CopyResult:
    """Stream T's COPY text, rendered and hashed by the preflight (`spill`: NBYTES at PATH),
    into the (empty) target table in one transaction. With FREEZE (a table this run
    created), the table is truncated first in the same transaction so COPY can write its
    rows frozen: nothing rewrites their pages later to set hint bits or freeze them."""
    start = time.perf_counter()
    sent = 0
    with pg.cursor() as pcur, _copy_in(pcur, t, freeze) as cp, path.open("rb") as fh:
        while block := fh.read(SPILL_BLOCK):
            cp.write(block)
            sent += len(block)
            if progress:
                progress(checksum.rows * sent // max(1, nbytes), sent)
    if sent != nbytes:
        pg.rollback()
        raise RuntimeError(f"{t.source}: the spill file holds {sent} bytes, the preflight "
                           f"wrote {nbytes}; nothing of this table was committed")
    pg.commit()
    return CopyResult(t.source, checksum.rows, sent, time.perf_counter() - start, checksum)
