"""Canonical rendering of values: PostgreSQL's own COPY text, produced by SQLite.

Each column of kind K gets two SQLite expressions:
- `check`: NULL when the value can move unchanged, else the reason it cannot;
- `render`: the value exactly as PostgreSQL's `COPY ... TO STDOUT` will print it once stored
  (DateStyle ISO, TimeZone UTC, extra_float_digits 1, bytea hex), COPY-escaped, `\\N` for NULL.

The copy sends `render` lines and hashes them; verification hashes what the target's COPY TO
prints. The two are equal exactly when every value arrived unchanged: a match is a proof and a
mismatch, never silent, names the table and the first differing key. Most work runs in
SQLite's C code; Python sees only floats (shortest round-trip digits, as PostgreSQL prints
them), JSON (jsonb's canonical text) and rare slow-path values, through the functions
`register_functions` installs.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import re
import sqlite3
from collections.abc import Callable
from fractions import Fraction
from functools import lru_cache
from typing import Any

from .typemap import Kind, PgType

NULL_TEXT = "'\\N'"
TAB = "'\t'"


def sq(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --- SQLite side ------------------------------------------------------------------------

_NEEDS_ESCAPE = "'*[\\' || char(8) || '-' || char(13) || ']*'"
_ESCAPES = (("\\", "\\\\"), ("char(8)", "'\\b'"), ("char(9)", "'\\t'"), ("char(10)", "'\\n'"),
            ("char(11)", "'\\v'"), ("char(12)", "'\\f'"), ("char(13)", "'\\r'"))


def _esc(e: str) -> str:
    """COPY text escaping, as COPY TO writes it (backslash, \\b \\t \\n \\v \\f \\r), done
    only for values that need it (one GLOB scan)."""
    out = f"replace({e},'\\','\\\\')"
    for raw, escaped in _ESCAPES[1:]:
        out = f"replace({out},{raw},{escaped})"
    return f"CASE WHEN {e} GLOB {_NEEDS_ESCAPE} THEN {out} ELSE {e} END"


def _day_ok(x: str) -> str:
    """The day exists in its month: SQLite keeps Feb 30 as written unless a modifier makes it
    normalise, so days past the 28th are checked that way."""
    return f"(substr({x},9,2) <= '28' OR date({x}, '+0 days') = substr({x},1,10))"


def _naive_text_ok(x: str) -> str:
    """Text in a shape that keeps every digit, valid by SQLite's own calendar.

    `datetime()` answers in canonical form, so equality with the input proves the shape and
    the ranges of each field; `_day_ok` catches days past the end of the month. Year 0 exists
    in SQLite, not in PostgreSQL; more than 6 fractional digits would be rounded: refused.
    """
    sp = f"replace({x},'T',' ')"
    return (
        f"({x} >= '0001' AND {_day_ok(x)} AND CASE length({x}) "
        f"WHEN 19 THEN datetime({x}) = {x} OR (substr({x},11,1) = 'T' AND datetime({x}) = {sp}) "
        f"WHEN 10 THEN date({x}) = {x} "
        f"WHEN 16 THEN datetime({x}) = {sp} || ':00' "
        f"ELSE length({x}) BETWEEN 21 AND 26 AND substr({x},20,1) = '.' "
        f"AND substr({x},21) NOT GLOB '*[^0-9]*' AND datetime({x}) = substr({sp},1,19) END)")


def _naive_text_render(x: str) -> str:
    fixed = f"CASE WHEN instr({x},'T') THEN replace({x},'T',' ') ELSE {x} END"
    return (f"CASE length({x}) WHEN 19 THEN {fixed} WHEN 10 THEN {x} || ' 00:00:00' "
            f"WHEN 16 THEN {fixed} || ':00' ELSE rtrim(rtrim({fixed},'0'),'.') END")


def _text_checks(x: str, length: int | None, utf8: bool = True) -> str:
    """NUL bytes and invalid UTF-8; only text with a NUL (length stops there) or a
    non-ASCII character (GLOB) pays for the UTF-8 check in Python. Without UTF8, the
    expression leaves that part out: for values known to hold only bytes 1-127 (see
    `preflight.scan_table`) both forms give the same answer."""
    b = f"CAST({x} AS BLOB)"
    non_ascii = "'*[^' || char(1) || '-' || char(127) || ']*'"
    out = (f"WHEN (length({b}) <> length({x}) OR {x} GLOB {non_ascii}) "
           f"AND (instr({b}, x'00') OR u8({b}) IS NOT NULL) "
           f"THEN CASE WHEN instr({b}, x'00') THEN 'NUL byte in text' ELSE u8({b}) END "
           ) if utf8 else ""
    if length is not None:
        out += (f"WHEN length({x}) > {length} THEN 'longer than varchar({length}): ' "
                f"|| length({x}) || ' characters' ")
    return out


BOOL_WORDS = "('true', 'false', 't', 'f')"
"""Text a BOOLEAN column may hold besides 0 and 1 (any case): PostgreSQL reads it the same."""

UTF8_KINDS = frozenset({Kind.TEXT, Kind.JSON, Kind.JSONB})
"""Kinds whose check looks for NUL bytes and invalid UTF-8."""


def sqlite_check(col: str, t: PgType, *, utf8: bool = True) -> str:
    """SQLite expression: NULL if the value of COL fits type T, else why not.

    With `utf8=False` the NUL/UTF-8 test (of `UTF8_KINDS`) is left out; that form is only
    valid for values without NUL bytes and bytes >= 0x80."""
    x = sq(col)
    k = t.kind
    ty = f"typeof({x})"
    if k is Kind.INT:
        body = f"WHEN {ty} <> 'integer' THEN 'not an integer: ' || {ty} "
    elif k is Kind.FLOAT:
        body = f"WHEN {ty} NOT IN ('real','integer') THEN 'not a number: ' || {ty} "
    elif k is Kind.BOOL:
        body = (f"WHEN {ty} = 'integer' AND {x} IN (0, 1) THEN NULL "
                f"WHEN {ty} = 'text' AND lower({x}) IN {BOOL_WORDS} THEN NULL "
                f"ELSE 'not a boolean (0, 1, true, false, t or f)' ")
    elif k is Kind.NUMERIC:
        body = f"WHEN {ty} NOT IN ('real','integer') THEN 'not a number: ' || {ty} "
        if t.precision is not None:
            s = t.scale or 0
            body += (f"WHEN {x} >= 1e{t.precision - s} OR {x} <= -1e{t.precision - s} THEN "
                     f"'out of range for numeric({t.precision},{s})' "
                     f"WHEN {ty} = 'real' AND "
                     f"abs({x} - round({x}, {s})) > 1e-9 * max(1.0, abs({x})) "
                     f"THEN 'more than {s} decimal places for numeric({t.precision},{s})' ")
    elif k is Kind.TEXT:
        body = (f"WHEN {ty} NOT IN ('text','integer','real') THEN 'not text: ' || {ty} "
                + _text_checks(x, t.length, utf8))
    elif k is Kind.DATE:
        body = (f"WHEN {ty} = 'text' THEN CASE WHEN {x} >= '0001' AND date({x}) = {x} "
                f"AND {_day_ok(x)} "
                f"THEN NULL ELSE 'not a date (YYYY-MM-DD)' END "
                f"WHEN {ty} = 'integer' THEN CASE WHEN {x} % 86400 = 0 AND "
                f"date({x}, 'unixepoch') >= '0001' THEN NULL ELSE "
                f"'integer is not Unix time at midnight (year 1 or later)' END "
                f"WHEN {ty} = 'real' THEN CASE WHEN {x} - 0.5 = CAST({x} - 0.5 AS INTEGER) AND "
                f"date({x}) >= '0001' THEN NULL ELSE "
                f"'real is not a Julian day at midnight (year 1 or later)' END "
                f"ELSE 'not a date: ' || {ty} ")
    elif k is Kind.TIME:
        body = (f"WHEN {ty} <> 'text' THEN 'not a time: ' || {ty} "
                f"WHEN NOT coalesce(CASE length({x}) WHEN 8 THEN time({x}) = {x} "
                f"WHEN 5 THEN time({x}) = {x} || ':00' "
                f"ELSE length({x}) BETWEEN 10 AND 15 AND substr({x},9,1) = '.' "
                f"AND substr({x},10) NOT GLOB '*[^0-9]*' AND time({x}) = substr({x},1,8) END, 0) "
                f"THEN 'not a time (HH:MM[:SS[.ffffff]])' ")
    elif k in (Kind.TIMESTAMP, Kind.TIMESTAMPTZ):
        text_bad = ("tzx(" + x + ")" if k is Kind.TIMESTAMPTZ else
                    f"CASE WHEN {x} GLOB '*[0-9][Zz]' "
                    f"OR {x} GLOB '*[0-9][+-][0-9][0-9]:[0-9][0-9]' "
                    f"THEN 'UTC offset in a naive DATETIME column (see --utc-timestamps)' "
                    f"ELSE 'not a date-time (YYYY-MM-DD HH:MM:SS[.ffffff])' END")
        body = (f"WHEN datetime({x}) = {x} AND {x} >= '0001' AND {_day_ok(x)} THEN NULL "
                f"WHEN {ty} = 'text' THEN "
                f"CASE WHEN {_naive_text_ok(x)} THEN NULL ELSE {text_bad} END "
                f"WHEN {ty} = 'integer' THEN CASE WHEN datetime({x}, 'unixepoch') >= '0001' "
                f"THEN NULL ELSE 'integer out of range for Unix time (year 1 to 9999)' END "
                f"WHEN {ty} = 'real' THEN CASE WHEN datetime({x}) >= '0001' "
                f"THEN NULL ELSE 'real out of range for a Julian day (year 1 to 9999)' END "
                f"ELSE 'not a date-time: ' || {ty} ")
    elif k in (Kind.JSONB, Kind.JSON):
        body = (f"WHEN {ty} <> 'text' THEN 'not JSON text: ' || {ty} "
                + _text_checks(x, None, utf8) + f"WHEN NOT json_valid({x}) THEN 'invalid JSON' ")
        if k is Kind.JSONB:
            body += f"WHEN instr({x}, '\\u') THEN jchk({x}) "
    elif k is Kind.BYTEA:
        body = f"WHEN {ty} <> 'blob' THEN 'not a BLOB: ' || {ty} "
    elif k is Kind.UUID:
        h = f"lower(replace(CAST({x} AS TEXT),'-',''))"
        body = (f"WHEN {ty} = 'blob' THEN "
                f"CASE WHEN length({x}) <> 16 THEN 'BLOB is not 16 bytes' END "
                f"WHEN {ty} <> 'text' OR length({h}) <> 32 OR {h} GLOB '*[^0-9a-f]*' "
                f"THEN 'not a UUID' ")
    else:  # pragma: no cover - every Kind is handled above
        raise ValueError(k)
    return f"CASE WHEN {x} IS NULL THEN NULL {body}END"


ESCAPE_KINDS = frozenset({Kind.TEXT, Kind.JSON})
"""Kinds whose text is COPY-escaped by SQLite (`_esc`)."""


def sqlite_render(col: str, t: PgType, *, notnull: bool = False, escape: bool = True) -> str:
    """SQLite expression: COL as COPY text (canonical form); `\\N` for NULL.

    With `escape=False` text is not COPY-escaped (`ESCAPE_KINDS`): only for values known to
    hold no backslash and no byte 8-13 (see `preflight.scan_table`), where it is the same.

    Integers and TEXT-affinity text are NULL exactly when the value is, so they need no
    `CASE`; a NOT NULL column needs no NULL branch at all (`||` turns integers into text).
    """
    x = sq(col)
    k = t.kind
    ty = f"typeof({x})"
    esc = _esc if escape else str
    if k is Kind.INT or (k is Kind.TEXT and t.text_only):
        e = x if k is Kind.INT else esc(x)
        return e if notnull else f"coalesce({e}, {NULL_TEXT})"
    if k is Kind.FLOAT:
        e = _float_text(f"CAST({x} AS REAL)")
    elif k is Kind.BOOL:
        e = (f"CASE {x} WHEN 1 THEN 't' WHEN 0 THEN 'f' "
             f"ELSE CASE WHEN lower({x}) IN ('true', 't') THEN 't' ELSE 'f' END END")
    elif k is Kind.NUMERIC:
        if t.precision is not None:
            s = t.scale or 0
            zeros = "." + "0" * s if s else ""
            e = (f"CASE WHEN {ty} = 'integer' THEN CAST({x} AS TEXT) || '{zeros}' "
                 f"WHEN round({x}, {s}) = 0 THEN '0{zeros}' ELSE printf('%.{s}f', {x}) END")
        else:
            e = f"CASE WHEN {ty} = 'integer' THEN CAST({x} AS TEXT) ELSE nt({x}) END"
    elif k is Kind.TEXT:
        if t.typeless:
            e = (f"CASE {ty} WHEN 'integer' THEN CAST({x} AS TEXT) WHEN 'real' THEN r({x}) "
                 f"ELSE {esc(x)} END")
        else:
            e = (f"CASE {ty} WHEN 'text' THEN {esc(x)} WHEN 'integer' THEN CAST({x} AS TEXT) "
                 f"ELSE r({x}) END")
    elif k is Kind.DATE:
        e = (f"CASE {ty} WHEN 'text' THEN {x} WHEN 'integer' THEN date({x}, 'unixepoch') "
             f"ELSE date({x}) END")
    elif k is Kind.TIME:
        e = (f"CASE length({x}) WHEN 8 THEN {x} WHEN 5 THEN {x} || ':00' "
             f"ELSE rtrim(rtrim({x},'0'),'.') END")
    elif k in (Kind.TIMESTAMP, Kind.TIMESTAMPTZ):
        e = (f"CASE WHEN length({x}) = 19 AND NOT instr({x}, 'T') THEN {x} "
             f"WHEN {ty} = 'text' THEN {_naive_text_render(x)} "
             f"WHEN {ty} = 'integer' THEN datetime({x}, 'unixepoch') "
             f"ELSE rtrim(rtrim(strftime('%Y-%m-%d %H:%M:%f', {x}),'0'),'.') END")
        if k is Kind.TIMESTAMPTZ:
            e = (f"CASE WHEN {ty} = 'text' AND NOT {_naive_text_ok(x)} THEN tz({x}) "
                 f"ELSE ({e}) || '+00' END")
    elif k is Kind.JSONB:
        e = f"CASE WHEN length({x}) <= {CACHED_JSON} THEN jcs({x}) ELSE jc({x}) END"
    elif k is Kind.JSON:
        e = esc(x)
    elif k is Kind.BYTEA:
        e = f"'\\\\x' || lower(hex({x}))"
    elif k is Kind.UUID:
        h = f"(CASE {ty} WHEN 'blob' THEN lower(hex({x})) ELSE lower(replace({x},'-','')) END)"
        e = (f"substr({h},1,8)||'-'||substr({h},9,4)||'-'||substr({h},13,4)||'-'||"
             f"substr({h},17,4)||'-'||substr({h},21,12)")
    else:  # pragma: no cover
        raise ValueError(k)
    return f"CASE WHEN {x} IS NULL THEN {NULL_TEXT} ELSE {e} END"


def _float_text(r: str) -> str:
    """The REAL R as float8 prints it. Integral values print as integers and the rest as
    Python's repr prints them; only zero (sign), |x| >= 1e15 (layouts differ) and
    infinities need the Python function."""
    return (f"CASE WHEN {r} = 0 OR abs({r}) >= 1e15 THEN pf({r}) "
            f"WHEN {r} = CAST({r} AS INTEGER) THEN CAST(CAST({r} AS INTEGER) AS TEXT) "
            f"ELSE r({r}) END")


def sqlite_line(cols: list[tuple[str, PgType]], notnull: frozenset[str] = frozenset(),
                plain: frozenset[str] = frozenset()) -> str:
    """One COPY line per row; a NULL line means a value rendered to nothing (a bug, caught).
    NOTNULL names the columns SQLite keeps free of NULLs; PLAIN those rendered without
    escaping (`sqlite_render`'s `escape=False`)."""
    line = f" || {TAB} || ".join(sqlite_render(c, t, notnull=c in notnull, escape=c not in plain)
                                 for c, t in cols)
    return f"CAST({line} AS TEXT)" if len(cols) == 1 else line


def sqlite_emit(col: str, t: PgType, *, notnull: bool = False, escape: bool = True,
                utf8: bool = True, key: bool = False) -> str:
    """SQLite expression: COL as COPY text (`sqlite_render`) when the value can move unchanged
    (`sqlite_check` finds nothing; with KEY, not NULL either), else NULL. The check and the
    rendering in one pass; `escape` and `utf8` as there.

    The kinds most columns have get a shorter form with the same result (`emit_generic` is
    the reference, tests compare the two): integers and clean TEXT-affinity text test their
    storage class once, a REAL skips the casts a column of mixed numbers needs, and a date
    or date-time already in canonical form is its own rendering."""
    x = sq(col)
    null = "" if notnull or key else f" WHEN {x} IS NULL THEN {NULL_TEXT}"
    if t.kind is Kind.INT:
        return f"CASE WHEN typeof({x}) = 'integer' THEN {x}{null} END"
    if t.kind is Kind.TEXT and t.text_only and not utf8:
        fits = f" AND length({x}) <= {t.length}" if t.length is not None else ""
        return f"CASE WHEN typeof({x}) = 'text'{fits} THEN {_esc(x) if escape else x}{null} END"
    generic = emit_generic(col, t, notnull=notnull, escape=escape, utf8=utf8, key=key)
    if t.kind is Kind.FLOAT:
        return f"CASE WHEN typeof({x}) = 'real' THEN {_float_text(x)} ELSE {generic} END"
    canonical = {Kind.TIMESTAMP: "datetime", Kind.DATE: "date"}.get(t.kind)
    if canonical:
        # a modifier makes SQLite normalise the day (Feb 30 is no longer itself), so one
        # call checks the shape, the ranges and the calendar
        return (f"CASE WHEN {canonical}({x}, '+0 days') = {x} AND {x} >= '0001' THEN {x} "
                f"ELSE {generic} END")
    return generic


def emit_generic(col: str, t: PgType, *, notnull: bool = False, escape: bool = True,
                 utf8: bool = True, key: bool = False) -> str:
    """`sqlite_emit` spelt as the check and the rendering it stands for."""
    ok = f"({sqlite_check(col, t, utf8=utf8)}) IS NULL"
    if key:
        ok += f" AND {sq(col)} IS NOT NULL"
    return f"CASE WHEN {ok} THEN {sqlite_render(col, t, notnull=notnull, escape=escape)} END"


def sqlite_emit_line(cols: list[tuple[str, PgType]], notnull: frozenset[str] = frozenset(),
                     plain: frozenset[str] = frozenset(), clean: frozenset[str] = frozenset(),
                     keys: frozenset[str] = frozenset()) -> str:
    """One COPY line per row, NULL when any value of the row cannot move (`sqlite_emit`).
    PLAIN: columns rendered without escaping; CLEAN: columns checked without the NUL/UTF-8
    test; KEYS: primary-key columns, where NULL is refused (see `preflight.scan_table`)."""
    line = f" || {TAB} || ".join(
        sqlite_emit(c, t, notnull=c in notnull, escape=c not in plain, utf8=c not in clean,
                    key=c in keys) for c, t in cols)
    return f"CAST({line} AS TEXT)" if len(cols) == 1 else line


# --- Python functions SQLite calls ------------------------------------------------------

_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n",
                               "\v": "\\v", "\f": "\\f", "\r": "\\r"})


