"""Verification reads a table as it lies when it was loaded in key order, sorted otherwise."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from fabfile.migrate.copy import SourceChecksum
from fabfile.migrate.plan import build_plan
from fabfile.migrate.sqlite_schema import open_readonly, read_schema
from fabfile.migrate.verify import check_table
from fabfile.migrate.workers import connect_target

from .conftest import query


def test_rows_lying_out_of_key_order_are_read_again_sorted(make_db: Callable[..., Path],
                                                           pg_db: str) -> None:
    path = make_db("CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT)")
    t = build_plan(read_schema(open_readonly(path))).tables[0]
    query(pg_db, "CREATE TABLE t (id bigint, s text)")
    query(pg_db, "INSERT INTO t VALUES (3, 'c'), (1, 'a'), (2, 'b')")  # lies as 3, 1, 2
    stream = b"1\ta\n2\tb\n3\tc\n"
    src = SourceChecksum(True, rows=3, sha256=hashlib.sha256(stream).hexdigest())
    pg = connect_target(pg_db)
    try:
        assert check_table(pg, t, src, in_order=True).ok
        query(pg_db, "UPDATE t SET s = 'x' WHERE id = 2")
        verdict = check_table(pg, t, src, in_order=True)
    finally:
        pg.close()
    assert not verdict.ok and verdict.detail == "content checksum differs"
