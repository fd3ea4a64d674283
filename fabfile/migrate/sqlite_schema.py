"""Facts about a SQLite database: opened read-only, schema read from PRAGMAs and its own SQL.

The PRAGMAs give columns, keys, indexes and foreign keys; what they do not give (collations,
CHECK expressions, generated-column expressions, AUTOINCREMENT, WITHOUT ROWID) is read from
the `CREATE TABLE` text with a small tokenizer.
"""

# ruff: noqa: S608 - SQL text here is built from quoted identifiers, never from values

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from fabfile.errors import UserError

SQLITE_HEADER = b"SQLite format 3\x00"


@dataclass(frozen=True)
class Column:
    name: str
    declared: str
    notnull: bool
    default: str | None
    pk_order: int
    collation: str | None = None
    generated: str | None = None
    """The expression of a generated column (`GENERATED ALWAYS AS (expr)`), else None."""
    stored: bool = False
    checks: tuple[str, ...] = ()


@dataclass(frozen=True)
class Index:
    name: str
    columns: tuple[str, ...]
    unique: bool
    origin: str
    """`c` for CREATE INDEX, `u` for a UNIQUE constraint, `pk` for a PRIMARY KEY."""
    partial_where: str | None = None
    expressions: bool = False
    descending: tuple[bool, ...] = ()
    collations: tuple[str | None, ...] = ()
    sql: str | None = None


@dataclass(frozen=True)
class ForeignKey:
    columns: tuple[str, ...]
    parent: str
    parent_columns: tuple[str, ...]
    on_update: str
    on_delete: str
    """SQLite's words: NO ACTION, CASCADE, SET NULL, SET DEFAULT, RESTRICT."""


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    without_rowid: bool
    autoincrement: bool
    rowid_alias: str | None
    """The INTEGER PRIMARY KEY column that is the rowid, if any."""
    indexes: tuple[Index, ...]
    foreign_keys: tuple[ForeignKey, ...]
    checks: tuple[str, ...]
    sql: str
    row_count: int = 0
    sequence: int | None = None
    """`sqlite_sequence.seq` of an AUTOINCREMENT table: ids never reused go up to here."""

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    @property
    def stored_columns(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.generated is None)


@dataclass(frozen=True)
class View:
    name: str
    sql: str
    select: str


@dataclass(frozen=True)
class Trigger:
    name: str
    table: str
    sql: str


@dataclass(frozen=True)
class SourceSchema:
    tables: tuple[Table, ...]
    views: tuple[View, ...] = ()
    triggers: tuple[Trigger, ...] = ()
    encoding: str = "UTF-8"
    user_version: int = 0
    extras: dict[str, int] = field(default_factory=dict)

    def table(self, name: str) -> Table:
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(name)


def open_readonly(path: Path) -> sqlite3.Connection:
    """Open PATH read-only (`mode=ro` URI, locking kept); refuse what is not a SQLite file."""
    if not path.exists():
        raise UserError(f"SQLite file not found: {path}")
    if not path.is_file():
        raise UserError(f"not a file: {path}")
    with path.open("rb") as fh:
        header = fh.read(16)
    if header != SQLITE_HEADER:
        raise UserError(f"not a SQLite database (bad header): {path}")
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        raise UserError(f"cannot read SQLite database {path}: {exc}") from None
    return conn


def qi(name: str) -> str:
    """Quote a SQLite identifier."""
    return '"' + name.replace('"', '""') + '"'


# --- a tokenizer for CREATE TABLE text -------------------------------------------------

_TOKEN = re.compile(
    r"""\s+|--[^\n]*|/\*.*?\*/
    |(?P<str>'(?:[^']|'')*')
    |(?P<qid>"(?:[^"]|"")*"|\[[^\]]*\]|`(?:[^`]|``)*`)
    |(?P<word>[A-Za-z_][A-Za-z0-9_$]*)
    |(?P<num>[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?|\.[0-9]+)
    |(?P<op>\|\||<=|>=|<>|!=|==|<<|>>|[-+*/%<>=(),.;~&|])""",
    re.S | re.X,
)


@dataclass(frozen=True)
class Tok:
    kind: str
    text: str
    start: int
    end: int

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "word" else self.text


def tokenize(sql: str) -> list[Tok]:
    toks: list[Tok] = []
    pos = 0
    while pos < len(sql):
        m = _TOKEN.match(sql, pos)
        if not m:
            toks.append(Tok("op", sql[pos], pos, pos + 1))
            pos += 1
            continue
        kind = m.lastgroup
        if kind is not None:
            toks.append(Tok(kind, m.group(), m.start(), m.end()))
        pos = m.end()
    return toks