def copy_escape(s: str) -> str:
    """COPY text escaping in Python (for values rendered by Python functions)."""
    if "\\" in s or any(c in s for c in "\b\t\n\v\f\r"):
        return s.translate(_COPY_ESCAPES)
    return s


_COPY_UNESCAPES = {"\\": "\\", "b": "\b", "t": "\t", "n": "\n", "v": "\v", "f": "\f",
                   "r": "\r"}
_COPY_ESCAPED = re.compile(r"\\(.)", re.S)


def copy_unescape(s: str) -> str:
    """The value a COPY text field stands for (the inverse of `copy_escape`)."""
    return _COPY_ESCAPED.sub(lambda m: _COPY_UNESCAPES.get(m.group(1), m.group(1)), s)


class _HasFloat(Exception):
    pass


def _no_float(_s: str) -> Any:
    raise _HasFloat


def _jsonb_key(kv: tuple[str, Any]) -> tuple[int, bytes]:
    b = kv[0].encode("utf-8", "surrogatepass")
    return (len(b), b)


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len(pairs) > 1:
        pairs.sort(key=_jsonb_key)
    return dict(pairs)


class _Obj(list):  # type: ignore[type-arg]
    """A JSON object as its (key, value) pairs, in the slow path."""


_FAST = json.JSONDecoder(object_pairs_hook=_pairs, parse_float=_no_float)
_SLOW = json.JSONDecoder(object_pairs_hook=_Obj, parse_float=decimal.Decimal,
                         parse_int=decimal.Decimal)
