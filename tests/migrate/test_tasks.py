"""The `db` tasks as an operator runs them: `.venv/bin/inv ...`, exit codes and messages."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import ROOT, query

INV = [sys.executable, "-m", "invoke"]


def inv(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*INV, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.fixture
def small(make_db: Callable[..., Path]) -> Path:
    return make_db("CREATE TABLE t (id INTEGER PRIMARY KEY, name VARCHAR(10) NOT NULL);"
                   "INSERT INTO t (name) VALUES ('a'), ('b');")


def _clean_error(res: subprocess.CompletedProcess[str], message: str) -> None:
    out = res.stdout + res.stderr
    assert res.returncode == 1, out
    assert message in out, out
    assert "Traceback" not in out, out


def test_missing_file(tmp_path: Path) -> None:
    res = inv("db.migrate-from-sqlite", f"--sqlite={tmp_path / 'nope.db'}",
              "--target-url=postgresql://x@127.0.0.1:1/x")
    _clean_error(res, "SQLite file not found")


def test_not_a_sqlite_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"PK\x03\x04 definitely a zip")
    res = inv("db.migrate-from-sqlite", f"--sqlite={junk}",
              "--target-url=postgresql://x@127.0.0.1:1/x")
    _clean_error(res, "not a SQLite database")


def test_unreachable_target(small: Path) -> None:
    res = inv("db.migrate-from-sqlite", f"--sqlite={small}",
              "--target-url=postgresql://someone:secret@127.0.0.1:1/db")
    _clean_error(res, "cannot connect to the target postgresql://someone:***@127.0.0.1:1/db")
    assert "secret" not in res.stdout + res.stderr


def test_malformed_target_url(small: Path) -> None:
    res = inv("db.migrate-from-sqlite", f"--sqlite={small}", "--target-url=not a url")
    _clean_error(res, "cannot connect to the target")


@pytest.mark.parametrize(("option", "message"), [
    ("--jobs=abc", "--jobs='abc': expected a whole number"),
    ("--jobs=0", "--jobs=0: expected 1 to 64"),
    ("--schema=guess", "--schema='guess': expected one of infer, existing"),
    ("--verify=sha", "--verify='sha': expected one of counts, checksums"),
    ("--on-bad-rows=ignore", "--on-bad-rows='ignore': expected one of fail, quarantine"),
    ("--report=/no/such/dir/r.json", "directory /no/such/dir does not exist"),
])
def test_bad_option_values(small: Path, option: str, message: str) -> None:
    res = inv("db.migrate-from-sqlite", f"--sqlite={small}",
              "--target-url=postgresql://x@127.0.0.1:1/x", option)
    _clean_error(res, message)


def test_missing_required_option() -> None:
    _clean_error(inv("db.migrate-from-sqlite", "--target-url=postgresql://x@h/db"),
                 "--sqlite is required")


def test_migrate_then_verify_with_reports(small: Path, pg_db: str, tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    res = inv("db.migrate-from-sqlite", f"--sqlite={small}", f"--target-url={pg_db}",
              f"--report={report}", "--jobs=1")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "checksums ok" in res.stdout
    data = json.loads(report.read_text())
    assert data["ok"] and data["tables"][0]["rows"] == 2 and data["source_unchanged"]
    assert query(pg_db, "SELECT name FROM t ORDER BY id") == [("a",), ("b",)]
    res = inv("db.verify", f"--sqlite={small}", f"--target-url={pg_db}")
    assert res.returncode == 0, res.stdout + res.stderr
    query(pg_db, "UPDATE t SET name = 'z' WHERE id = 2")
    res = inv("db.verify", f"--sqlite={small}", f"--target-url={pg_db}", f"--report={report}")
    _clean_error(res, "verification failed for t")
    assert "id=2" in res.stdout
    assert not json.loads(report.read_text())["ok"]


def test_bad_rows_exit_non_zero_with_report(make_db: Callable[..., Path], pg_db: str,
                                            tmp_path: Path) -> None:
    path = make_db("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER);"
                   "INSERT INTO t (n) VALUES (1), ('two');")
    report = tmp_path / "bad.json"
    res = inv("db.migrate-from-sqlite", f"--sqlite={path}", f"--target-url={pg_db}",
              f"--report={report}")
    _clean_error(res, "1 value(s) cannot move unchanged; nothing was written")
    assert "rowid=2" in res.stdout
    bad = json.loads(report.read_text())["bad_rows"]
    assert bad[0]["table"] == "t" and bad[0]["column"] == "n" and "'two'" in bad[0]["excerpt"]


def test_dry_run_prints_schema(small: Path, pg_db: str) -> None:
    res = inv("db.migrate-from-sqlite", f"--sqlite={small}", f"--target-url={pg_db}", "--dry-run")
    assert res.returncode == 0, res.stdout + res.stderr
    assert 'CREATE TABLE "t"' in res.stdout and '"name" varchar(10) NOT NULL' in res.stdout
    assert query(pg_db, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]
