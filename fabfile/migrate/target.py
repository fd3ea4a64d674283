"""The PostgreSQL side before and after a run: reachability, what already exists, cleanup."""

# ruff: noqa: S608 - SQL text here is built from quoted identifiers, never from values

from __future__ import annotations

from dataclasses import dataclass, replace

import psycopg

from fabfile.errors import UserError

from .identifiers import quote_ident
from .plan import Note, PlanColumn, PlanTable, SchemaPlan
from .report import redact_url
from .typemap import kind_of_pg
from .workers import SESSION_SETTINGS

QUARANTINE = "_quarantine"


def connect(url: str) -> psycopg.Connection:
    """A connection to URL, or a UserError that says why not (never a traceback)."""
    try:
        return psycopg.connect(url, connect_timeout=10, autocommit=False)
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot connect to the target {redact_url(url)}: {first}") from None


def relations(conn: psycopg.Connection) -> dict[str, str]:
    """Tables, views and indexes in the current schema: name -> relkind."""
    rows = conn.execute(
        "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND c.relkind IN ('r','v','m','i','p','f','S')"
    ).fetchall()
    conn.rollback()
    return {str(r[0]): str(r[1]) for r in rows}


def clashes(plan: SchemaPlan, existing: dict[str, str], *, quarantine: bool) -> list[str]:
    wanted = [t.name for t in plan.tables] + [v.name for v in plan.views]
    wanted += [ix.name for ix in plan.indexes]
    if quarantine:
        wanted.append(QUARANTINE)
    return [n for n in wanted if n in existing]


@dataclass(frozen=True)
class ExistingColumn:
    name: str
    type: str
    notnull: bool
    has_default: bool
    generated: bool
    sequence: str | None


def existing_columns(conn: psycopg.Connection, table: str) -> list[ExistingColumn]:
    rows = conn.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.atthasdef, "
        "a.attgenerated <> '', pg_get_serial_sequence(quote_ident(current_schema()) || '.' || "
        "quote_ident(%s), a.attname) FROM pg_attribute a WHERE a.attrelid = "
        "(quote_ident(current_schema()) || '.' || quote_ident(%s))::regclass "
        "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum", (table, table)).fetchall()
    conn.rollback()
    return [ExistingColumn(str(r[0]), str(r[1]), bool(r[2]), bool(r[3]), bool(r[4]), r[5])
            for r in rows]


def plan_existing(plan: SchemaPlan, conn: psycopg.Connection) -> tuple[SchemaPlan, list[str]]:
    """`--schema=existing`: copy into the app's own tables, by column name, typed by the target;
    also the source tables whose target table already holds rows (the engine copies them only
    if they are found equal to the source's, see `engine._skip_equal`).

    Every source column must find a target column (else data would be lost); target columns
    the source lacks must be nullable or have a default. No constraint is created: the
    target's own foreign keys order the copies (`SchemaPlan.load_after`).
    """
    have = relations(conn)
    tables: list[PlanTable] = []
    problems: list[str] = []
    filled: list[str] = []
    for t in plan.tables:
        name = t.name if t.name in have else next(
            (n for n in have if n.lower() == t.name.lower() and have[n] in "rp"), None)
        if name is None:
            problems.append(f"table {t.name!r} does not exist in the target")
            continue
        cols = existing_columns(conn, name)
        by_name = {c.name: c for c in cols}
        by_lower = {c.name.lower(): c for c in cols}
        planned: list[PlanColumn] = []
        seq_col = None
        for pc in t.columns:
            ec = by_name.get(pc.source) or by_lower.get(pc.source.lower())
            if ec is None:
                problems.append(f"{t.name}.{pc.source} has no column in the target table {name!r}")
                continue
            if ec.generated:
                continue
            planned.append(replace(pc, name=ec.name, type=kind_of_pg(ec.type), default=None,
                                   identity=False))
            if ec.sequence and seq_col is None:
                seq_col = ec.name
        used = {c.name for c in planned}
        for ec in cols:
            if ec.name not in used and ec.notnull and not ec.has_default and not ec.generated:
                problems.append(f"target column {name}.{ec.name} is NOT NULL without a default "
                                "and the source has no such column")
        with conn.cursor() as cur:
            got = cur.execute(f"SELECT EXISTS (SELECT 1 FROM {quote_ident(name)})").fetchone()
        conn.rollback()
        if got and got[0]:
            filled.append(t.source)
        order_key = None
        if t.order_key:
            src = next(c.source for c in t.columns if c.name == t.order_key)
            order_key = next((c.name for c in planned if c.source == src), None)
        tables.append(replace(t, name=name, columns=tuple(planned), order_key=order_key,
                              identity=seq_col, existing=True))
    if problems:
        raise UserError("the target schema does not fit the source:\n  " + "\n  ".join(problems))
    source_of = {t.name: t.source for t in tables}
    load_after = tuple(sorted({(source_of[child], source_of[parent])
                               for child, parent in foreign_keys(conn)
                               if child in source_of and parent in source_of and child != parent}))
    return replace(plan, tables=tuple(tables), indexes=(), foreign_keys=(), checks=(), views=(),
                   uses_nocase=False, load_after=load_after), filled


