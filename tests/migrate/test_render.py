"""The canonical rendering: what SQLite produces must be what PostgreSQL's COPY TO prints."""

# ruff: noqa: S608 - SQL text here is built from quoted identifiers, never from values

from __future__ import annotations

import itertools
import os
import random
import sqlite3
import struct

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fabfile.migrate.render import (
    copy_escape,
    emit_generic,
    float_text,
    jsonb_problem,
    jsonb_text,
    numeric_text,
    register_functions,
    sqlite_emit,
    sqlite_line,
    utc_text,
)
from fabfile.migrate.typemap import map_declared


def _floats() -> list[float]:
    rnd = random.Random(7)
    special = [0.0, -0.0, 5.0, -5.0, 0.1, 1 / 3, 1e-300, 5e-324, 2.5e-310, 1e308,
               1.7976931348623157e308, 1e15, -1e15, 1.5e15, 1234567890123456.8, 9999999999999998.0,
               1e16, 123456789012345.6, 1e-4, 1e-5, 1.5e-5, 100.0, 1e22, 2**53, 2**53 + 2.0,
               float("inf"), float("-inf")]
    bits = [struct.unpack("<d", rnd.randbytes(8))[0] for _ in range(3000)]
    bits = [b for b in bits if b == b]
    scaled = [rnd.random() * 10 ** rnd.randint(-20, 20) for _ in range(3000)]
    huge = [float(rnd.randint(2**53, 2**70)) for _ in range(3000)]
    huge += [rnd.random() * 10 ** rnd.randint(15, 300) for _ in range(3000)]
    return special + bits + scaled + huge + [-v for v in huge[:500]]


def test_float_text_is_what_postgresql_prints(pg_db: str) -> None:
    values = _floats()
    with psycopg.connect(pg_db) as conn:
        conn.execute("SET extra_float_digits = 1")
        conn.execute("CREATE TEMP TABLE f (i int, v float8)")
        with conn.cursor() as cur, cur.copy("COPY f FROM STDIN") as cp:
            for i, v in enumerate(values):
                cp.write(f"{i}\t{float_text(v)}\n")
        got = conn.execute("SELECT v::text, v FROM f ORDER BY i").fetchall()
    assert [g[0] for g in got] == [float_text(v) for v in values]
    assert [g[1] for g in got] == values


JSONS = ['{"b": 1, "a": [1, 2.50, -0.0, 1e2, 1E-3], "aa": {"z": null, "": true}}',
         '{"a": 1, "a": 2}', '[]', '{}', '"caf\\u00e9 \\"q\\" \\\\ \\n \\t \\u001f"', '12.3400',
         '{"\\u00e9": 1, "e": 2, "ee": {"x": [{"y": false}]}}', 'null', '-0',
         '123456789012345678901']


@pytest.mark.parametrize("text", JSONS)
def test_jsonb_text_is_what_postgresql_prints(pg_db: str, text: str) -> None:
    with psycopg.connect(pg_db) as conn:
        got = conn.execute("SELECT %s::jsonb::text", (text,)).fetchone()
    assert got is not None and jsonb_text(text) == got[0]


def test_jsonb_refusals_are_found() -> None:
    assert jsonb_problem('{"a": "\\u0000"}') is not None
    assert jsonb_problem('["\\ud800"]') is not None
    assert jsonb_problem('{"a": "\\\\u0000"}') is None