_ENC = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": "), allow_nan=False)


def _num_text(d: decimal.Decimal) -> str:
    """PostgreSQL numeric's output for a JSON number (no exponent, scale kept)."""
    if d.is_zero():
        d = abs(d)
    out = format(d, "f")
    return out


def _slow_jsonb(v: Any) -> str:
    if isinstance(v, _Obj):
        items = _pairs(list(v))
        inner = ", ".join(f"{_ENC.encode(k)}: {_slow_jsonb(x)}" for k, x in items.items())
        return "{" + inner + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_slow_jsonb(x) for x in v) + "]"
    if isinstance(v, decimal.Decimal):
        return _num_text(v)
    return _ENC.encode(v)


def jsonb_text(s: str) -> str:
    """PostgreSQL's `jsonb::text` for JSON text S: keys by (byte length, bytes), last
    duplicate wins, `", "` and `": "` separators, numbers as numeric prints them."""
    try:
        return _ENC.encode(_FAST.decode(s))
    except _HasFloat:
        return _slow_jsonb(_SLOW.decode(s))


CACHED_JSON = 4096
"""App JSON repeats a lot (settings, roles, event payloads): values up to this many characters
are rendered once per worker and remembered (at most `_jc_small`'s maxsize of them, so the
cache stays within a few tens of MB)."""


