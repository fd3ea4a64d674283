"""`--schema=existing`: the target's own secondary indexes and foreign keys, set aside while
the copies run and made again from their catalog definitions once the data is in.

A COPY into a table whose foreign keys check every row (a lookup and a row lock in the parent
per key) and whose indexes take every row one at a time costs several times the COPY alone:
the roster's assignments load about 4x faster without them. The same objects made after the
load are one sort per index and one anti-join per key (`VALIDATE CONSTRAINT`), and they come
back exactly as the app's migrations made them: `pg_get_indexdef` and `pg_get_constraintdef`,
the same names, a key that was NOT VALID stays so.

Only what can be made again from those definitions alone is set aside: indexes that back no
constraint, sit in the default tablespace, carry no comment, statistics target, clustering
or replica identity; foreign keys between two plain tables of the current schema, without a
comment. Everything else stays in place and checks rows as they land, as before.

Nothing is lost when a run dies: the drops and a record of what to make again
(`RECORD`, a table in the target) commit together, and the record goes only once everything
is back. A failed run makes them again (`restore`, which skips what exists); a run killed
before it could leaves the record, and the next run puts them back first (`recorded`).
"""

# ruff: noqa: S608 - SQL text here is built from quoted identifiers, never from values

from __future__ import annotations

import re
from dataclasses import dataclass

import psycopg

from .identifiers import quote_ident

RECORD = "_shipyard_set_aside"


@dataclass(frozen=True)
class Aside:
    """One index (`kind` index: DEFINITION is its CREATE INDEX) or foreign key (`kind` key:
    DEFINITION is its constraint text) of TABLE, set aside."""

    kind: str
    table: str
    name: str
    definition: str
    parent: str | None = None
    validated: bool = True

    def statements(self) -> list[str]:
        """What makes it again on the table as loaded (a key: added NOT VALID, then
        validated when it was valid, which checks every row in one pass)."""
        if self.kind == "index":
            return [re.sub(r"^CREATE (UNIQUE )?INDEX ", r"CREATE \1INDEX IF NOT EXISTS ",
                           self.definition, count=1)]
        table = quote_ident(self.table)
        add = f"ALTER TABLE {table} ADD CONSTRAINT {quote_ident(self.name)} {self.definition}"
        if not self.validated:
            return [add]
        return [add + " NOT VALID",
                f"ALTER TABLE {table} VALIDATE CONSTRAINT {quote_ident(self.name)}"]

    def drop(self) -> str:
        if self.kind == "index":
            return f"DROP INDEX {quote_ident(self.name)}"
        return f"ALTER TABLE {quote_ident(self.table)} DROP CONSTRAINT {quote_ident(self.name)}"


_INDEXES = """
SELECT t.relname, i.relname, pg_get_indexdef(x.indexrelid)
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = current_schema() AND t.relname = ANY(%s) AND t.relkind = 'r'
  AND x.indisvalid AND x.indisready AND x.indislive
  AND NOT x.indisclustered AND NOT x.indisreplident
  AND i.reltablespace = 0 AND obj_description(i.oid, 'pg_class') IS NULL
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
  AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = i.oid AND a.attstattarget > 0)
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = i.oid AND d.deptype = 'e')
ORDER BY 1, 2
"""

_KEYS = """
SELECT ch.relname, pa.relname, k.conname, pg_get_constraintdef(k.oid), k.convalidated
FROM pg_constraint k
JOIN pg_class ch ON ch.oid = k.conrelid
JOIN pg_class pa ON pa.oid = k.confrelid
JOIN pg_namespace n ON n.oid = ch.relnamespace
WHERE k.contype = 'f' AND n.nspname = current_schema() AND pa.relnamespace = n.oid
  AND ch.relname = ANY(%s) AND ch.relkind = 'r' AND pa.relkind = 'r' AND k.conparentid = 0
  AND obj_description(k.oid, 'pg_constraint') IS NULL
ORDER BY 1, 3
"""


def find(cur: psycopg.Cursor, tables: list[str]) -> list[Aside]:
    """The indexes and foreign keys of TABLES (target names) that can be set aside."""
    out = [Aside("index", str(t), str(n), str(d))
           for t, n, d in cur.execute(_INDEXES, (tables,)).fetchall()]
    out += [Aside("key", str(t), str(n), str(d), parent=str(p), validated=bool(v))
            for t, p, n, d, v in cur.execute(_KEYS, (tables,)).fetchall()]
    return out


def set_aside(cur: psycopg.Cursor, tables: list[str]) -> list[Aside]:
    """Drop what `find` returns and record it, in the caller's transaction (keys first: a key
    may need an index of its parent, never one of these)."""
    found = find(cur, tables)
    if not found:
        return []
    cur.execute(f"CREATE TABLE {quote_ident(RECORD)} (position int PRIMARY KEY, kind text NOT "
                "NULL, table_name text NOT NULL, name text NOT NULL, definition text NOT NULL, "
                "parent text, validated boolean NOT NULL)")
    cur.executemany(f"INSERT INTO {quote_ident(RECORD)} VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    [(i, a.kind, a.table, a.name, a.definition, a.parent, a.validated)
                     for i, a in enumerate(found)])
    for a in sorted(found, key=lambda a: a.kind != "key"):
        cur.execute(a.drop())
    return found


def restore(conn: psycopg.Connection, found: list[Aside]) -> list[str]:
    """Make again what is missing of FOUND, each in its own transaction, then drop the
    record; the failures, as text (empty: everything is back)."""
    problems = []
    conn.rollback()
    for a in sorted(found, key=lambda a: a.kind != "index"):
        if a.kind == "key" and _has_key(conn, a):
            continue
        try:
            with conn.transaction():
                for stmt in a.statements():
                    conn.execute(stmt)
        except psycopg.Error as exc:
            problems.append(f"{a.kind} {a.name} on {a.table}: "
                            f"{str(exc).strip().splitlines()[0]}")
    if not problems:
        drop_record(conn)
    return problems


def drop_record(conn: psycopg.Connection) -> None:
    conn.execute(f"DROP TABLE IF EXISTS {quote_ident(RECORD)}")
    conn.commit()


def recorded(conn: psycopg.Connection) -> list[Aside]:
    """What a run that died had set aside (the record it left), or nothing."""
    exists = conn.execute("SELECT to_regclass(quote_ident(current_schema()) || '.' || %s)",
                          (RECORD,)).fetchone()
    if not exists or exists[0] is None:
        conn.rollback()
        return []
    rows = conn.execute(f"SELECT kind, table_name, name, definition, parent, validated FROM "
                        f"{quote_ident(RECORD)} ORDER BY position").fetchall()
    conn.rollback()
    return [Aside(str(k), str(t), str(n), str(d), None if p is None else str(p), bool(v))
            for k, t, n, d, p, v in rows]


def _has_key(conn: psycopg.Connection, a: Aside) -> bool:
    row = conn.execute(
        "SELECT 1 FROM pg_constraint WHERE conname = %s AND conrelid = "
        "(quote_ident(current_schema()) || '.' || quote_ident(%s))::regclass",
        (a.name, a.table)).fetchone()
    conn.rollback()
    return row is not None

