"""SQLite declared types -> PostgreSQL types, as a table of cases."""

from __future__ import annotations

import pytest

from fabfile.migrate.typemap import Kind, kind_of_pg, map_declared

CASES = [
    ("INTEGER", Kind.INT, "bigint"),
    ("int", Kind.INT, "bigint"),
    ("SMALLINT", Kind.INT, "bigint"),
    ("BIGINT", Kind.INT, "bigint"),
    ("REAL", Kind.FLOAT, "double precision"),
    ("FLOAT", Kind.FLOAT, "double precision"),
    ("DOUBLE PRECISION", Kind.FLOAT, "double precision"),
    ("BOOLEAN", Kind.BOOL, "boolean"),
    ("VARCHAR(64)", Kind.TEXT, "varchar(64)"),
    ("NVARCHAR(10)", Kind.TEXT, "varchar(10)"),
    ("CHAR(2)", Kind.TEXT, "varchar(2)"),
    ("VARCHAR", Kind.TEXT, "text"),
    ("TEXT", Kind.TEXT, "text"),
    ("CLOB", Kind.TEXT, "text"),
    ("NUMERIC(10, 2)", Kind.NUMERIC, "numeric(10,2)"),
    ("DECIMAL(5)", Kind.NUMERIC, "numeric(5,0)"),
    ("NUMERIC", Kind.NUMERIC, "numeric"),
    ("DATE", Kind.DATE, "date"),
    ("TIME", Kind.TIME, "time"),
    ("DATETIME", Kind.TIMESTAMP, "timestamp without time zone"),
    ("TIMESTAMP", Kind.TIMESTAMP, "timestamp without time zone"),
    ("TIMESTAMPTZ", Kind.TIMESTAMPTZ, "timestamp with time zone"),
    ("JSON", Kind.JSONB, "jsonb"),
    ("BLOB", Kind.BYTEA, "bytea"),
    ("MONEY", Kind.NUMERIC, "numeric"),
    ("UNSIGNED BIG INT", Kind.INT, "bigint"),
    ("STRING", Kind.TEXT, "text"),
    ("FLOATING POINT", Kind.INT, "bigint"),  # SQLite: "INT" in the name wins (datatype3 3.1)
]


@pytest.mark.parametrize(("declared", "kind", "sql"), CASES)
def test_declared_types(declared: str, kind: Kind, sql: str) -> None:
    t = map_declared(declared)
    assert (t.kind, t.sql) == (kind, sql)


def test_real_is_never_four_bytes() -> None:
    assert map_declared("REAL").sql == "double precision"


def test_no_declared_type_is_text_that_keeps_numbers() -> None:
    t = map_declared("")
    assert (t.kind, t.sql, t.typeless) == (Kind.TEXT, "text", True)


def test_utc_option_makes_datetime_timestamptz() -> None:
    assert map_declared("DATETIME", utc_timestamps=True).kind is Kind.TIMESTAMPTZ


@pytest.mark.parametrize(("pg", "kind"), [
    ("bigint", Kind.INT), ("character varying(20)", Kind.TEXT), ("numeric(10,2)", Kind.NUMERIC),
    ("timestamp with time zone", Kind.TIMESTAMPTZ), ("uuid", Kind.UUID), ("json", Kind.JSON),
    ("jsonb", Kind.JSONB), ("boolean", Kind.BOOL), ("bytea", Kind.BYTEA),
])
def test_existing_target_types(pg: str, kind: Kind) -> None:
    assert kind_of_pg(pg).kind is kind
