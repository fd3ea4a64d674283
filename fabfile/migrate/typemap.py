"""SQLite declared types -> PostgreSQL types, as data.

A column's `Kind` decides three things elsewhere: the PostgreSQL type, how its values are
checked in the preflight, and how a value is rendered canonically on both sides (`render`).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass


class Kind(enum.Enum):
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    NUMERIC = "numeric"
    TEXT = "text"
    DATE = "date"
    TIME = "time"
    TIMESTAMP = "timestamp"
    TIMESTAMPTZ = "timestamptz"
    JSONB = "jsonb"
    JSON = "json"
    BYTEA = "bytea"
    UUID = "uuid"


@dataclass(frozen=True)
class PgType:
    kind: Kind
    sql: str
    length: int | None = None
    precision: int | None = None
    scale: int | None = None
    typeless: bool = False
    """Declared without a type in SQLite: numbers are kept as their text."""
    text_only: bool = False
    """SQLite's TEXT affinity: every non-NULL value is stored as text (or is a BLOB, which
    the preflight refuses), so rendering needs no type dispatch."""


MAX_VARCHAR = 10_485_760
"""PostgreSQL's limit for varchar(n); a longer limit means nothing more than text there."""

_DECL = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_ ]*?)\s*(?:\(\s*(\d+)\s*(?:,\s*(-?\d+)\s*)?\))?\s*$")


def map_declared(declared: str, *, utc_timestamps: bool = False) -> PgType:
    """The PostgreSQL type for a SQLite declared type (SQLite's affinity rules as fallback)."""
    m = _DECL.match(declared or "")
    if not declared.strip():
        return PgType(Kind.TEXT, "text", typeless=True)
    if not m:
        return _by_affinity(declared.upper())
    base = " ".join(m.group(1).upper().split())
    n = int(m.group(2)) if m.group(2) else None
    s = int(m.group(3)) if m.group(3) else None
    if base in ("BOOLEAN", "BOOL"):
        return PgType(Kind.BOOL, "boolean")
    if base in ("REAL", "DOUBLE", "DOUBLE PRECISION", "FLOAT", "FLOAT8", "FLOAT4"):
        return PgType(Kind.FLOAT, "double precision")
    if base in ("NUMERIC", "DECIMAL"):
        if n is not None and 1 <= n <= 1000 and (s or 0) >= 0 and (s or 0) <= n:
            return PgType(Kind.NUMERIC, f"numeric({n},{s or 0})", precision=n, scale=s or 0)
        return PgType(Kind.NUMERIC, "numeric")
    if base in ("VARCHAR", "NVARCHAR", "CHARACTER VARYING", "VARYING CHARACTER", "CHAR",
                "CHARACTER", "NCHAR", "NATIVE CHARACTER", "VARCHAR2"):
        if n is not None and 1 <= n <= MAX_VARCHAR:
            return PgType(Kind.TEXT, f"varchar({n})", length=n, text_only=True)
        return PgType(Kind.TEXT, "text", text_only=True)
    if base in ("TEXT", "CLOB"):
        return PgType(Kind.TEXT, "text", text_only=True)
    if base == "STRING":
        return PgType(Kind.TEXT, "text")
    if base == "DATE":
        return PgType(Kind.DATE, "date")
    if base == "TIME":
        return PgType(Kind.TIME, "time")
    if base in ("DATETIME", "TIMESTAMP", "TIMESTAMP WITHOUT TIME ZONE"):
        if utc_timestamps:
            return PgType(Kind.TIMESTAMPTZ, "timestamp with time zone")
        return PgType(Kind.TIMESTAMP, "timestamp without time zone")
    if base in ("TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE"):
        return PgType(Kind.TIMESTAMPTZ, "timestamp with time zone")
    if base in ("JSON", "JSONB"):
        return PgType(Kind.JSONB, "jsonb")
    if base == "BLOB":
        return PgType(Kind.BYTEA, "bytea")
    return _by_affinity(base)


def _by_affinity(upper: str) -> PgType:
    """SQLite's own rules (datatype3.html, 3.1), in its order."""
    if "INT" in upper:
        return PgType(Kind.INT, "bigint")
    if "CHAR" in upper or "CLOB" in upper or "TEXT" in upper:
        return PgType(Kind.TEXT, "text", text_only=True)
    if "BLOB" in upper:
        return PgType(Kind.BYTEA, "bytea")
    if "REAL" in upper or "FLOA" in upper or "DOUB" in upper:
        return PgType(Kind.FLOAT, "double precision")
    return PgType(Kind.NUMERIC, "numeric")


def kind_of_pg(format_type: str) -> PgType:
    """The Kind of an existing PostgreSQL column, from `format_type(atttypid, atttypmod)`."""
    t = format_type.lower()
    m = re.match(r"^(character varying|varchar|character|numeric)\((\d+)(?:,(\d+))?\)$", t)
    if m:
        if m.group(1) == "numeric":
            p, s = int(m.group(2)), int(m.group(3) or 0)
            return PgType(Kind.NUMERIC, t, precision=p, scale=s)
        return PgType(Kind.TEXT, t, length=int(m.group(2)))
    simple = {
        "bigint": Kind.INT, "integer": Kind.INT, "smallint": Kind.INT,
        "double precision": Kind.FLOAT, "real": Kind.FLOAT, "boolean": Kind.BOOL,
        "numeric": Kind.NUMERIC, "text": Kind.TEXT, "character varying": Kind.TEXT,
        "citext": Kind.TEXT, "date": Kind.DATE, "time without time zone": Kind.TIME,
        "timestamp without time zone": Kind.TIMESTAMP,
        "timestamp with time zone": Kind.TIMESTAMPTZ, "jsonb": Kind.JSONB, "json": Kind.JSON,
        "bytea": Kind.BYTEA, "uuid": Kind.UUID,
    }
    for prefix, kind in simple.items():
        if t == prefix or t.startswith(prefix + "("):
            return PgType(kind, t)
    return PgType(Kind.TEXT, t)
