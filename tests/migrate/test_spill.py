"""The single pass: COPY text rendered by the preflight into private spill files, streamed
only once every value is checked, and removed however the run ends."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from fabfile.migrate import engine
from fabfile.migrate.engine import MigrationFailed
from fabfile.migrate.report import MigrationReport
from fabfile.migrate.spill import PREFIX, Spill, sweep

from .conftest import ROOT, query, tables

Run = Callable[..., MigrationReport]
Make = Callable[..., Path]


def test_writer_keeps_lines_within_the_budget_and_frees_what_it_gave_up(tmp_path: Path) -> None:
    spill = Spill(tmp_path, budget=10)
    try:
        assert stat.S_IMODE(spill.path.stat().st_mode) == 0o700
        a = spill.writer("a")
        assert a.write(b"12345\n") and stat.S_IMODE(a.path.stat().st_mode) == 0o600
        b = spill.writer("b")
        assert not b.write(b"123456\n")  # over the 4 bytes left
        assert not b.write(b"1\n") and b.close() is None and not b.path.exists()
        assert spill.writer("c").write(b"123\n")  # what b took came back
        path = a.close()
        assert path is not None and path.read_bytes() == b"12345\n"
    finally:
        spill.close()
    assert not spill.path.exists()


def test_sweep_removes_only_directories_of_runs_that_are_gone(tmp_path: Path) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    stale = tmp_path / f"{PREFIX}{gone}-abc"
    stale.mkdir()
    (stale / "x.copy").write_bytes(b"1\n")
    alive = tmp_path / f"{PREFIX}{os.getpid()}-def"
    alive.mkdir()
    other = tmp_path / "unrelated"
    other.mkdir()
    sweep(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, other.name])


def test_roster_copies_from_the_spill_files_and_verifies(roster1: Path, pg_db: str, run: Run,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    rendered: list[str] = []
    original = engine._load

    def spy(*args: object) -> object:
        rendered.extend(sorted(args[-1]))  # type: ignore[call-overload]
        return original(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "_load", spy)
    report = run(roster1, pg_db)
    assert report.ok and all(t.verification == "checksums ok" for t in report.tables)
    assert set(rendered) == {t.table for t in report.tables}
    # written frozen: no page is left for vacuum to freeze or for a reader to set hint bits on
    query(pg_db, "CREATE EXTENSION pg_visibility")
    pages, frozen = query(pg_db, "SELECT relpages, (SELECT all_frozen FROM "
                                 "pg_visibility_map_summary('assignments')) FROM pg_class "
                                 "WHERE relname = 'assignments'")[0]
    assert frozen == pages > 0


def test_a_full_disk_falls_back_to_reading_the_source_again(
        roster1: Path, pg_db: str, run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    small = Spill.__init__

    def tiny(self: Spill, root: Path | None = None, *, budget: int | None = None) -> None:
        small(self, root, budget=2_000_000)  # room for the small tables only

    monkeypatch.setattr(Spill, "__init__", tiny)
    report = run(roster1, pg_db)
    assert report.ok and all(t.verification == "checksums ok" for t in report.tables)


def test_bad_rows_found_mid_table_write_nothing(make_db: Make, pg_db: str, run: Run,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("fabfile.migrate.preflight.CHUNK_ROWS", 3)
    rows = [(f"name {i}",) for i in range(20)] + [("bad\x00",)] + [(f"n {i}",) for i in range(5)]
    path = make_db("CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT);"
                   "CREATE TABLE u (id INTEGER PRIMARY KEY, n INTEGER);"
                   "INSERT INTO u (n) VALUES (1), (2);",
                   {"INSERT INTO t (s) VALUES (?)": rows})
    with pytest.raises(MigrationFailed, match="nothing was written") as err:
        run(path, pg_db)
    assert [(b.table, b.key) for b in err.value.report.bad_rows] == [("t", "rowid=21")]
    assert tables(pg_db) == []


def _sigint_default() -> None:
    """A run started from a background job inherits SIGINT ignored (POSIX, no job control)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_removes_its_spill_files_and_writes_nothing(
        roster1: Path, pg_db: str, tmp_path: Path, signum: int) -> None:
    spill_root = tmp_path / "tmp"
    spill_root.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "invoke", "db.migrate-from-sqlite", f"--sqlite={roster1}",
         f"--target-url={pg_db}", "--jobs=2"], cwd=ROOT,
        env={**os.environ, "TMPDIR": str(spill_root)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        preexec_fn=_sigint_default)
    try:
        deadline = time.monotonic() + 60
        while not any(spill_root.glob(f"{PREFIX}*/*.copy")):
            assert proc.poll() is None and time.monotonic() < deadline, "no spill file appeared"
            time.sleep(0.02)
        os.killpg(proc.pid, signum)
        out = proc.communicate(timeout=60)[0].decode()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, out
    assert list(spill_root.iterdir()) == [], out
    assert tables(pg_db) == []