def unquote(tok: Tok) -> str:
    t = tok.text
    if tok.kind == "qid":
        if t[0] == "[":
            return t[1:-1]
        q = t[0]
        return t[1:-1].replace(q + q, q)
    if tok.kind == "str":
        return t[1:-1].replace("''", "'")
    return t


def _split_top(toks: list[Tok]) -> list[list[Tok]]:
    parts: list[list[Tok]] = [[]]
    depth = 0
    for tok in toks:
        if tok.text == "(":
            depth += 1
        elif tok.text == ")":
            depth -= 1
        if tok.text == "," and depth == 0:
            parts.append([])
        else:
            parts[-1].append(tok)
    return [p for p in parts if p]


def paren_span(toks: list[Tok], i: int) -> int:
    """Index of the `)` matching the `(` at toks[i]."""
    depth = 0
    for j in range(i, len(toks)):
        if toks[j].text == "(":
            depth += 1
        elif toks[j].text == ")":
            depth -= 1
            if depth == 0:
                return j
    return len(toks) - 1


_CONSTRAINT_WORDS = {"CONSTRAINT", "PRIMARY", "NOT", "NULL", "UNIQUE", "CHECK", "DEFAULT",
                     "COLLATE", "REFERENCES", "GENERATED", "AS"}
_TABLE_CONSTRAINT_WORDS = {"CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN"}


@dataclass(frozen=True)
class ParsedColumn:
    collation: str | None
    checks: tuple[str, ...]
    generated: str | None
    stored: bool
    autoincrement: bool


@dataclass(frozen=True)
class ParsedTable:
    columns: dict[str, ParsedColumn]
    checks: tuple[str, ...]
    without_rowid: bool


def parse_create_table(sql: str) -> ParsedTable:
    """Read what the PRAGMAs leave out from a `CREATE TABLE` statement."""
    toks = tokenize(sql)
    open_i = next(i for i, t in enumerate(toks) if t.text == "(")
    close_i = paren_span(toks, open_i)
    tail = " ".join(t.upper for t in toks[close_i + 1:])
    without_rowid = bool(re.search(r"\bWITHOUT\s+ROWID\b", tail))
    columns: dict[str, ParsedColumn] = {}
    checks: list[str] = []
    for part in _split_top(toks[open_i + 1:close_i]):
        head = part[0].upper
        if part[0].kind == "word" and head in _TABLE_CONSTRAINT_WORDS:
            i = 0
            if head == "CONSTRAINT":
                i = 2
            if i < len(part) and part[i].upper == "CHECK":
                j = paren_span(part, i + 1)
                checks.append(sql[part[i + 1].end:part[j].start].strip())
            continue
        name = unquote(part[0])
        collation = None
        col_checks: list[str] = []
        generated = None
        stored = False
        autoinc = False
        i = 1
        while i < len(part) and not (part[i].kind == "word" and part[i].upper in _CONSTRAINT_WORDS):
            if part[i].text == "(":
                i = paren_span(part, i)
            i += 1
        while i < len(part):
            word = part[i].upper
            if word == "COLLATE" and i + 1 < len(part):
                collation = unquote(part[i + 1])
                i += 2
                continue
            if word == "CHECK" and i + 1 < len(part) and part[i + 1].text == "(":
                j = paren_span(part, i + 1)
                col_checks.append(sql[part[i + 1].end:part[j].start].strip())
                i = j + 1
                continue
            if word == "AS" and i + 1 < len(part) and part[i + 1].text == "(":
                j = paren_span(part, i + 1)
                generated = sql[part[i + 1].end:part[j].start].strip()
                if j + 1 < len(part) and part[j + 1].upper == "STORED":
                    stored = True
                i = j + 1
                continue
            if word == "AUTOINCREMENT":
                autoinc = True
            if part[i].text == "(":
                i = paren_span(part, i)
            i += 1
        columns[name] = ParsedColumn(collation, tuple(col_checks), generated, stored, autoinc)
    return ParsedTable(columns, tuple(checks), without_rowid)


def _parse_index_where(sql: str | None) -> str | None:
    if not sql:
        return None
    toks = tokenize(sql)
    depth = 0
    for i, t in enumerate(toks):
        if t.text == "(":
            depth += 1
        elif t.text == ")":
            depth -= 1
        elif depth == 0 and t.upper == "WHERE":
            return sql[toks[i].end:].strip().rstrip(";").strip()
    return None


