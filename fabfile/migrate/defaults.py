"""Column defaults: a SQLite DEFAULT as a PostgreSQL DEFAULT that gives the same value.

SQLite keeps a default as text and evaluates it on each insert, then applies the column's
affinity. A default is one of three things here:

- the clock (`CURRENT_TIMESTAMP`, `datetime('now')`, `strftime(FORMAT, 'now')`,
  `date('now')`, `unixepoch()`, ..., optionally with `'localtime'`): the same instant
  (UTC, or PostgreSQL's local time for `'localtime'`), cut to the same precision and, for
  text columns, written in the same format, built on PostgreSQL's `now()`;
- a constant (literals, arithmetic, deterministic functions): SQLite itself evaluates it once,
  in a scratch in-memory table with the column's declared type, and the migration's own
  check and rendering (`render`) turn the stored value into the text COPY would send. The
  PostgreSQL default is that value as a literal, and `expect` is the text PostgreSQL must
  print for it, which `target.check_defaults` proves before anything is written;
- anything else (`random()`, an unknown function, the clock used some other way): not kept.

A value the migration would refuse in a row (text in an INTEGER column, 'abcdef' in a
VARCHAR(3)) is refused as a default too, with the same reason: a row inserted with the default
then holds the same value in both databases, or the default is reported and left out.
"""

# ruff: noqa: S608 - the SQL here is the schema's own DEFAULT text, run in a scratch in-memory
# database, and expressions built by `render`

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass

from .identifiers import quote_literal
from .render import copy_unescape, register_functions, sqlite_check, sqlite_render
from .sqlite_schema import Tok, paren_span, tokenize, unquote
from .typemap import Kind, PgType


@dataclass(frozen=True)
class Default:
    sql: str | None = None
    """The PostgreSQL DEFAULT expression; None: no default."""
    expect: str | None = None
    """For a constant, the text PostgreSQL must print for `sql` (its output function, with
    the migration's session settings)."""
    level: str = ""
    """`info` (kept, with a caveat), `warn` (not kept) or empty (nothing to say)."""
    why: str = ""


# SQLite's core functions whose result depends only on their arguments. The date and time
# functions are here too: an argument of 'now' or a 'localtime'/'utc' modifier is caught
# separately (`_CLOCK_WORDS`).
DETERMINISTIC = frozenset((
    "abs", "char", "coalesce", "concat", "concat_ws", "format", "glob", "hex", "ifnull", "iif",
    "instr", "length", "like", "likelihood", "likely", "lower", "ltrim", "max", "min", "nullif",
    "octet_length", "printf", "quote", "replace", "round", "rtrim", "sign", "soundex", "substr",
    "substring", "trim", "typeof", "unhex", "unicode", "unlikely", "upper", "zeroblob",
    "acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "ceil", "ceiling", "cos", "cosh",
    "degrees", "exp", "floor", "ln", "log", "log10", "log2", "mod", "pi", "pow", "power",
    "radians", "sin", "sinh", "sqrt", "tan", "tanh", "trunc",
    "json", "json_array", "json_array_length", "json_extract", "json_insert", "json_object",
    "json_patch", "json_quote", "json_remove", "json_replace", "json_set", "json_type",
    "json_valid",
    "date", "time", "datetime", "julianday", "strftime", "unixepoch",
))
_CLOCK_WORDS = frozenset({"now", "localtime", "utc"})
_DATE_FUNCTIONS = frozenset({"date", "time", "datetime", "julianday", "strftime", "unixepoch"})
_KEYWORDS = frozenset({"CAST", "IN", "AND", "OR", "NOT", "IS", "WHEN", "THEN", "ELSE", "CASE",
                       "LIKE", "GLOB", "BETWEEN", "ESCAPE", "AS", "EXISTS", "MATCH", "REGEXP"})
_CLOCK_KEYWORDS = {"CURRENT_TIMESTAMP": "%Y-%m-%d %H:%M:%S", "CURRENT_DATE": "%Y-%m-%d",
                   "CURRENT_TIME": "%H:%M:%S"}
_CLOCK_FUNCTIONS = {"datetime": "%Y-%m-%d %H:%M:%S", "date": "%Y-%m-%d", "time": "%H:%M:%S",
                    "unixepoch": "%s"}
_TO_CHAR = {"Y": "YYYY", "m": "MM", "d": "DD", "H": "HH24", "M": "MI", "S": "SS", "f": "SS.MS",
            "j": "DDD"}