def test_sqlite_render_matches_copy_to_for_every_kind(pg_db: str) -> None:
    rows = [
        ("INTEGER", -9223372036854775808), ("REAL", 0.1), ("REAL", 12.0), ("BOOLEAN", 1),
        ("NUMERIC(10,2)", 3.1), ("NUMERIC(10,2)", 7), ("NUMERIC", 1e-7), ("NUMERIC", 12),
        ("TEXT", "tab\there\\back\nnl\rcr\x08\x0b\x0c end"), ("VARCHAR(5)", "héllo"),
        ("DATE", "2024-02-29"), ("DATE", 1704067200), ("TIME", "07:30"),
        ("DATETIME", "2024-01-02T03:04:05.120000"), ("DATETIME", "2024-01-02 03:04"),
        ("DATETIME", 0), ("JSON", '{"k": "v\\\\", "a": [1]}'), ("BLOB", b"\x00\xff\x10"),
        ("TEXT", None),
    ]
    src = sqlite3.connect(":memory:")
    register_functions(src)
    src.text_factory = bytes
    with psycopg.connect(pg_db) as conn:
        conn.execute("SET DateStyle = 'ISO, YMD'")
        conn.execute("SET extra_float_digits = 1")
        for i, (declared, value) in enumerate(rows):
            t = map_declared(declared)
            src.execute(f"CREATE TABLE s{i} (v {declared})")
            src.execute(f"INSERT INTO s{i} VALUES (?)", (value,))
            line = src.execute(f"SELECT {sqlite_line([('v', t)])} FROM s{i}").fetchone()[0]
            conn.execute(f"CREATE TEMP TABLE p{i} (v {t.sql})")  # type: ignore[arg-type]
            with conn.cursor() as cur:
                with cur.copy(f"COPY p{i} FROM STDIN") as cp:  # type: ignore[arg-type]
                    cp.write(line + b"\n")
                with cur.copy(f"COPY p{i} TO STDOUT") as cp:  # type: ignore[arg-type]
                    out = b"".join(bytes(d) for d in cp)
            assert out == line + b"\n", (declared, value, line, out)


def test_helpers() -> None:
    assert copy_escape("a\\b\tc") == "a\\\\b\\tc"
    assert numeric_text(1e-5) == "0.00001" and numeric_text(-0.0) == "0.0"
    assert utc_text("2024-01-01T10:00:00+02:00") == "2024-01-01 08:00:00+00"


EMIT_TYPES = ["INTEGER", "TEXT", "VARCHAR(4)", "DATETIME", "REAL", "BOOLEAN", "DATE", "JSON",
              "NUMERIC(5,2)", "", "TIMESTAMPTZ"]
VALUES = st.one_of(
    st.none(), st.integers(-2**63, 2**63 - 1), st.floats(allow_nan=False),
    st.binary(max_size=6),
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8),
    st.sampled_from(["2024-01-02 03:04:05", "2024-02-30 01:02:03", "0000-01-01 00:00:00",
                     "2024-01-02T03:04:05", "2024-01-02 03:04:05.120", "2024-01-02",
                     "24:00:00", "a\\b\tc", "true", "[1, 2]", "x\x00y", "12:30", "",
                     "2023-02-29", "2024-02-29", "2024-04-31 10:00:00", "2024-01-01 24:00:00",
                     "0000-12-31", "2024-13-01", " 2024-01-01", "2024-01-01 10:00:00Z"]),
    st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}( [0-9]{2}:[0-9]{2}:[0-9]{2})?\Z"))


@settings(max_examples=int(os.environ.get("EMIT_EXAMPLES", "60")), deadline=None, database=None)
@given(values=st.lists(VALUES, min_size=1, max_size=8))
def test_every_short_emit_form_equals_the_check_and_render_it_stands_for(
        values: list[object]) -> None:
    src = sqlite3.connect(":memory:")
    register_functions(src)
    src.text_factory = bytes
    cols = ", ".join(f'"c{i}" {d}' for i, d in enumerate(EMIT_TYPES))
    src.execute(f"CREATE TABLE t ({cols})")
    src.executemany(f"INSERT INTO t VALUES ({', '.join('?' * len(EMIT_TYPES))})",
                    [[v] * len(EMIT_TYPES) for v in values])
    for i, declared in enumerate(EMIT_TYPES):
        t = map_declared(declared)
        ascii_only = all(not isinstance(v, str | bytes) or
                         (v.isascii() and ("\x00" if isinstance(v, str) else b"\x00") not in v)
                         for v in values)
        for notnull, escape, utf8, key in itertools.product([False, True], repeat=4):
            if not utf8 and not ascii_only:
                continue  # the short check form is for chunks without NUL or non-ASCII only
            flags = {"notnull": notnull, "escape": escape, "utf8": utf8, "key": key}
            short = sqlite_emit(f"c{i}", t, **flags)
            generic = emit_generic(f"c{i}", t, **flags)
            rows = src.execute(f'SELECT CAST({short} AS TEXT), CAST({generic} AS TEXT) '
                               f'FROM t WHERE NOT ({notnull} AND "c{i}" IS NULL)').fetchall()
            assert all(a == b for a, b in rows), (declared, flags, rows)
