"""Fixtures for the migration tests: SQLite files made from SQL, the roster at scale 1."""

from __future__ import annotations

import hashlib
import io
import os
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from rich.console import Console

from fabfile.migrate.engine import MigrateOptions, migrate
from fabfile.migrate.report import MigrationReport, RunUI

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("SHARED_DIR", ROOT.parent / "shared"))
GENERATOR = SHARED / "bench" / "make_roster_sqlite.py"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def roster1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bench roster database at scale 1 (~311k rows), generated once per session."""
    if not GENERATOR.exists():
        pytest.skip(f"roster generator not found at {GENERATOR}")
    out = tmp_path_factory.mktemp("roster") / "roster1.db"
    subprocess.run([sys.executable, str(GENERATOR), str(out), "--scale", "1"], check=True,
                   capture_output=True)
    return out


@pytest.fixture
def make_db(tmp_path: Path) -> Callable[..., Path]:
    """Write a SQLite file from a SQL script (and optional rows inserted with parameters)."""
    counter = iter(range(1000))

    def make(script: str, rows: dict[str, list[tuple[Any, ...]]] | None = None) -> Path:
        path = tmp_path / f"src{next(counter)}.db"
        conn = sqlite3.connect(path)
        conn.executescript(script)
        for sql, values in (rows or {}).items():
            conn.executemany(sql, values)
        conn.commit()
        conn.close()
        return path

    return make


def quiet_ui() -> RunUI:
    return RunUI(Console(file=io.StringIO(), width=200))


@pytest.fixture
def spill_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """TMPDIR of the engine (where its spill directory goes) for this test."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


@pytest.fixture
def run(spill_root: Path) -> Callable[..., MigrationReport]:
    """Run the migration engine with a silent console; every run, however it ends, must
    leave no spill directory behind."""

    def go(path: Path, url: str, **options: Any) -> MigrationReport:
        options.setdefault("jobs", 2)
        try:
            return migrate(path, url, MigrateOptions(**options), ui=quiet_ui())
        finally:
            assert list(spill_root.iterdir()) == []

    return go


def query(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        cur = conn.execute(sql, params)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []


def tables(url: str) -> list[str]:
    return [r[0] for r in query(url, "SELECT tablename FROM pg_tables WHERE schemaname='public' "
                                     "ORDER BY 1")]