"""strftime directives and the to_char patterns that write the same digits."""
_LITERAL = re.compile(r"[-:/ .,T_Z]+")
_PLAIN_NUMBER = re.compile(r"-?\d+(\.\d+)?")
_UTC_NOW = "now() AT TIME ZONE 'UTC'"
_LOCAL_NOW = "LOCALTIMESTAMP"
MAX_DEFAULT_BYTES = 1_000_000
"""SQLite's length limit while it evaluates a default (zeroblob(10**9) is refused, not made)."""


@dataclass(frozen=True)
class Clock:
    format: str
    """A strftime format (`%s`: Unix time)."""
    local: bool


def translate(raw: str | None, declared: str, t: PgType) -> Default:
    """The PostgreSQL default for a column declared DECLARED (PostgreSQL type T) whose SQLite
    DEFAULT text is RAW."""
    if raw is None:
        return Default()
    toks = _strip_parens(tokenize(raw))
    if len(toks) == 1 and toks[0].upper == "NULL":
        return Default()
    clock = parse_clock(toks)
    if clock is None and _reads_clock(toks):
        return _drop("it depends on the clock or the time zone in a way that has no "
                     "PostgreSQL translation here")
    if clock is None:
        for name in _called(toks):
            if name.lower() not in DETERMINISTIC:
                return _drop(f"{name}() may give a different value on each insert "
                             "(or is not one of SQLite's own functions)")
    raw = _single_quoted(toks, raw)
    try:
        sample = evaluate(raw, declared, t)
    except sqlite3.Error as exc:
        return _drop(f"SQLite cannot evaluate it here ({exc})")
    if sample is None:
        return Default()
    storage, problem, text = sample
    if problem:
        return _drop(f"it gives {text!r}, which cannot move to {t.sql} ({problem})")
    if clock is not None:
        return _clock_default(clock, t, storage)
    return _constant(text, t, storage)


def _called(toks: list[Tok]) -> list[str]:
    """Names of the functions TOKS call."""
    return [x.text for i, x in enumerate(toks[:-1]) if x.kind == "word"
            and toks[i + 1].text == "(" and x.upper not in _KEYWORDS]


def _reads_clock(toks: list[Tok]) -> bool:
    """Whether TOKS read the clock or the time zone: CURRENT_*, a date function called
    without arguments (that is 'now') or with 'now', 'localtime' or 'utc'."""
    if any(x.kind == "word" and x.upper in _CLOCK_KEYWORDS for x in toks):
        return True
    dated = [i for i, x in enumerate(toks[:-2]) if x.kind == "word"
             and x.text.lower() in _DATE_FUNCTIONS and toks[i + 1].text == "("]
    words = {unquote(x).lower() for x in toks if x.kind == "str"}
    return bool(dated) and (bool(words & _CLOCK_WORDS) or
                            any(toks[i + 2].text == ")" for i in dated))


def _drop(why: str) -> Default:
    return Default(level="warn", why=why)


def _strip_parens(toks: list[Tok]) -> list[Tok]:
    while len(toks) >= 2 and toks[0].text == "(" and paren_span(toks, 0) == len(toks) - 1:
        toks = toks[1:-1]
    return toks


def _single_quoted(toks: list[Tok], raw: str) -> str:
    """`DEFAULT "text"` as SQLite reads it (a string, its legacy double-quote rule), spelt
    with single quotes so that a build without that rule evaluates it the same."""
    if len(toks) == 1 and toks[0].kind == "qid" and toks[0].text.startswith('"'):
        return quote_literal(unquote(toks[0]))
    return raw


def parse_clock(toks: list[Tok]) -> Clock | None:
    """The clock default TOKS spell, if it is one this module translates."""
    toks = _strip_parens(toks)
    if len(toks) == 1 and toks[0].kind == "word" and toks[0].upper in _CLOCK_KEYWORDS:
        return Clock(_CLOCK_KEYWORDS[toks[0].upper], local=False)
    if len(toks) < 3 or toks[0].kind != "word" or toks[1].text != "(" or toks[-1].text != ")":
        return None
    name = toks[0].text.lower()
    args = toks[2:-1]
    if any(a.kind != "str" for a in args[0::2]) or any(a.text != "," for a in args[1::2]):
        return None
    values = [unquote(a) for a in args[0::2]]
    if name == "strftime":
        if not values:
            return None
        fmt, values = values[0], values[1:]
    elif name in _CLOCK_FUNCTIONS:
        fmt = _CLOCK_FUNCTIONS[name]
    else:
        return None
    mods = [v.lower() for v in values] or ["now"]  # without a time value, SQLite takes 'now'
    if not mods or mods[0] != "now" or any(m != "localtime" for m in mods[1:]):
        return None
    if fmt != "%s" and to_char_pattern(fmt) is None:
        return None
    return Clock(fmt, local="localtime" in mods)


