"""PostgreSQL identifiers: quoting, the 63-byte limit, and names that need care."""

from __future__ import annotations

import hashlib

MAX_IDENT_BYTES = 63

# PostgreSQL's reserved key words (SQL key words appendix, "reserved" and "reserved (can be
# function or type)"): unquoted they are syntax errors as table or column names.
RESERVED = frozenset([
    "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric",
    "authorization", "binary", "both", "case", "cast", "check", "collate", "collation",
    "column", "concurrently", "constraint", "create", "cross", "current_catalog",
    "current_date", "current_role", "current_schema", "current_time", "current_timestamp",
    "current_user", "default", "deferrable", "desc", "distinct", "do", "else", "end", "except",
    "false", "fetch", "for", "foreign", "freeze", "from", "full", "grant", "group", "having",
    "ilike", "in", "initially", "inner", "intersect", "into", "is", "isnull", "join",
    "lateral", "leading", "left", "like", "limit", "localtime", "localtimestamp", "natural",
    "not", "notnull", "null", "offset", "on", "only", "or", "order", "outer", "overlaps",
    "placing", "primary", "references", "returning", "right", "select", "session_user",
    "similar", "some", "symmetric", "system_user", "table", "tablesample", "then", "to",
    "trailing", "true", "union", "unique", "user", "using", "variadic", "verbose", "when",
    "where", "window", "with",
])


def quote_ident(name: str) -> str:
    """Always-quoted identifier: keeps case and reserved words exactly."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def fit_name(name: str) -> str:
    """NAME unchanged when it fits in 63 bytes, else a stable shortened form.

    The short form is the longest prefix that fits with `_` and 8 hex digits of the name's
    sha1 appended, cut on a character boundary: the same long name always gives the same
    short one, and two long names sharing a prefix do not collide.
    """
    raw = name.encode()
    if len(raw) <= MAX_IDENT_BYTES:
        return name
    digest = hashlib.sha1(raw, usedforsecurity=False).hexdigest()[:8]
    budget = MAX_IDENT_BYTES - 9
    prefix = raw[:budget].decode("utf-8", errors="ignore")
    return f"{prefix}_{digest}"


def name_concerns(name: str) -> list[str]:
    """Why an unquoted reference to NAME in PostgreSQL would not find it as it is."""
    out = []
    if len(name.encode()) > MAX_IDENT_BYTES:
        out.append(f"longer than {MAX_IDENT_BYTES} bytes: renamed to {fit_name(name)!r}")
    if name != name.lower():
        out.append("has upper case: kept, so queries must quote it")
    if name.lower() in RESERVED:
        out.append("is a reserved word: kept, so queries must quote it")
    elif not name.replace("_", "a").isalnum() or name[:1].isdigit():
        out.append("has characters that need quoting: kept, so queries must quote it")
    return out
