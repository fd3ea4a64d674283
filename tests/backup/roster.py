"""Load the bench roster (SQLite, `make_roster_sqlite.py`) into PostgreSQL, and fingerprint it.

A small stand-in for `inv db.migrate-from-sqlite` so the backup tests and benchmark do not
depend on the migrator: declared SQLite types map to their PostgreSQL twins, rows go in with
COPY, then indexes and foreign keys. `fingerprint()` is what both sides of a round trip are
compared by: per table, the row count and an md5 over the rows in primary-key order.
"""

from __future__ import annotations

import fcntl
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import psycopg
from psycopg import sql

BENCH_SCRIPT = Path("/work/shared/bench/make_roster_sqlite.py")
CACHE = Path(os.environ.get("SHIPYARD_BENCH_CACHE", "/var/cache/shipyard-testbed/bench"))

TYPE_MAP = [
    (r"^INTEGER$", "bigint"),
    (r"^BOOLEAN$", "boolean"),
    (r"^DATETIME$", "timestamp"),
    (r"^DATE$", "date"),
    (r"^JSON$", "jsonb"),
    (r"^FLOAT$", "double precision"),
    (r"^BLOB$", "bytea"),
    (r"^TEXT$", "text"),
    (r"^(VARCHAR\(\d+\))$", r"\1"),
    (r"^(NUMERIC\(\d+, ?\d+\))$", r"\1"),
]


def bench_sqlite(scale: float) -> Path:
    """The bench roster at `scale`, generated once and cached (it is deterministic)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    out = CACHE / f"roster-{scale:g}.db"
    with (CACHE / "make.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not out.exists():
            part = out.with_suffix(".part")
            part.unlink(missing_ok=True)
            subprocess.run([sys.executable, str(BENCH_SCRIPT), str(part), "--scale", f"{scale:g}"],
                           check=True, capture_output=True)
            part.rename(out)
    return out


def _pg_type(declared: str) -> str:
    for pattern, repl in TYPE_MAP:
        if re.match(pattern, declared, re.IGNORECASE):
            return re.sub(pattern, repl, declared, flags=re.IGNORECASE)
    raise ValueError(f"no PostgreSQL type for SQLite {declared!r}")


def load_roster(sqlite_path: Path, url: str) -> dict[str, int]:
    """Copy every table of the roster into the (empty) database at `url`; returns row counts."""
    src = sqlite3.connect(sqlite_path)
    tables = [r[0] for r in src.execute(
        "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY rowid")]
    counts: dict[str, int] = {}
    with psycopg.connect(url, autocommit=True) as dst:
        post: list[sql.Composable] = []
        for table in tables:
            cols = list(src.execute(f'PRAGMA table_info("{table}")'))
            defs = [sql.SQL("{} {}{}").format(
                sql.Identifier(c[1]), sql.SQL(_pg_type(c[2])),
                sql.SQL(" NOT NULL" if c[3] else "")) for c in cols]
            pk = [c[1] for c in sorted(cols, key=lambda c: c[5]) if c[5]]
            dst.execute(sql.SQL("CREATE TABLE {} ({})").format(
                sql.Identifier(table), sql.SQL(", ").join(defs)))
            post.append(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY ({})").format(
                sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, pk))))
            for fk in src.execute(f'PRAGMA foreign_key_list("{table}")'):
                post.append(sql.SQL("ALTER TABLE {} ADD FOREIGN KEY ({}) REFERENCES {} ({})"
                                    "{}").format(
                    sql.Identifier(table), sql.Identifier(fk[3]), sql.Identifier(fk[2]),
                    sql.Identifier(fk[4]),
                    sql.SQL(" ON DELETE CASCADE" if fk[6] == "CASCADE" else "")))
            for idx in src.execute(f'PRAGMA index_list("{table}")'):
                if idx[3] != "c":
                    if idx[3] == "u":
                        icols = [r[2] for r in src.execute(f'PRAGMA index_info("{idx[1]}")')]
                        post.append(sql.SQL("ALTER TABLE {} ADD UNIQUE ({})").format(
                            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, icols))))
                    continue
                icols = [r[2] for r in src.execute(f'PRAGMA index_info("{idx[1]}")')]
                post.insert(0, sql.SQL("CREATE INDEX {} ON {} ({})").format(
                    sql.Identifier(idx[1]), sql.Identifier(table),
                    sql.SQL(", ").join(map(sql.Identifier, icols))))
            names = [c[1] for c in cols]
            bools = {i for i, c in enumerate(cols) if c[2].upper() == "BOOLEAN"}
            copy = sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, names)))
            n = 0
            with dst.cursor() as cur, cur.copy(copy) as cp:
                columns = ", ".join(f'"{x}"' for x in names)
                for row in src.execute(f'SELECT {columns} FROM "{table}"'):  # noqa: S608
                    if bools:
                        row = tuple(bool(v) if i in bools and v is not None else v
                                    for i, v in enumerate(row))
                    cp.write_row(row)
                    n += 1
            counts[table] = n
        for stmt in sorted(post, key=lambda s: "FOREIGN" in s.as_string(None)):
            dst.execute(stmt)
        dst.execute("ANALYZE")
    src.close()
    return counts


FINGERPRINT_SQL = """
SELECT format('SELECT %L AS t, count(*) AS n, '
              'coalesce(md5(string_agg(md5(x::text), '''' ORDER BY %s)), '''') AS h FROM %I AS x',
              c.relname,
              coalesce((SELECT string_agg(format('x.%I', a.attname), ', ' ORDER BY k.ord)
                 FROM pg_index i
                 CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                WHERE i.indrelid = c.oid AND i.indisprimary), 'x::text'),
              c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relkind = 'r'
 ORDER BY c.relname
"""


def fingerprint(url: str) -> dict[str, tuple[int, str]]:
    """Per table of schema public: (row count, md5 of its rows in primary-key order,
    or in text order for a table without one)."""
    with psycopg.connect(url) as conn:
        queries = [r[0] for r in conn.execute(FINGERPRINT_SQL)]
        out: dict[str, tuple[int, str]] = {}
        for q in queries:
            table, n, digest = conn.execute(q).fetchone()  # type: ignore[misc]
            out[table] = (n, digest)
    return out