def read_schema(conn: sqlite3.Connection) -> SourceSchema:
    """Tables, indexes, keys, views and triggers of the open database, with row counts."""
    conn.text_factory = str
    master = conn.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY rowid").fetchall()
    seqs: dict[str, int] = {}
    if any(r[1] == "sqlite_sequence" for r in master):
        seqs = {n: s for n, s in conn.execute("SELECT name, seq FROM sqlite_sequence")}
    tables: list[Table] = []
    views: list[View] = []
    triggers: list[Trigger] = []
    for kind, name, tbl, sql in master:
        if kind == "view":
            toks = tokenize(sql)
            as_i = next(i for i, t in enumerate(toks) if t.upper == "AS")
            views.append(View(name, sql, sql[toks[as_i].end:].strip().rstrip(";")))
        elif kind == "trigger":
            triggers.append(Trigger(name, tbl, sql))
        elif kind == "table" and not name.startswith("sqlite_") and sql and \
                not sql.upper().startswith("CREATE VIRTUAL"):
            tables.append(_read_table(conn, name, sql, seqs.get(name)))
    enc = conn.execute("PRAGMA encoding").fetchone()[0]
    uv = conn.execute("PRAGMA user_version").fetchone()[0]
    return SourceSchema(tuple(tables), tuple(views), tuple(triggers), enc, uv)


def _read_table(conn: sqlite3.Connection, name: str, sql: str, seq: int | None) -> Table:
    parsed = parse_create_table(sql)
    cols: list[Column] = []
    for _cid, cname, ctype, notnull, dflt, pk, hidden in conn.execute(
            f"PRAGMA table_xinfo({qi(name)})"):
        if hidden == 1:
            continue
        pc = parsed.columns.get(cname)
        cols.append(Column(
            name=cname, declared=ctype or "", notnull=bool(notnull), default=dflt,
            pk_order=pk, collation=pc.collation if pc else None,
            generated=(pc.generated if pc else None) if hidden in (2, 3) else None,
            stored=hidden == 3, checks=pc.checks if pc else ()))
    keyed = sorted((c for c in cols if c.pk_order), key=lambda c: c.pk_order)
    pk_cols = tuple(c.name for c in keyed)
    rowid_alias = None
    if not parsed.without_rowid and len(pk_cols) == 1:
        col = next(c for c in cols if c.name == pk_cols[0])
        if col.declared.upper() == "INTEGER":
            # "INTEGER PRIMARY KEY DESC" as a column constraint is not an alias; rare enough to
            # detect through the autoindex it then gets.
            has_pk_index = any(r[3] == "pk" for r in conn.execute(f"PRAGMA index_list({qi(name)})"))
            if not has_pk_index:
                rowid_alias = col.name
    autoinc = any(p.autoincrement for p in parsed.columns.values())
    indexes: list[Index] = []
    idx_sql = {n: s for n, s in conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type='index' AND tbl_name=?", (name,))}
    for _seq, iname, unique, origin, partial in conn.execute(f"PRAGMA index_list({qi(name)})"):
        info = conn.execute(f"PRAGMA index_xinfo({qi(iname)})").fetchall()
        keys = [r for r in info if r[5]]
        exprs = any(r[1] == -2 for r in keys)
        indexes.append(Index(
            name=iname, columns=tuple(r[2] or "" for r in keys), unique=bool(unique), origin=origin,
            partial_where=_parse_index_where(idx_sql.get(iname)) if partial else None,
            expressions=exprs, descending=tuple(bool(r[3]) for r in keys),
            collations=tuple(r[4] for r in keys), sql=idx_sql.get(iname)))
    indexes.reverse()  # PRAGMA index_list lists the newest first
    fks: dict[int, list[tuple[str, str, str, str, str]]] = {}
    for fid, _seq, parent, frm, to, on_upd, on_del, _match in conn.execute(
            f"PRAGMA foreign_key_list({qi(name)})"):
        fks.setdefault(fid, []).append((parent, frm, to, on_upd, on_del))
    foreign_keys = []
    for fid in sorted(fks, reverse=True):
        rows = fks[fid]
        parent = rows[0][0]
        parent_cols = tuple(r[2] for r in rows)
        if any(c is None for c in parent_cols):
            pinfo = conn.execute(f"PRAGMA table_info({qi(parent)})").fetchall()
            ppk = [r[1] for r in sorted((r for r in pinfo if r[5]), key=lambda r: r[5])]
            parent_cols = tuple(ppk)
        foreign_keys.append(ForeignKey(tuple(r[1] for r in rows), parent, parent_cols,
                                       rows[0][3], rows[0][4]))
    count = conn.execute(f"SELECT count(*) FROM {qi(name)}").fetchone()[0]
    return Table(name=name, columns=tuple(cols), primary_key=pk_cols,
                 without_rowid=parsed.without_rowid, autoincrement=autoinc,
                 rowid_alias=rowid_alias, indexes=tuple(indexes), foreign_keys=tuple(foreign_keys),
                 checks=parsed.checks, sql=sql, row_count=count, sequence=seq)
