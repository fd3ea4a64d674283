"""Preflight: every value that cannot move unchanged, found before the target is touched.

Per table, one SQLite query evaluates every column's check in C and returns only the bad
rows; per foreign key, one anti-join finds orphans (a range test when the parent's integer
keys are dense, which costs one pass and no lookups).
"""

# ruff: noqa: S608 - SQL text here is built from quoted identifiers, never from values

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from . import chunks
from .chunks import CopyChunk
from .copy import LineSink, batches
from .plan import PlanForeignKey, PlanTable
from .render import ESCAPE_KINDS, UTF8_KINDS, sq, sqlite_check, sqlite_emit_line

EXCERPT = 60


@dataclass(frozen=True)
class BadRow:
    table: str
    key: str
    """`rowid=N`, or the primary key of a WITHOUT ROWID table."""
    column: str
    reason: str
    excerpt: str
    rowid: int | None = None
    pk: tuple[object, ...] | None = None


def row_ident(t: PlanTable) -> tuple[str, list[str]]:
    """SQL selecting a row's identity, and the source key columns (empty: rowid)."""
    if t.without_rowid:
        src = [c.source for c in t.columns if c.name in t.primary_key]
        order = [next(c.source for c in t.columns if c.name == k) for k in t.primary_key]
        return ", ".join(sq(c) for c in order), order or src
    return "rowid", []


