"""Verification: what the target prints with COPY TO, against what the source rendered.

`render` makes SQLite produce each row exactly as PostgreSQL's COPY TO prints the stored row,
so the target side needs no SQL of its own: stream `COPY (SELECT ... ORDER BY key) TO STDOUT`
and hash it (sha256 of the stream for tables with an integer key, else a sum of per-line
md5s).
On a mismatch a second pass walks both sides to name the first differing row.
"""

# ruff: noqa: S608 - SQL text here is built from quoted identifiers, never from values

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Generator, Iterator
from dataclasses import dataclass

import psycopg
from psycopg import pq

from .copy import LineSink, SourceChecksum, batches, line_hash, source_query
from .identifiers import quote_ident
from .plan import PlanTable


@dataclass(frozen=True)
class TableVerdict:
    table: str
    mode: str
    """`counts` or `checksums`."""
    ok: bool
    source_rows: int
    target_rows: int
    detail: str = ""


def target_copy(t: PlanTable, *, ordered: bool = True) -> str:
    """COPY TO of T's columns, sorted by its order key when ORDERED (else the table form of
    COPY, which reads the table as it lies without the executor's projection)."""
    cols = ", ".join(quote_ident(c.name) for c in t.columns)
    if t.order_key and ordered:
        return (f"COPY (SELECT {cols} FROM {quote_ident(t.name)} "
                f"ORDER BY {quote_ident(t.order_key)}) TO STDOUT")
    return f"COPY {quote_ident(t.name)} ({cols}) TO STDOUT"


def _target_lines(pg: psycopg.Connection, t: PlanTable) -> Generator[bytes, None, None]:
    """The target's rows as COPY TO prints them, one line (with its newline) at a time."""
    with pg.cursor() as cur, cur.copy(target_copy(t)) as cp:
        for data in cp:
            yield bytes(data)
    pg.rollback()


def _copy_out(pg: psycopg.Connection, sql: str) -> Iterator[memoryview]:
    """Rows of a `COPY ... TO STDOUT`, read with libpq's own call (psycopg.pq): a third of
    the Python work per row of iterating a psycopg Copy object."""
    pg.rollback()
    conn = pg.pgconn
    conn.send_query(sql.encode())
    first = conn.get_result()
    if first is None or first.status != pq.ExecStatus.COPY_OUT:
        message = conn.get_error_message()
        while conn.get_result() is not None:
            pass
        raise psycopg.DataError(f"{sql}: {message}")
    get = conn.get_copy_data
    while True:
        n, data = get(0)
        if n < 0:
            break
        yield data
    failure = ""
    while (res := conn.get_result()) is not None:
        if res.status == pq.ExecStatus.FATAL_ERROR:
            failure = (res.error_message or b"").decode(errors="replace")
    if n == -2 or failure:
        raise psycopg.DataError(f"{sql}: {failure or conn.get_error_message()}")


def target_checksum(pg: psycopg.Connection, t: PlanTable, *, ordered: bool,
                    sort: bool = True) -> SourceChecksum:
    """T's checksum as the target prints it; ORDERED: of the stream in key order, which
    SORT asks PostgreSQL for (without it, the rows come in the order they lie in)."""
    out = SourceChecksum(ordered)
    rows = 0
    if ordered:
        stream = hashlib.sha256()
        update = stream.update
        for data in _copy_out(pg, target_copy(t, ordered=sort)):
            update(data)
            rows += 1
        out.sha256 = stream.hexdigest()
    else:
        for data in _copy_out(pg, target_copy(t, ordered=False)):
            out.total += line_hash(data[:-1])
            rows += 1
    out.rows = rows
    return out


def check_table(pg: psycopg.Connection, t: PlanTable, src: SourceChecksum, *,
                in_order: bool = False) -> TableVerdict:
    """Compare T in the target with the source checksum taken while copying.

    IN_ORDER: the table was filled by one COPY in key order into a new file (COPY FREEZE
    after TRUNCATE), so its rows most likely lie in key order: it is read as it lies (a
    sequential scan, no index), and again sorted by key only if that stream differs. Else,
    or then, it is read sorted by key: a heap filled by one COPY into an existing file need
    not be in insertion order (the free space map sends rows that fit back to earlier
    pages)."""
    got = target_checksum(pg, t, ordered=src.ordered, sort=not in_order)
    if in_order and src.ordered and got.rows == src.rows and got.sha256 != src.sha256:
        got = target_checksum(pg, t, ordered=True)
    if got.rows != src.rows:
        return TableVerdict(t.source, "checksums", False, src.rows, got.rows,
                            f"row count differs: source {src.rows}, target {got.rows}")
    same = got.sha256 == src.sha256 if src.ordered else got.total == src.total
    return TableVerdict(t.source, "checksums", same, src.rows, got.rows,
                        "" if same else "content checksum differs")


def check_count(pg: psycopg.Connection, t: PlanTable, source_rows: int) -> TableVerdict:
    with pg.cursor() as cur:
        got = cur.execute(f"SELECT count(*) FROM {quote_ident(t.name)}").fetchone()
    pg.rollback()
    n = int(got[0]) if got else 0
    ok = n == source_rows
    return TableVerdict(t.source, "counts", ok, source_rows, n,
                        "" if ok else f"row count differs: source {source_rows}, target {n}")


def source_checksum(src: sqlite3.Connection, t: PlanTable, *,
                    excluded: str | None = None) -> SourceChecksum:
    """The checksum `copy_table` computes, without copying (for `db.verify`)."""
    sink = LineSink(t.order_key is not None)
    for batch in batches(src.execute(source_query(t, excluded=excluded))):
        sink.add(batch)
    return sink.finish()


def first_difference(src: sqlite3.Connection, pg: psycopg.Connection, t: PlanTable,
                     *, excluded: str | None = None) -> str:
    """Name the first row that differs (slow path, only after a mismatch)."""
    names = [c.name for c in t.columns]
    source = (r[0] + b"\n" for r in src.execute(source_query(t, excluded=excluded)))
    try:
        if t.order_key:
            kpos = names.index(t.order_key)
            target = _target_lines(pg, t)
            try:
                for s_line in source:
                    t_line = next(target, None)
                    if t_line != s_line:
                        key = s_line.split(b"\t")[kpos].decode()
                        return (f"first difference at {t.order_key}={key}: source "
                                f"{_show(s_line)}, target {_show(t_line)}")
                extra = next(target, None)
            finally:
                target.close()
            if extra is not None:
                return f"target has an extra row: {_show(extra)}"
            return "no differing row found on a second pass (did the source change?)"
        counts: dict[bytes, int] = {}
        for s_line in source:
            counts[s_line] = counts.get(s_line, 0) + 1
        unexpected = None
        for t_line in _target_lines(pg, t):
            if counts.get(t_line):
                counts[t_line] -= 1
            elif unexpected is None:
                unexpected = t_line
        if unexpected is not None:
            return f"target row not in the source: {_show(unexpected)}"
        missing = [k for k, v in counts.items() if v]
        if missing:
            return f"source row missing from the target: {_show(missing[0])}"
        return "no differing row found on a second pass (did the source change?)"
    finally:
        pg.rollback()


def _show(line: bytes | None) -> str:
    if line is None:
        return "(none)"
    text = line.rstrip(b"\n").decode("utf-8", "replace")
    return repr(text[:120] + ("..." if len(text) > 120 else ""))
