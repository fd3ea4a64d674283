"""The schema plan: SQLite facts + options -> what PostgreSQL will hold. Pure.

Names are kept exactly (always quoted); a name over 63 bytes gets a stable short form and a
note. Whatever cannot be carried over (an untranslatable DEFAULT, a trigger, a collation with
no equivalent) becomes a `Note`, never a silent loss.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from . import defaults
from .identifiers import fit_name, name_concerns, quote_ident
from .sqlite_schema import Column, SourceSchema, Table, tokenize, unquote
from .typemap import Kind, PgType, map_declared

NOCASE_COLLATION = "sqlite_nocase"


@dataclass(frozen=True)
class Note:
    level: str
    """`info` (kept, with a caveat) or `warn` (not carried over as it was)."""
    subject: str
    message: str


@dataclass(frozen=True)
class PlanColumn:
    source: str
    name: str
    type: PgType
    notnull: bool = False
    default: str | None = None
    collation: str | None = None
    identity: bool = False
    source_notnull: bool = False
    """SQLite itself guarantees no NULLs (NOT NULL, or the rowid alias)."""
    default_expect: str | None = None
    """What PostgreSQL must print for a constant DEFAULT (see `defaults`)."""
    default_sqlite: str | None = None
    """The SQLite DEFAULT text that `default` translates."""
    identity_sequence: str | None = None
    """The identity's sequence name, when PostgreSQL's own choice is a name the plan uses."""


@dataclass(frozen=True)
class PlanIndex:
    name: str
    table: str
    columns: tuple[str, ...]
    role: str
    """`pk`, `unique` (a constraint) or `index`."""
    unique: bool = False
    descending: tuple[bool, ...] = ()
    collations: tuple[str | None, ...] = ()
    where: str | None = None
    raw_sql: str | None = None
    """For an expression index: the SQLite statement, tried as it is."""
    source: str | None = None


@dataclass(frozen=True)
class PlanForeignKey:
    name: str
    table: str
    columns: tuple[str, ...]
    parent: str
    parent_columns: tuple[str, ...]
    on_delete: str = "NO ACTION"
    on_update: str = "NO ACTION"
    source_table: str = ""
    source_columns: tuple[str, ...] = ()
    source_parent: str = ""
    source_parent_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlanCheck:
    name: str
    table: str
    expression: str


@dataclass(frozen=True)
class PlanTable:
    source: str
    name: str
    columns: tuple[PlanColumn, ...]
    primary_key: tuple[str, ...] = ()
    order_key: str | None = None
    """A single integer key that orders rows the same way in both databases (the SQLite
    rowid alias): checksums then hash the COPY stream in order, which costs nothing."""
    identity: str | None = None
    identity_floor: int = 0
    row_count: int = 0
    without_rowid: bool = False
    rowid_alias: str | None = None
    existing: bool = False

    def pg_column(self, source: str) -> PlanColumn:
        for c in self.columns:
            if c.source == source:
                return c
        raise KeyError(source)


@dataclass(frozen=True)
class PlanView:
    name: str
    sql: str
    source: str


@dataclass(frozen=True)
class SchemaPlan:
    tables: tuple[PlanTable, ...]
    indexes: tuple[PlanIndex, ...] = ()
    foreign_keys: tuple[PlanForeignKey, ...] = ()
    checks: tuple[PlanCheck, ...] = ()
    views: tuple[PlanView, ...] = ()
    notes: tuple[Note, ...] = ()
    renames: dict[str, str] = field(default_factory=dict)
    uses_nocase: bool = False
    blockers: tuple[str, ...] = ()
    """What PostgreSQL cannot hold as it is (a column named like a system column, an empty
    name): the run refuses the schema up front, listing all of them."""
    load_after: tuple[tuple[str, str], ...] = ()
    """(child, parent) source tables, in `existing` mode: the target's own foreign keys, which
    check rows as they land, so a child's copy starts once its parent's is committed."""

    def table(self, source: str) -> PlanTable:
        for t in self.tables:
            if t.source == source:
                return t
        raise KeyError(source)


def _plan_column(col: Column, *, utc: bool, identity: bool, notes: list[Note],
                 table: str) -> PlanColumn:
    t = map_declared(col.declared, utc_timestamps=utc)
    if identity:
        t = PgType(Kind.INT, "bigint")
    name = fit_name(col.name)
    d = defaults.translate(col.default, col.declared, t)
    if identity and d.sql is not None:
        d = defaults.Default(level="warn", why="the column becomes an identity, which numbers "
                             "new rows")
    if d.level:
        shown = f"DEFAULT {col.default} -> {d.sql}" if d.sql is not None else \
            f"DEFAULT {col.default} not kept"
        notes.append(Note(d.level, f"{table}.{col.name}", f"{shown}: {d.why}"))
    collation = None
    if col.collation:
        coll = col.collation.upper()
        if coll == "NOCASE" and t.kind is Kind.TEXT:
            collation = NOCASE_COLLATION
        elif coll == "RTRIM" and t.kind is Kind.TEXT:
            notes.append(Note("warn", f"{table}.{col.name}",
                              "COLLATE RTRIM has no PostgreSQL equivalent: compared as written"))
    if col.generated is not None:
        notes.append(Note("warn", f"{table}.{col.name}",
                          f"generated column AS ({col.generated}) copied as a plain column "
                          "holding its current values"))
    return PlanColumn(col.name, name, t, notnull=col.notnull or identity or bool(col.pk_order),
                      default=d.sql, collation=collation, identity=identity,
                      source_notnull=col.notnull or identity, default_expect=d.expect,
                      default_sqlite=col.default if d.sql is not None else None)


def translate_expr(expr: str, columns: dict[str, PlanColumn]) -> str:
    """A SQLite boolean expression (CHECK, partial-index WHERE) in PostgreSQL terms, as far as
    a token rewrite goes: column names quoted as created, `==` as `=`, and 0/1 compared with
    a boolean column as false/true. PostgreSQL judges the rest when it is run."""
    by_lower = {name.lower(): col for name, col in columns.items()}
    toks = tokenize(expr)
    out: list[str] = []
    pos = 0
    for i, tok in enumerate(toks):
        out.append(expr[pos:tok.start])
        pos = tok.end
        text = tok.text
        if tok.kind in ("word", "qid"):
            col = by_lower.get(unquote(tok).lower())
            followed_by_call = i + 1 < len(toks) and toks[i + 1].text == "("
            if col is not None and not followed_by_call:
                text = quote_ident(col.name)
        elif tok.text == "==":
            text = "="
        elif tok.kind == "num" and tok.text in ("0", "1") and i >= 2:
            op, left = toks[i - 1], toks[i - 2]
            col = by_lower.get(unquote(left).lower()) if left.kind in ("word", "qid") else None
            boolean = col is not None and col.type.kind is Kind.BOOL
            if op.text in ("=", "==", "!=", "<>") and boolean:
                text = "true" if tok.text == "1" else "false"
        out.append(text)
    out.append(expr[pos:])
    return "".join(out)


_BOOL_CHECK = re.compile(r'^\s*["`\[]?(\w+)["`\]]?\s+IN\s*\(\s*0\s*,\s*1\s*\)\s*$', re.I)


def build_plan(schema: SourceSchema, *, utc_timestamps: bool = False) -> SchemaPlan:
    """What `--schema=infer` creates, for SCHEMA."""
    notes: list[Note] = []
    renames: dict[str, str] = {}
    tables: list[PlanTable] = []
    indexes: list[PlanIndex] = []
    fks: list[PlanForeignKey] = []
    checks: list[PlanCheck] = []
    used_names: set[str] = set()

    def unique_name(wanted: str) -> str:
        name = fit_name(wanted)
        n = 1
        while name in used_names:
            n += 1
            name = fit_name(f"{wanted}{n}")
        used_names.add(name)
        return name

    blockers = _blockers(schema)
    for t in schema.tables:
        for ident in [t.name, *(c.name for c in t.columns)]:
            for concern in name_concerns(ident):
                subject = t.name if ident == t.name else f"{t.name}.{ident}"
                notes.append(Note("info", subject, concern))
                if "renamed" in concern:
                    renames[subject] = fit_name(ident)
        used_names.add(fit_name(t.name))
    used_names.update(fit_name(v.name) for v in schema.views)
    for t in schema.tables:
        pgname = fit_name(t.name)
        cols = tuple(_plan_column(c, utc=utc_timestamps, identity=c.name == t.rowid_alias,
                                  notes=notes, table=t.name) for c in t.columns)
        by_src = {c.source: c for c in cols}
        pk = tuple(by_src[c].name for c in t.primary_key)
        order_key = None
        if t.rowid_alias:
            order_key = by_src[t.rowid_alias].name
        elif t.without_rowid and len(pk) == 1 and by_src[t.primary_key[0]].type.kind is Kind.INT:
            order_key = pk[0]
        floor = t.sequence or 0
        tables.append(PlanTable(
            source=t.name, name=pgname, columns=cols, primary_key=pk, order_key=order_key,
            identity=by_src[t.rowid_alias].name if t.rowid_alias else None, identity_floor=floor,
            row_count=t.row_count, without_rowid=t.without_rowid, rowid_alias=t.rowid_alias))
        if any(c.collation == NOCASE_COLLATION for c in cols):
            notes.append(Note("info", t.name, "COLLATE NOCASE -> ICU case-insensitive collation "
                              f"{NOCASE_COLLATION} (also folds non-ASCII case; LIKE on it errors "
                              "in PostgreSQL 15: use ILIKE on a cast or lower())"))
        if pk:
            indexes.append(PlanIndex(unique_name(f"{pgname}_pkey"), pgname, pk, "pk", unique=True,
                                     source="PRIMARY KEY"))
        for ix in t.indexes:
            if ix.origin == "pk":
                continue
            if ix.expressions:
                indexes.append(PlanIndex(unique_name(ix.name), pgname, (), "index",
                                         unique=ix.unique, raw_sql=ix.sql, source=ix.name))
                continue
            pcols = tuple(by_src[c].name for c in ix.columns)
            colls = tuple(NOCASE_COLLATION if (c or "").upper() == "NOCASE" and
                          by_src[s].type.kind is Kind.TEXT and
                          by_src[s].collation != NOCASE_COLLATION else None
                          for c, s in zip(ix.collations, ix.columns, strict=False))
            if ix.origin == "u":
                cname = unique_name(f"{pgname}_{'_'.join(pcols)}_key")
                # a constraint takes its columns' collations: with another one it stays an index
                role = "index" if any(colls) else "unique"
                indexes.append(PlanIndex(cname, pgname, pcols, role, unique=True,
                                         collations=colls, source=ix.name))
            else:
                where = translate_expr(ix.partial_where, by_src) if ix.partial_where else None
                name = ix.name or f"{pgname}_{'_'.join(pcols)}_idx"
                indexes.append(PlanIndex(unique_name(name), pgname, pcols, "index",
                                         unique=ix.unique, descending=ix.descending,
                                         collations=colls, where=where, source=ix.name))
        for fk in t.foreign_keys:
            try:
                parent = schema.table(fk.parent)
            except KeyError:
                notes.append(Note("warn", t.name, f"foreign key {fk.columns} references missing "
                                  f"table {fk.parent!r}: not kept"))
                continue
            keyed = {parent.primary_key} | {ix.columns for ix in parent.indexes if ix.unique
                                           and not ix.partial_where and not ix.expressions}
            if tuple(fk.parent_columns) not in keyed:
                notes.append(Note("warn", t.name, f"foreign key {fk.columns} -> {fk.parent}"
                                  f"{fk.parent_columns}: the parent columns are not a key: "
                                  "not kept"))
                continue
            pcols = tuple(by_src[c].name for c in fk.columns)
            parent_cols = tuple(fit_name(c) for c in fk.parent_columns)
            child_types = [by_src[c].type for c in fk.columns]
            parent_types = [map_declared(parent.column(c).declared, utc_timestamps=utc_timestamps)
                            if c != parent.rowid_alias else PgType(Kind.INT, "bigint")
                            for c in fk.parent_columns]
            if any(a.kind is not b.kind for a, b in zip(child_types, parent_types, strict=True)):
                pairs = ", ".join(f"{a.sql} -> {b.sql}" for a, b in
                                  zip(child_types, parent_types, strict=True))
                notes.append(Note("warn", t.name, f"foreign key {fk.columns} -> {fk.parent}"
                                  f"{fk.parent_columns}: PostgreSQL cannot compare the types "
                                  f"({pairs}): not kept"))
                continue
            fks.append(PlanForeignKey(
                unique_name(f"{pgname}_{'_'.join(pcols)}_fkey"), pgname, pcols,
                fit_name(parent.name), parent_cols, fk.on_delete.upper(), fk.on_update.upper(),
                t.name, fk.columns, parent.name, tuple(fk.parent_columns)))
        n = 0
        for col in t.columns:
            for expr in col.checks:
                n += 1
                checks.extend(_plan_check(pgname, n, expr, by_src, notes, t, unique_name))
        for expr in t.checks:
            n += 1
            checks.extend(_plan_check(pgname, n, expr, by_src, notes, t, unique_name))
    tables = [_name_sequences(t, used_names, unique_name) for t in tables]
    views = tuple(PlanView(fit_name(v.name), v.select, v.name) for v in schema.views)
    for tr in schema.triggers:
        notes.append(Note("warn", f"trigger {tr.name}", f"on {tr.table}: SQLite trigger syntax has "
                          f"no PostgreSQL equivalent: not recreated. Its SQL: {tr.sql}"))
    return SchemaPlan(tuple(tables), tuple(indexes), tuple(fks), tuple(checks), views,
                      tuple(notes), renames,
                      any(c.collation == NOCASE_COLLATION for t in tables for c in t.columns) or
                      any(NOCASE_COLLATION in ix.collations for ix in indexes),
                      blockers=tuple(blockers))


SYSTEM_COLUMNS = frozenset({"tableoid", "xmin", "cmin", "xmax", "cmax", "ctid"})


def _blockers(schema: SourceSchema) -> list[str]:
    out = []
    for t in schema.tables:
        if not t.name:
            out.append('a table named "": PostgreSQL has no empty names')
        for c in t.columns:
            if not c.name:
                out.append(f'{t.name}: a column named "": PostgreSQL has no empty names')
            elif c.name in SYSTEM_COLUMNS:
                out.append(f"{t.name}.{c.name}: PostgreSQL keeps this name for a system column")
    return out


def _name_sequences(t: PlanTable, used: set[str], unique_name: object) -> PlanTable:
    """Name the identity's sequence when the name PostgreSQL would give it is taken by a
    relation of the plan (created later, that relation would then fail)."""
    col = next((c for c in t.columns if c.identity), None)
    if col is None:
        return t
    wanted = f"{t.name}_{col.name}_seq"
    if wanted not in used or len(wanted.encode()) > 63:
        return t
    assert callable(unique_name)
    named = replace(col, identity_sequence=unique_name(wanted))
    return replace(t, columns=tuple(named if c is col else c for c in t.columns))


def _plan_check(table: str, n: int, expr: str, by_src: dict[str, PlanColumn], notes: list[Note],
                t: Table, unique_name: object) -> list[PlanCheck]:
    m = _BOOL_CHECK.match(expr)
    if m and m.group(1) in by_src and by_src[m.group(1)].type.kind is Kind.BOOL:
        notes.append(Note("info", t.name, f"CHECK ({expr}) is implied by the boolean type"))
        return []
    assert callable(unique_name)
    return [PlanCheck(unique_name(f"{table}_check{n}"), table, translate_expr(expr, by_src))]
