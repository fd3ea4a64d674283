"""One table from SQLite into PostgreSQL with COPY, hashing what it sends.

SQLite renders each row as one COPY text line (see `render`); the worker joins a batch in C
(`bytes.join` over the rows) and writes it. The source checksum is computed on exactly these
bytes: for tables ordered by an integer key, md5 over the stream in chunks of key ranges; for
the rest, a sum of per-line md5s, which does not depend on order.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import itemgetter

import psycopg

from .identifiers import quote_ident
from .plan import PlanTable
from .render import sq, sqlite_line

BATCH_ROWS = 4000
CHUNK_BYTES = 256 * 1024 * 1024
"""md5 chunks stay well under PostgreSQL's 1 GB limit on one string_agg."""


@dataclass
class SourceChecksum:
    """What verification compares with the target: per-chunk md5 (ordered) or a sum."""

    ordered: bool
    rows: int = 0
    chunks: list[tuple[int, str]] = field(default_factory=list)
    """(highest key of the chunk, md5 hex) in key order; the last chunk's bound is unused."""
    total: int = 0

    def to_json(self) -> dict[str, object]:
        if self.ordered:
            return {"rows": self.rows, "md5_chunks": [c[1] for c in self.chunks]}
        return {"rows": self.rows, "md5_sum": str(self.total)}


@dataclass
class CopyResult:
    table: str
    rows: int
    bytes: int
    seconds: float
    checksum: SourceChecksum


def line_hash(line: bytes) -> int:
    return int.from_bytes(hashlib.md5(line).digest()[:8], "big", signed=True)


def source_query(t: PlanTable, *, excluded: str | None = None) -> str:
    """SQLite SELECT of T's COPY lines, in key order when T has an order key."""
    cols = [(c.source, c.type) for c in t.columns]
    sql = f"SELECT {sqlite_line(cols)} FROM {sq(t.source)}"
    if excluded:
        key = "rowid" if not t.without_rowid else \
            "(" + ", ".join(sq(c.source) for c in t.columns if c.name in t.primary_key) + ")"
        sql += f" WHERE {key} NOT IN (SELECT * FROM temp.{sq(excluded)})"
    if t.order_key:
        src = next(c.source for c in t.columns if c.name == t.order_key)
        sql += f" ORDER BY {sq(src)}"
    return sql


def copy_statement(t: PlanTable) -> str:
    cols = ", ".join(quote_ident(c.name) for c in t.columns)
    return f"COPY {quote_ident(t.name)} ({cols}) FROM STDIN"


def copy_table(src: sqlite3.Connection, pg: psycopg.Connection, t: PlanTable, *,
               excluded: str | None = None,
               progress: Callable[[int, int], None] | None = None) -> CopyResult:
    """Stream T into the (empty) target table in one transaction; return what was sent."""
    start = time.perf_counter()
    ordered = t.order_key is not None
    key_pos = [c.name for c in t.columns].index(t.order_key) if ordered else -1
    checksum = SourceChecksum(ordered)
    first = itemgetter(0)
    md5 = hashlib.md5()
    chunk_bytes = 0
    rows = nbytes = 0
    last_report = start
    cur = src.execute(source_query(t, excluded=excluded))
    with pg.cursor() as pcur, pcur.copy(copy_statement(t)) as cp:
        while True:
            batch = cur.fetchmany(BATCH_ROWS)
            if not batch:
                break
            try:
                data = b"\n".join(map(first, batch)) + b"\n"
            except TypeError:
                raise RuntimeError(
                    f"{t.source}: a row rendered to NULL (a value the preflight let through "
                    "cannot be written); nothing of this table was committed") from None
            cp.write(data)
            rows += len(batch)
            nbytes += len(data)
            if ordered:
                md5.update(data)
                chunk_bytes += len(data)
                if chunk_bytes >= CHUNK_BYTES:
                    last_key = int(batch[-1][0].split(b"\t", key_pos + 1)[key_pos])
                    checksum.chunks.append((last_key, md5.hexdigest()))
                    md5 = hashlib.md5()
                    chunk_bytes = 0
            else:
                checksum.total += sum(map(line_hash, map(first, batch)))
            now = time.perf_counter()
            if progress and now - last_report > 0.2:
                progress(rows, nbytes)
                last_report = now
    if ordered and (chunk_bytes or not checksum.chunks):
        checksum.chunks.append((2**63 - 1, md5.hexdigest()))
    pg.commit()
    checksum.rows = rows
    if progress:
        progress(rows, nbytes)
    return CopyResult(t.source, rows, nbytes, time.perf_counter() - start, checksum)