def to_char_pattern(fmt: str) -> str | None:
    """The PostgreSQL to_char pattern writing what strftime FMT writes; None if there is none."""
    out = []
    i = 0
    while i < len(fmt):
        if fmt[i] == "%":
            directive = fmt[i + 1:i + 2]
            if directive not in _TO_CHAR:
                return None
            out.append(_TO_CHAR[directive])
            i += 2
            continue
        m = _LITERAL.match(fmt, i)
        if not m:
            return None
        text = m.group()
        out.append(f'"{text}"' if any(c.isalpha() for c in text) else text)
        i = m.end()
    return "".join(out) or None


def evaluate(raw: str, declared: str, t: PgType) -> tuple[str, str | None, str] | None:
    """What SQLite stores for DEFAULT RAW in a column declared DECLARED: (storage class, why
    the migration would refuse it or None, its COPY field unescaped); None for NULL.

    A scratch in-memory database does it, with the migration's own check and rendering."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_DEFAULT_BYTES)
        register_functions(conn)
        conn.text_factory = bytes
        conn.execute(f'CREATE TABLE d ("v" {declared} DEFAULT ({raw}))')
        conn.execute("INSERT INTO d DEFAULT VALUES")
        storage, problem, value = conn.execute(
            f"SELECT typeof(v), {sqlite_check('v', t)}, v FROM d").fetchone()
        if problem is not None:
            return storage.decode(), problem.decode("utf-8", "replace"), _shown(value)
        if value is None:
            return None
        text = conn.execute(f"SELECT CAST({sqlite_render('v', t)} AS TEXT) FROM d").fetchone()[0]
    finally:
        conn.close()
    return storage.decode(), None, copy_unescape(text.decode())


def _shown(value: object) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return text[:60] + ("..." if len(text) > 60 else "")


def _constant(text: str, t: PgType, storage: str) -> Default:
    k = t.kind
    if k is Kind.INT or (k in (Kind.FLOAT, Kind.NUMERIC) and _PLAIN_NUMBER.fullmatch(text)
                         and text != "-0"):
        sql = text
    elif k is Kind.BOOL:
        sql = "true" if text == "t" else "false"
    else:
        sql = quote_literal(text)
    if k in (Kind.DATE, Kind.TIMESTAMP, Kind.TIMESTAMPTZ) and storage in ("integer", "real"):
        what = "Unix time" if storage == "integer" else "a Julian day"
        return Default(sql, text, "info", f"a number, read as {what} like the column's values")
    return Default(sql, text)


def _clock_default(clock: Clock, t: PgType, storage: str) -> Default:
    base = _LOCAL_NOW if clock.local else _UTC_NOW
    epoch = f"floor(extract(epoch FROM {base}))::bigint"
    text = f"{epoch}::text" if clock.format == "%s" else \
        f"to_char({base}, {quote_literal(to_char_pattern(clock.format) or '')})"
    k = t.kind
    sql: str | None = None
    if k is Kind.TEXT:
        sql = text
    elif k is Kind.INT:
        sql = epoch if clock.format == "%s" else f"({text})::bigint"
    elif k in (Kind.FLOAT, Kind.NUMERIC):
        sql = f"({epoch if clock.format == '%s' else text})::{t.sql}"
    elif k in (Kind.TIMESTAMP, Kind.TIMESTAMPTZ) and (storage == "text" or clock.format == "%s"):
        units = {"%s": "second", "%Y-%m-%d %H:%M:%S": "second",
                 "%Y-%m-%d %H:%M:%f": "milliseconds", "%Y-%m-%d": "day"}
        unit = units.get(clock.format)
        sql = f"date_trunc('{unit}', {base})" if unit else f"({text})::timestamp"
        if k is Kind.TIMESTAMPTZ:
            sql = f"({sql} AT TIME ZONE 'UTC')"
    elif k is Kind.DATE and storage == "text":
        sql = f"({base})::date" if clock.format == "%Y-%m-%d" else f"({text})::date"
    elif k is Kind.TIME and storage == "text":
        sql = f"date_trunc('second', {base})::time" if clock.format == "%H:%M:%S" else \
            f"({text})::time"
    if sql is None:
        return _drop(f"the clock's value has no translation for a {t.sql} column")
    if clock.local:
        return Default(sql, None, "info", "the local time is now PostgreSQL's (its TimeZone "
                       "setting), no longer the app host's")
    return Default(sql)