def _jc_text(s: str | bytes) -> str:
    if isinstance(s, bytes):
        s = s.decode()
    return copy_escape(jsonb_text(s))


_jc_small = lru_cache(maxsize=8192)(_jc_text)


_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000", re.I)


def jsonb_problem(s: str | bytes) -> str | None:
    """Why PostgreSQL's jsonb would refuse S though SQLite's json_valid accepts it."""
    if isinstance(s, bytes):
        s = s.decode("utf-8", "replace")
    try:
        text = jsonb_text(s)
    except (ValueError, RecursionError) as exc:
        return f"invalid JSON: {exc}"
    if _NUL_ESCAPE.search(s):
        return "JSON \\u0000 (jsonb refuses it)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "JSON lone surrogate escape (jsonb refuses it)"
    return None


def float_text(x: float) -> str:
    """float8 as PostgreSQL prints it (extra_float_digits = 1): the shortest digits that
    read back as X, in PostgreSQL's layout (`5`, not `5.0`; exponent form from 1e15, where
    Python switches at 1e16; `Infinity`)."""
    if x != x:
        return "NaN"
    if x in (_INF, -_INF):
        return "Infinity" if x > 0 else "-Infinity"
    s = repr(x)
    if abs(x) >= 1e15:
        mantissa, _, exp = s.partition("e")
        digits = mantissa.lstrip("-").replace(".", "")
        if not exp:
            exponent = len(mantissa.lstrip("-").split(".")[0]) - 1
        else:
            exponent = int(exp) + len(mantissa.lstrip("-").split(".")[0]) - 1
        digits = digits.rstrip("0") or "0"
        if abs(x) >= _TWO_53:
            digits, exponent = _strictly_inside(x, digits, exponent)
        body = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{'-' if x < 0 else ''}{body}e+{exponent:02d}"
    if s.endswith(".0"):
        return s[:-2]
    return s


