"""Verification: the target's rows, rendered canonically by PostgreSQL, against the source's.

Per table one aggregate query: ordered tables hash `string_agg` of their lines in key order
per chunk (the same bytes the copy hashed); the others sum per-line md5s. On a mismatch a
second, slower pass walks both sides to name the first differing key.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from operator import itemgetter

import psycopg

from .copy import SourceChecksum, line_hash, source_query
from .identifiers import quote_ident
from .plan import PlanTable
from .render import pg_line


@dataclass(frozen=True)
class TableVerdict:
    table: str
    mode: str
    """`counts` or `checksums`."""
    ok: bool
    source_rows: int
    target_rows: int
    detail: str = ""


def target_query(t: PlanTable, src: SourceChecksum) -> str:
    line = pg_line([(c.name, c.type) for c in t.columns])
    table = quote_ident(t.name)
    if src.ordered:
        key = quote_ident(t.order_key or "")
        bounds = [b + 1 for b, _ in src.chunks[:-1]]
        bucket = (f"width_bucket({key}, ARRAY[{', '.join(map(str, bounds))}]::bigint[])"
                  if bounds else "0")
        return (f"SELECT {bucket} AS b, count(*), md5(string_agg({line} || E'\\n', '' "
                f"ORDER BY {key})) FROM {table} GROUP BY 1 ORDER BY 1")
    return (f"SELECT 0, count(*), coalesce(sum(('x' || left(md5({line}), 16))::bit(64)::bigint), 0) "
            f"FROM {table}")


def check_table(pg: psycopg.Connection, t: PlanTable, src: SourceChecksum) -> TableVerdict:
    """Compare T in the target with the source checksum taken while copying."""
    with pg.cursor() as cur:
        cur.execute("SET LOCAL work_mem = '256MB'")
        rows = cur.execute(target_query(t, src)).fetchall()
    pg.rollback()
    count = sum(int(r[1]) for r in rows)
    if count != src.rows:
        return TableVerdict(t.source, "checksums", False, src.rows, count,
                            f"row count differs: source {src.rows}, target {count}")
    if src.ordered:
        got = [str(r[2]) for r in rows]
        want = [md5 for _b, md5 in src.chunks]
        if count == 0 or got == want:
            return TableVerdict(t.source, "checksums", True, src.rows, count)
    elif (int(rows[0][2]) if rows else 0) == src.total:
        return TableVerdict(t.source, "checksums", True, src.rows, count)
    return TableVerdict(t.source, "checksums", False, src.rows, count, "content checksum differs")


def check_count(pg: psycopg.Connection, t: PlanTable, source_rows: int) -> TableVerdict:
    with pg.cursor() as cur:
        got = cur.execute(f"SELECT count(*) FROM {quote_ident(t.name)}").fetchone()
    pg.rollback()
    n = int(got[0]) if got else 0
    ok = n == source_rows
    return TableVerdict(t.source, "counts", ok, source_rows, n,
                        "" if ok else f"row count differs: source {source_rows}, target {n}")


def source_checksum(src: sqlite3.Connection, t: PlanTable, *, excluded: str | None = None) -> SourceChecksum:
    """The checksum `copy_table` would compute, without copying (for `db.verify`)."""
    from .copy import BATCH_ROWS, CHUNK_BYTES

    ordered = t.order_key is not None
    key_pos = [c.name for c in t.columns].index(t.order_key) if ordered else -1
    out = SourceChecksum(ordered)
    md5 = hashlib.md5()
    chunk = 0
    first = itemgetter(0)
    cur = src.execute(source_query(t, excluded=excluded))
    while batch := cur.fetchmany(BATCH_ROWS):
        out.rows += len(batch)
        if ordered:
            data = b"\n".join(map(first, batch)) + b"\n"
            md5.update(data)
            chunk += len(data)
            if chunk >= CHUNK_BYTES:
                out.chunks.append((int(batch[-1][0].split(b"\t", key_pos + 1)[key_pos]),
                                   md5.hexdigest()))
                md5 = hashlib.md5()
                chunk = 0
        else:
            out.total += sum(map(line_hash, map(first, batch)))
    if ordered and (chunk or not out.chunks):
        out.chunks.append((2**63 - 1, md5.hexdigest()))
    return out


def first_difference(src: sqlite3.Connection, pg: psycopg.Connection, t: PlanTable,
                     *, excluded: str | None = None) -> str:
    """Name the first row that differs (slow path, only after a mismatch)."""
    line = pg_line([(c.name, c.type) for c in t.columns])
    names = [c.name for c in t.columns]
    if t.order_key:
        kpos = names.index(t.order_key)
        s_rows = (r[0] for r in src.execute(source_query(t, excluded=excluded)))
        with pg.cursor(name="verify_diff") as cur:
            cur.execute(f"SELECT {line} FROM {quote_ident(t.name)} ORDER BY {quote_ident(t.order_key)}")
            for s_line in s_rows:
                got = cur.fetchone()
                t_line = got[0].encode() if got else None
                if t_line != s_line:
                    key = s_line.split(b"\t")[kpos].decode()
                    pg.rollback()
                    return (f"first difference at {t.order_key}={key}: source "
                            f"{_show(s_line)} target {_show(t_line)}")
            extra = cur.fetchone()
        pg.rollback()
        if extra:
            return f"target has an extra row: {_show(extra[0].encode())}"
        return "no differing row found on a second pass (the source changed?)"
    source = {}
    for (s_line,) in src.execute(source_query(t, excluded=excluded)):
        source[s_line] = source.get(s_line, 0) + 1
    with pg.cursor(name="verify_diff") as cur:
        cur.execute(f"SELECT {line} FROM {quote_ident(t.name)}")
        for (t_text,) in cur:
            b = t_text.encode()
            if source.get(b):
                source[b] -= 1
            else:
                pg.rollback()
                return f"target row not in the source: {_show(b)}"
    pg.rollback()
    missing = [k for k, v in source.items() if v]
    if missing:
        return f"source row missing from the target: {_show(missing[0])}"
    return "no differing row found on a second pass (the source changed?)"


def _show(line: bytes | None) -> str:
    if line is None:
        return "(none)"
    text = line.decode("utf-8", "replace")
    return repr(text[:120] + ("..." if len(text) > 120 else ""))