def _excerpt(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            return repr(value[:EXCERPT]) + ("..." if len(value) > EXCERPT else "")
        value = text
    text = repr(value)
    return text[:EXCERPT] + ("..." if len(text) > EXCERPT else "")


def _key_text(t: PlanTable, ident: tuple[object, ...], keycols: list[str]) -> str:
    if not keycols:
        return f"rowid={ident[0]}"
    return ", ".join(f"{c}={v!r}" for c, v in zip(keycols, ident, strict=True))


def scan_table(conn: sqlite3.Connection, t: PlanTable,
               copy_chunks: list[CopyChunk] | None = None) -> list[BadRow]:
    """Every (row, column) of T whose value does not fit its PostgreSQL column.

    COPY_CHUNKS, when given, receives the rowid chunks the scan walked, each with the text
    columns that hold nothing COPY escapes there (the copy then reads them plain); it stays
    empty when the scan is one query.

    The scan only tests (`check IS NOT NULL OR ...`, short-circuited in C); the reasons are
    built afterwards for the few rows it returns.
    """
    checks = [(c.source, sqlite_check(c.source, c.type)) for c in t.columns]
    checks += [(c.source,
                f"CASE WHEN {sq(c.source)} IS NULL THEN 'NULL in a PRIMARY KEY column' END")
               for c in t.columns if c.source in _key_columns(t)]
    if not checks:
        return []
    ident_sql, keycols = row_ident(t)
    nkey = len(keycols) or 1
    if not _chunked(t):
        test = " OR ".join(f"({expr}) IS NOT NULL" for _c, expr in checks)
        with _text_keys(conn):
            bad_keys = conn.execute(
                f"SELECT {ident_sql} FROM {sq(t.source)} WHERE {test}").fetchall()
    else:
        bad_keys = _bad_rowids(conn, t, checks, copy_chunks)
    out: list[BadRow] = []
    where = " AND ".join(f"{sq(c)} IS ?" for c in keycols) if keycols else "rowid = ?"
    detail = ", ".join(f"{expr}, {sq(col)}" for col, expr in checks)
    for key in bad_keys:
        ident = tuple(key[:nkey])
        row = conn.execute(f"SELECT {detail} FROM {sq(t.source)} WHERE {where}", ident).fetchone()
        for i, (column, _expr) in enumerate(checks):
            reason = row[2 * i]
            if reason is not None:
                text = reason.decode() if isinstance(reason, bytes) else str(reason)
                out.append(_bad(t, ident, keycols, column, text, _excerpt(row[2 * i + 1])))
    return out


CHUNK_ROWS = chunks.CHUNK_ROWS



_SPECIAL = (b"\\", b"\x08", b"\t", b"\n", b"\x0b", b"\x0c", b"\r")
"""What COPY text escapes: backslash, \\b \\t \\n \\v \\f \\r (looked for one byte at a
time: `in` on bytes is a memchr, several times faster than a regex class)."""


def _shadows_rowid(t: PlanTable) -> bool:
    """A column named like the rowid hides it from SQL: such tables are scanned in one query."""
    return any(c.source.lower() in ("rowid", "oid", "_rowid_") for c in t.columns)


def _chunked(t: PlanTable) -> bool:
    """Whether T is walked in rowid chunks (`_chunk_walk`) rather than read in one query."""
    return (not t.without_rowid and any(c.type.kind in UTF8_KINDS for c in t.columns)
            and not _shadows_rowid(t))


def _key_columns(t: PlanTable) -> frozenset[str]:
    """Source columns of T's primary key where NULL must be refused (SQLite lets a NULL into
    a primary key that is not the rowid)."""
    return frozenset(c.source for c in t.columns if c.name in t.primary_key and not t.rowid_alias)


def _chunk_walk(conn: sqlite3.Connection, t: PlanTable,
                ) -> Iterator[tuple[str, tuple[int, int], frozenset[str], frozenset[str]]]:
    """T's rowid chunks (`chunks.key_chunks`): the WHERE condition and parameters of each,
    its text columns that are clean (no NUL, nothing >= 0x80) and those holding nothing COPY
    escapes (plain).

    Python tests each chunk's concatenated text columns at once (`isascii`, vectorised). A
    column clean in the chunk is checked without the NUL/UTF-8 part, the one that costs a
    GLOB scan per value; that part cannot fire there (it needs a NUL or a byte >= 0x80), so
    the rows found are exactly those of the full test. A plain column is rendered without
    escaping, which gives the same bytes there."""
    texts = [c.source for c in t.columns if c.type.kind in UTF8_KINDS]
    escapable = {c.source for c in t.columns if c.type.kind in ESCAPE_KINDS}
    for where, params, joined in chunks.key_chunks(conn, t.source, "rowid", texts,
                                                   size=CHUNK_ROWS):
        clean = frozenset(c for c, v in zip(texts, joined, strict=True)
                          if v is None or (v.isascii() and b"\0" not in v))
        plain = frozenset(c for c, v in zip(texts, joined, strict=True)
                          if c in escapable and (v is None or not any(b in v for b in _SPECIAL)))
        yield where, params, clean, plain


def _bad_rowids(conn: sqlite3.Connection, t: PlanTable, checks: list[tuple[str, str]],
                copy_chunks: list[CopyChunk] | None = None) -> list[tuple[int]]:
    """The scan of a rowid table with text columns, chunk by chunk (`_chunk_walk`); the
    chunks and their plain columns go to COPY_CHUNKS."""
    cheap = {c.source: sqlite_check(c.source, c.type, utf8=False)
             for c in t.columns if c.type.kind in UTF8_KINDS}
    walked: list[CopyChunk] = []
    out: list[tuple[int]] = []
    for where, params, clean, plain in _chunk_walk(conn, t):
        walked.append((params[0], params[1], plain))
        test = " OR ".join(f"({cheap[c] if c in clean else expr}) IS NOT NULL"
                           for c, expr in checks)
        out += conn.execute(f"SELECT rowid FROM {sq(t.source)} WHERE {where} AND ({test})",
                            params).fetchall()
    if copy_chunks is not None and walked:
        # open at both ends: every row is in exactly one chunk, whatever the copy finds
        walked[0] = (None, *walked[0][1:])
        walked[-1] = (walked[-1][0], None, walked[-1][2])
        copy_chunks.extend(walked)
    return out


def scan_and_render(conn: sqlite3.Connection, t: PlanTable, sink: LineSink,
                    write: Callable[[bytes], bool]) -> tuple[list[BadRow], bool]:
    """The preflight of T (`scan_table`) and its COPY text in one pass over the source.

    One query per chunk (`_chunk_walk`), or one for the table, renders every row checked
    (`render.sqlite_emit_line`: NULL for a row holding a value that cannot move), in the order
    the copy needs; SINK counts and hashes the lines and WRITE keeps them (False: it cannot
    keep more). A NULL line makes this the slow path: the rest is not rendered, and
    `scan_table` finds every bad row with its reasons. Returns the bad rows, and whether WRITE
    has every line."""
    kept = True
    for sql, params in _render_queries(conn, t):
        cur = conn.execute(sql, params)
        for batch in batches(cur):
            try:
                data = sink.add(batch)
            except RuntimeError:
                cur.close()
                return scan_table(conn, t), False
            kept = kept and write(data)
    return [], kept


def _render_queries(conn: sqlite3.Connection,
                    t: PlanTable) -> Iterator[tuple[str, tuple[int, ...]]]:
    cols = [(c.source, c.type) for c in t.columns]
    notnull = frozenset(c.source for c in t.columns if c.source_notnull)
    keys = _key_columns(t)
    order = ""
    if t.order_key:
        order = " ORDER BY " + sq(next(c.source for c in t.columns if c.name == t.order_key))
    walk = _chunk_walk(conn, t) if _chunked(t) else [("", (), frozenset(), frozenset())]
    for where, params, clean, plain in walk:
        line = sqlite_emit_line(cols, notnull, plain, clean, keys)
        cond = f" WHERE {where}" if where else ""
        yield f"SELECT {line} FROM {sq(t.source)}{cond}{order}", params


@contextmanager
def _text_keys(conn: sqlite3.Connection) -> Iterator[None]:
    """Fetch keys as str (workers read text as bytes): they are bound again as parameters,
    and a bytes parameter is a BLOB, which never equals the TEXT it came from."""
    saved = conn.text_factory
    conn.text_factory = str
    try:
        yield
    finally:
        conn.text_factory = saved


def _bad(t: PlanTable, ident: tuple[object, ...], keycols: list[str], column: str, reason: str,
         excerpt: str) -> BadRow:
    rowid = None if keycols else int(str(ident[0]))
    return BadRow(t.source, _key_text(t, ident, keycols), column, reason, excerpt,
                  rowid=rowid, pk=ident if keycols else None)


def scan_orphans(conn: sqlite3.Connection, child: PlanTable, parent: PlanTable,
                 fk: PlanForeignKey, excluded_parent: str | None = None) -> list[BadRow]:
    """Rows of CHILD whose non-NULL key FK finds no parent row (SQLite's FK semantics).

    EXCLUDED_PARENT names a temp table of parent rowids being quarantined: their children
    count as orphans too.
    """
    _ident, keycols = row_ident(child)
    nkey = len(keycols) or 1
    c_cols = [sq(c) for c in fk.source_columns]
    p_cols = [sq(c) for c in fk.source_parent_columns]
    notnull = " AND ".join(f"c.{c} IS NOT NULL" for c in c_cols)
    ident = "c.rowid" if not keycols else ", ".join("c." + sq(k) for k in keycols)
    vals = ", ".join("c." + c for c in c_cols)
    sql = None
    if (len(c_cols) == 1 and parent.rowid_alias == fk.source_parent_columns[0]
            and excluded_parent is None):
        lo, hi, n = conn.execute(
            f"SELECT min(rowid), max(rowid), count(*) FROM {sq(parent.source)}").fetchone()
        c = f"c.{c_cols[0]}"
        if not n:
            sql = f"SELECT {ident}, {vals} FROM {sq(child.source)} c WHERE {notnull}"
        elif hi - lo + 1 == n:
            sql = (f"SELECT {ident}, {vals} FROM {sq(child.source)} c WHERE {notnull} AND "
                   f"(typeof({c}) <> 'integer' OR {c} < {lo} OR {c} > {hi})")
    if sql is None:
        match = " AND ".join(f"p.{p} = c.{c}" for p, c in zip(p_cols, c_cols, strict=True))
        pkey = "p.rowid"
        if parent.without_rowid:
            pkey = "(" + ", ".join("p." + sq(c.source) for c in parent.columns
                                   if c.name in parent.primary_key) + ")"
        excl = (f" AND {pkey} NOT IN (SELECT * FROM temp.{sq(excluded_parent)})"
                if excluded_parent else "")
        sql = (f"SELECT {ident}, {vals} FROM {sq(child.source)} c "
               f"WHERE {notnull} AND NOT EXISTS (SELECT 1 FROM {sq(parent.source)} p "
               f"WHERE {match}{excl})")
    out = []
    with _text_keys(conn):
        found = conn.execute(sql).fetchall()
    for row in found:
        key = tuple(row[:nkey])
        shown = ", ".join(_excerpt(v) for v in row[nkey:])
        reason = (f"orphaned foreign key: no {parent.source}"
                  f"({', '.join(fk.source_parent_columns)}) = {shown}")
        out.append(_bad(child, key, keycols, ", ".join(fk.source_columns), reason, shown))
    return out