def _strictly_inside(x: float, digits: str, exponent: int) -> tuple[str, int]:
    """PostgreSQL's Ryu never picks a decimal that lies exactly halfway to the next double;
    Python's repr may (it rounds ties to even). Only integers past 2**53 can hit that."""
    exact = Fraction(x)
    n_below, n_above = math.nextafter(x, -_INF), math.nextafter(x, _INF)
    below = Fraction(n_below) if math.isfinite(n_below) else 2 * exact - Fraction(n_above)
    above = Fraction(n_above) if math.isfinite(n_above) else 2 * exact - below
    lo, hi = (exact + below) / 2, (exact + above) / 2
    if lo > hi:
        lo, hi = hi, lo

    def value(d: str, e: int) -> Fraction:
        return Fraction(int(d)) * Fraction(10) ** (e - len(d) + 1)

    sign = -1 if x < 0 else 1
    if lo < sign * value(digits, exponent) < hi:
        return digits, exponent
    for precision in range(len(digits) + 1, 18):
        m, _, e = f"{abs(x):.{precision - 1}e}".partition("e")
        d = m.replace(".", "")
        if lo < sign * value(d, int(e)) < hi:
            return d.rstrip("0") or "0", int(e)
    return digits, exponent


_TWO_53 = float(2**53)
_INF = float("inf")