def key_pairs(cur: psycopg.Cursor) -> set[tuple[str, str]]:
    """(child, parent) tables of the foreign keys in the current schema, in CUR's
    transaction."""
    rows = cur.execute(
        "SELECT ch.relname, pa.relname FROM pg_constraint k "
        "JOIN pg_class ch ON ch.oid = k.conrelid JOIN pg_class pa ON pa.oid = k.confrelid "
        "JOIN pg_namespace n ON n.oid = ch.relnamespace "
        "WHERE k.contype = 'f' AND n.nspname = current_schema()").fetchall()
    return {(str(c), str(p)) for c, p in rows}


def foreign_keys(conn: psycopg.Connection) -> list[tuple[str, str]]:
    """(child, parent) table of every foreign key in the current schema."""
    with conn.cursor() as cur:
        pairs = sorted(key_pairs(cur))
    conn.rollback()
    return pairs


def drop_created(conn: psycopg.Connection, *, tables: list[str], views: list[str],
                 collation: str | None) -> None:
    """Undo what a failed run created, in one transaction."""
    conn.rollback()
    with conn.cursor() as cur:
        for v in views:
            cur.execute(f"DROP VIEW IF EXISTS {quote_ident(v)} CASCADE")
        for t in tables:
            cur.execute(f"DROP TABLE IF EXISTS {quote_ident(t)} CASCADE")
        if collation:
            cur.execute(f"DROP COLLATION IF EXISTS {quote_ident(collation)}")
    conn.commit()


def truncate(conn: psycopg.Connection, tables: list[str]) -> None:
    """Empty TABLES in one transaction. TRUNCATE refuses a table that a table outside TABLES
    references by a foreign key (even an empty one); then rows are deleted instead, children
    before parents (a table whose DELETE a key refuses is tried again after the others)."""
    conn.rollback()
    if not tables:
        return
    names = ", ".join(quote_ident(t) for t in tables)
    try:
        conn.execute(f"TRUNCATE {names}")
        conn.commit()
        return
    except psycopg.errors.FeatureNotSupported:
        conn.rollback()
    left = list(tables)
    with conn.transaction():
        while left:
            refused = []
            for t in left:
                try:
                    with conn.transaction():
                        conn.execute(f"DELETE FROM {quote_ident(t)}")
                except psycopg.errors.ForeignKeyViolation:
                    refused.append(t)
            if len(refused) == len(left):
                raise psycopg.errors.ForeignKeyViolation(
                    f"rows of {', '.join(refused)} are referenced from outside the run")
            left = refused


_ASSIGNABLE = (
    "SELECT s.oid = d.oid OR d.typcategory = 'S' OR EXISTS (SELECT 1 FROM pg_cast c WHERE "
    "c.castsource = s.oid AND c.casttarget = d.oid AND c.castcontext IN ('a', 'i')) "
    "FROM pg_type s, pg_type d WHERE s.oid = pg_typeof({expr}) AND d.oid = '{type}'::regtype")
"""True when a DEFAULT expression's type is one PostgreSQL assigns to the column's type
(what CREATE TABLE requires); typcategory S: anything converts to a string type."""


def check_defaults(conn: psycopg.Connection, plan: SchemaPlan) -> SchemaPlan:
    """Try every DEFAULT of PLAN on the target, read-only, before anything is written: a
    constant must print as the text SQLite's value renders to (`PlanColumn.default_expect`),
    an expression must evaluate and have a type its column accepts. A default that fails is
    left out of the plan with a note, like the defaults no translation fits."""
    items = [(t, c) for t in plan.tables for c in t.columns if c.default is not None]
    if not items:
        return plan
    failed: dict[tuple[str, str], str] = {}
    conn.rollback()
    conn.read_only = True
    try:
        with conn.cursor() as cur:
            for stmt in SESSION_SETTINGS:
                cur.execute(stmt)
            for t, c in items:
                why = _try_default(cur, c)
                if why:
                    failed[(t.name, c.name)] = why
    finally:
        conn.rollback()
        conn.read_only = False
    if not failed:
        return plan
    notes = list(plan.notes)
    tables = []
    for t in plan.tables:
        cols = []
        for c in t.columns:
            why = failed.get((t.name, c.name))
            if why:
                notes.append(Note("warn", f"{t.source}.{c.source}",
                                  f"DEFAULT {c.default_sqlite} not kept: {why}"))
                c = replace(c, default=None, default_expect=None, default_sqlite=None)
            cols.append(c)
        tables.append(replace(t, columns=tuple(cols)))
    return replace(plan, tables=tuple(tables), notes=tuple(notes))


def _try_default(cur: psycopg.Cursor, c: PlanColumn) -> str | None:
    """Why C's DEFAULT does not hold in PostgreSQL, or None."""
    expr = c.default or ""
    sql = f"SELECT ({expr})::{c.type.sql}"
    if c.default_expect is None:
        sql += ", (" + _ASSIGNABLE.format(expr=f"({expr})", type=c.type.sql) + ")"
    cur.execute("SAVEPOINT default_check")
    try:
        cur.execute(sql, binary=False)
    except psycopg.Error as exc:
        cur.execute("ROLLBACK TO SAVEPOINT default_check")
        return f"PostgreSQL refuses {expr} for {c.type.sql} ({str(exc).strip().splitlines()[0]})"
    result = cur.pgresult
    got = result.get_value(0, 0) if result is not None else None
    if c.default_expect is None:
        fits = result is not None and result.get_value(0, 1) == b"t"
        return None if fits else f"{expr} is not of a type {c.type.sql} takes"
    text = got.decode() if got is not None else None
    if text != c.default_expect:
        return f"PostgreSQL reads {expr} as {text!r}, not {c.default_expect!r}"
    return None