def numeric_text(x: float | int) -> str:
    """Unconstrained numeric for a SQLite REAL: the shortest decimal that round-trips."""
    if isinstance(x, int):
        return str(x)
    if x != x:
        return "NaN"
    if x in (float("inf"), float("-inf")):
        return "Infinity" if x > 0 else "-Infinity"
    return _num_text(decimal.Decimal(repr(x)))


def utf8_problem(b: bytes) -> str | None:
    try:
        b.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"invalid UTF-8 at byte {exc.start}"
    return None


def _parse_aware(s: str) -> dt.datetime | None:
    try:
        v = dt.datetime.fromisoformat(s.strip())
    except ValueError:
        return None
    return v


def utc_text(s: str | bytes) -> str:
    """A date-time with an offset, as timestamptz prints it with TimeZone=UTC."""
    if isinstance(s, bytes):
        s = s.decode()
    v = _parse_aware(s)
    if v is None:
        raise ValueError(f"not a date-time: {s!r}")
    if v.tzinfo is not None:
        v = v.astimezone(dt.UTC).replace(tzinfo=None)
    out = v.isoformat(sep=" ")
    if "." in out:
        out = out.rstrip("0").rstrip(".")
    return out + "+00"


def utc_problem(s: str | bytes) -> str | None:
    if isinstance(s, bytes):
        s = s.decode("utf-8", "replace")
    v = _parse_aware(s)
    if v is None:
        return "not a date-time (ISO 8601 with optional offset)"
    if not 1 <= v.year <= 9999:
        return "year out of range"
    return None


FUNCTIONS: dict[str, tuple[int, Callable[..., Any]]] = {
    "r": (1, repr),
    "pf": (1, float_text),
    "nt": (1, numeric_text),
    "jc": (1, _jc_text),
    "jcs": (1, _jc_small),
    "jchk": (1, jsonb_problem),
    "u8": (1, utf8_problem),
    "tz": (1, utc_text),
    "tzx": (1, utc_problem),
}


def register_functions(conn: sqlite3.Connection) -> None:
    for name, (nargs, fn) in FUNCTIONS.items():
        conn.create_function(name, nargs, fn, deterministic=True)
