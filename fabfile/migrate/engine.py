"""Orchestration: preflight, schema, copy + indexes + keys + verification, report.

`migrate(sqlite_path, target_url, options)` is the one entry point a task needs: the `--env`
mode supplies a local snapshot path and the environment's target URL; cutover calls it the
same way and reads the returned report.
"""

# ruff: noqa: S608 - SQL text here is built from quoted identifiers, never from values

from __future__ import annotations

import base64
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import psycopg

from fabfile.errors import UserError

from . import aside, ddl, fingerprint, target
from .chunks import CopyChunk
from .copy import CopyResult
from .identifiers import quote_ident, quote_literal
from .plan import NOCASE_COLLATION, Note, PlanTable, SchemaPlan, build_plan
from .preflight import BadRow
from .report import MigrationReport, RunUI, TableReport, redact_url
from .spill import Spill, Spilled
from .sqlite_schema import SourceSchema, open_readonly, qi, read_schema
from .verify import TableVerdict
from .workers import Pool, Task, TaskFailed, connect_target

SCHEMA_MODES = ("infer", "existing")
ALEMBIC_VERSION = "alembic_version"
VERIFY_MODES = ("counts", "checksums")
BAD_ROW_MODES = ("fail", "quarantine")


@dataclass(frozen=True)
class MigrateOptions:
    jobs: int = field(default_factory=lambda: os.cpu_count() or 2)
    schema: str = "infer"
    drop_existing: bool = False
    verify: str = "checksums"
    on_bad_rows: str = "fail"
    utc_timestamps: bool = False
    dry_run: bool = False

    def __post_init__(self) -> None:
        if self.schema not in SCHEMA_MODES:
            raise UserError(f"--schema must be one of {', '.join(SCHEMA_MODES)}, "
                            f"not {self.schema!r}")
        if self.verify not in VERIFY_MODES:
            raise UserError(f"--verify must be one of {', '.join(VERIFY_MODES)}, "
                            f"not {self.verify!r}")
        if self.on_bad_rows not in BAD_ROW_MODES:
            raise UserError(f"--on-bad-rows must be one of {', '.join(BAD_ROW_MODES)}, "
                            f"not {self.on_bad_rows!r}")
        if not 1 <= self.jobs <= 64:
            raise UserError(f"--jobs must be between 1 and 64, not {self.jobs}")


class MigrationFailed(UserError):
    """The run stopped; the target was left as it was (or empty). The report says why."""

    def __init__(self, message: str, report: MigrationReport, code: int = 1) -> None:
        super().__init__(message, code=code)
        self.report = report


Keys = dict[str, list[tuple[Any, ...]]]


def _read_source(path: Path) -> SourceSchema:
    conn = open_readonly(path)
    try:
        return read_schema(conn)
    finally:
        conn.close()


def _fingerprint(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


@contextmanager
def _phase(report: MigrationReport, name: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        report.phases[name] = round(time.perf_counter() - start, 3)


@dataclass
class Reuse:
    """A rehearsal's preflight, kept for the real run on a later snapshot of the same file.

    Pass one to a dry run: its scans render their COPY text into SPILL (which the caller owns
    and closes) and each table is kept with its plan and its fingerprint (`fingerprint`).
    Pass it again to the real run: a table whose plan and fingerprint are unchanged is not
    scanned again; its kept text, hashed as the first scan hashed it, is what the copy sends
    and what verification compares the target with. Only runs that stop at the first bad
    row reuse (a rehearsal that passed found none in what it kept)."""

    spill: Spill
    kept: dict[str, tuple[PlanTable, str, Spilled]] = field(default_factory=dict)
    reused: list[str] = field(default_factory=list)
    """The tables the real run took from the rehearsal."""


def migrate(sqlite_path: Path, target_url: str, options: MigrateOptions | None = None,
            ui: RunUI | None = None, reuse: Reuse | None = None) -> MigrationReport:
    """Move the SQLite database at SQLITE_PATH into TARGET_URL; raise MigrationFailed if not.

    The source is opened read-only and checked unchanged at the end; on any failure the
    objects this run created are dropped again (tables filled in `existing` mode are
    truncated), so a re-run starts from the same place. REUSE: see `Reuse`.
    """
    options = options or MigrateOptions()
    ui = ui or RunUI()
    start = time.perf_counter()
    report = MigrationReport(str(sqlite_path), redact_url(target_url), asdict(options))
    before = _fingerprint(sqlite_path) if sqlite_path.exists() else None
    with _phase(report, "schema read"):
        schema = _read_source(sqlite_path)
        plan = build_plan(schema, utc_timestamps=options.utc_timestamps)
        if plan.blockers and options.schema == "infer":
            raise UserError("PostgreSQL cannot hold this SQLite schema as it is (nothing was "
                            "written):\n  " + "\n  ".join(plan.blockers) + "\nRename these in "
                            "the SQLite database (the app's own migrations), then run again")
        conn = target.connect(target_url)
        filled: list[str] = []
        try:
            if options.schema == "existing":
                _restore_recorded(conn, report, dry_run=options.dry_run)
                plan, filled = target.plan_existing(plan, conn)
            else:
                plan = target.check_defaults(conn, plan)
            existing = target.relations(conn)
        finally:
            conn.close()
    quarantine = options.on_bad_rows == "quarantine"
    if options.schema == "infer":
        clash = target.clashes(plan, existing, quarantine=quarantine)
        if clash and not options.drop_existing:
            raise UserError(f"the target already holds {', '.join(clash[:8])}"
                            f"{' ...' if len(clash) > 8 else ''}: pass --drop-existing to replace "
                            "them, or migrate into an empty database")
    elif quarantine and target.QUARANTINE in existing and not options.dry_run:
        raise UserError(f"the target already holds {target.QUARANTINE}: drop it first")
    report.notes.extend(plan.notes)
    report.renames = dict(plan.renames)
    ui.step(f"Source {sqlite_path}: {len(plan.tables)} tables, "
            f"{sum(t.row_count for t in plan.tables):,} rows; target {report.target}")
    if options.on_bad_rows != "fail":
        reuse = None
    spill = reuse.spill if reuse else None if options.dry_run else _spill(ui)
    pool = Pool(min(options.jobs, max(1, len(plan.tables))), sqlite_path, target_url, spill)
    created: dict[str, Any] = {"tables": [], "views": [], "collation": None, "filled": [],
                               "aside": []}
    previous_sigterm = _sigterm_as_interrupt()
    try:
        if filled:
            with _phase(report, "compare filled tables"):
                plan = _skip_equal(pool, plan, filled, sqlite_path, target_url, report)
        with _phase(report, "preflight"):
            ready = _reusable(reuse, plan, sqlite_path, options.dry_run)
            bad, sizes, chunks, spilled = _preflight(pool, plan, ui, ready)
            if reuse is not None and options.dry_run and not bad:
                _keep(reuse, plan, sqlite_path, spilled)
            if ready:
                report.notes.append(Note("info", "preflight", f"{len(ready)} unchanged "
                                         "table(s) kept from the rehearsal: "
                                         + ", ".join(sorted(ready))))
        skip: Keys = {}
        if bad:
            report.bad_rows = bad
            ui.bad_rows(bad, quarantined=quarantine and not options.dry_run)
            if not quarantine:
                raise MigrationFailed(
                    f"{len(bad)} value(s) cannot move unchanged; nothing was written to the "
                    "target. Fix them in the source, or pass --on-bad-rows=quarantine", report)
            with _phase(report, "quarantine closure"):
                skip = _quarantine_closure(pool, plan, bad)
        ui.notes(report.notes)
        report.statements = ddl.script(plan) if options.schema == "infer" else []
        if options.dry_run:
            ui.statements(report.statements)
            report.ok = True
            report.seconds = round(time.perf_counter() - start, 3)
            return report
        with _phase(report, "create schema"):
            plan = _create_schema(target_url, plan, options, clash_drop=options.drop_existing,
                                  quarantine=bool(skip), created=created)
        with _phase(report, "load + verify"):
            tables, verdicts = _load(pool, plan, options, skip, ui, report, created, sizes,
                                     chunks, spilled)
        report.tables = tables
        with _phase(report, "finish"):
            _finish(target_url, sqlite_path, plan, skip, bad, report, options)
            created["aside"] = []
        failed = [v for v in verdicts if not v.ok]
        report.seconds = round(time.perf_counter() - start, 3)
        if failed:
            raise MigrationFailed(
                "verification failed for " + "; ".join(f"{v.table}: {v.detail}" for v in failed) +
                ". The target was rolled back.", report)
        if before != _fingerprint(sqlite_path):
            raise MigrationFailed(f"the source {sqlite_path} changed during the run: take a "
                                  "snapshot (or stop the app) and run again. The target was "
                                  "rolled back.", report)
        report.ok = True
    except (Exception, KeyboardInterrupt) as exc:
        report.ok = False
        report.error = str(exc)
        report.seconds = round(time.perf_counter() - start, 3)
        problems = _undo(target_url, created)
        if problems:
            ui.warn("putting the target back did not fully work: " + "; ".join(problems)
                    + (f". {aside.RECORD} in the target lists the indexes and keys set aside; "
                       "the next run with --schema=existing makes them again first"
                       if created["aside"] else ""))
        if report.tables:
            ui.summary(report)
        if isinstance(exc, TaskFailed):
            raise MigrationFailed(f"{exc.task_id} failed: {exc.message}. The target was rolled "
                                  "back.", report) from None
        raise
    finally:
        pool.close()
        if spill is not None and reuse is None:
            spill.close()
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)
        if pool.timeline:
            t0 = min(t[1] for t in pool.timeline)
            report.timeline = [(n, round(a - t0, 3), round(b - t0, 3), round(c, 3))
                               for n, a, b, c in pool.timeline]
        after = _fingerprint(sqlite_path) if sqlite_path.exists() else None
        report.source_unchanged = before == after
    ui.summary(report)
    return report


def _spill(ui: RunUI) -> Spill | None:
    try:
        return Spill()
    except OSError as exc:
        ui.warn(f"no spill directory ({exc}): the copy reads the source a second time")
        return None


def _sigterm_as_interrupt() -> Any:
    """SIGTERM unwinds the run like Ctrl-C (the target rolled back, the spill files removed);
    the previous handler, to put back (None off the main thread, where nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    return signal.signal(signal.SIGTERM, interrupt)


def _reusable(reuse: Reuse | None, plan: SchemaPlan, sqlite_path: Path,
              dry_run: bool) -> dict[str, Spilled]:
    """The tables a real run takes from the rehearsal (`Reuse`): same plan, same pages, the
    text still on disk. The other kept texts are removed (their tables are scanned again)."""
    if reuse is None or dry_run or not reuse.kept:
        return {}
    now = fingerprint.tables(sqlite_path)
    planned = {t.source: t for t in plan.tables}
    ready: dict[str, Spilled] = {}
    for source, (kept_table, pages, spilled) in reuse.kept.items():
        same = planned.get(source) == kept_table and now.get(source) == pages
        if same and spilled.path.exists():
            ready[source] = spilled
        else:
            reuse.spill.discard(spilled)
    reuse.kept = {}
    reuse.reused = sorted(ready)
    return ready


def _keep(reuse: Reuse, plan: SchemaPlan, sqlite_path: Path,
          spilled: dict[str, Spilled]) -> None:
    pages = fingerprint.tables(sqlite_path)
    for t in plan.tables:
        if t.source in spilled and t.source in pages:
            reuse.kept[t.source] = (t, pages[t.source], spilled[t.source])
        elif t.source in spilled:
            reuse.spill.discard(spilled[t.source])


def _preflight(pool: Pool, plan: SchemaPlan, ui: RunUI,
               ready: dict[str, Spilled] | None = None,
               ) -> tuple[list[BadRow], dict[str, int], dict[str, list[CopyChunk]],
                          dict[str, Spilled]]:
    """Bad rows of every table and orphans of every foreign key; the tables' sizes on disk,
    which the load uses to schedule its tasks; the chunks each table's copy can read, or
    the COPY text the scan rendered into the pool's spill directory. READY: tables not
    scanned again, with the text an earlier scan rendered (`Reuse`)."""
    ready = ready or {}
    ui.step(f"Preflight: checking {sum(t.row_count for t in plan.tables):,} rows and "
            f"{len(plan.foreign_keys)} foreign keys"
            + (f" ({len(ready)} unchanged table(s) checked by the rehearsal)" if ready else ""))
    graph = [Task(f"scan:{t.source}", "scan", {"t": t}, priority=t.row_count * len(t.columns))
             for t in plan.tables if t.source not in ready]
    graph.append(Task("sizes", "sizes", {}, priority=0))
    for fk in plan.foreign_keys:
        graph.append(Task(f"orphans:{fk.name}", "orphans",
                          {"child": plan.table(fk.source_table),
                           "parent": plan.table(fk.source_parent), "fk": fk},
                          priority=plan.table(fk.source_table).row_count))
    with ui.bars([(t.source, t.row_count) for t in plan.tables
                  if t.source not in ready]) as update:
        results = pool.run(graph, progress=update)
    bad: list[BadRow] = []
    chunks: dict[str, list[CopyChunk]] = {}
    spilled: dict[str, Spilled] = dict(ready)
    for task in graph:
        if task.kind == "scan":
            result = results[task.id]
            bad.extend(result["bad"])
            if result["chunks"]:
                chunks[task.kwargs["t"].source] = result["chunks"]
            if result["spilled"]:
                spilled[task.kwargs["t"].source] = result["spilled"]
        elif task.kind != "sizes":
            bad.extend(results[task.id])
    return bad, results["sizes"], chunks, spilled


def _key(b: BadRow) -> tuple[Any, ...]:
    return (b.rowid,) if b.pk is None else tuple(b.pk)


def _quarantine_closure(pool: Pool, plan: SchemaPlan, bad: list[BadRow]) -> Keys:
    """Bad rows plus, repeatedly, the children left orphaned by quarantining their parents."""
    skip: dict[str, set[tuple[Any, ...]]] = {}
    for b in bad:
        skip.setdefault(b.table, set()).add(_key(b))
    changed = True
    while changed:
        changed = False
        graph = [Task(f"orphans:{fk.name}", "orphans",
                      {"child": plan.table(fk.source_table), "parent": plan.table(fk.source_parent),
                       "fk": fk, "excluded_parent": sorted(skip[fk.source_parent], key=repr)})
                 for fk in plan.foreign_keys if skip.get(fk.source_parent)]
        if not graph:
            break
        for rows in pool.run(graph).values():
            for b in rows:
                k = _key(b)
                if k not in skip.setdefault(b.table, set()):
                    skip[b.table].add(k)
                    bad.append(BadRow(b.table, b.key, b.column,
                                      b.reason.replace("orphaned", "orphaned by quarantine:", 1),
                                      b.excerpt, b.rowid, b.pk))
                    changed = True
    return {t: sorted(v, key=repr) for t, v in skip.items()}


def _create_schema(url: str, plan: SchemaPlan, options: MigrateOptions, *, clash_drop: bool,
                   quarantine: bool, created: dict[str, Any]) -> SchemaPlan:
    """All DDL before the data, in one transaction: it happens entirely or not at all. In
    `existing` mode, the target's own indexes and foreign keys are set aside (`aside`) and the
    copies wait only for the parents of the keys left in place: the plan returned says so."""
    conn = target.connect(url)
    set_aside: list[aside.Aside] = []
    try:
        with conn.cursor() as cur:
            cur.execute("SET standard_conforming_strings = on")
            if options.schema == "existing":
                set_aside = aside.set_aside(cur, [t.name for t in plan.tables])
                left = target.key_pairs(cur)
                name_of = {t.source: t.name for t in plan.tables}
                plan = replace(plan, load_after=tuple(
                    (c, p) for c, p in plan.load_after if (name_of[c], name_of[p]) in left))
            if options.schema == "infer":
                if clash_drop:
                    existing = target.relations(conn)
                    for v in plan.views:
                        if existing.get(v.name) == "v":
                            cur.execute(f"DROP VIEW {quote_ident(v.name)} CASCADE")
                    for name in [t.name for t in plan.tables] + [target.QUARANTINE]:
                        if existing.get(name) in ("r", "p"):
                            cur.execute(ddl.drop_table(name))
                    for ix in plan.indexes:
                        if existing.get(ix.name) == "i":
                            cur.execute(f"DROP INDEX IF EXISTS {quote_ident(ix.name)} CASCADE")
                if plan.uses_nocase:
                    had = cur.execute("SELECT 1 FROM pg_collation WHERE collname = %s",
                                      (NOCASE_COLLATION,)).fetchone()
                    cur.execute(ddl.create_collation())
                    if not had:
                        created["collation"] = NOCASE_COLLATION
                for t in plan.tables:
                    cur.execute(ddl.create_table(t))
                created["tables"] = [t.name for t in plan.tables]
            if quarantine:
                cur.execute(
                    f"CREATE TABLE {quote_ident(target.QUARANTINE)} (id bigint GENERATED ALWAYS AS "
                    "IDENTITY PRIMARY KEY, table_name text NOT NULL, row_key text NOT NULL, "
                    "reasons text NOT NULL, row_data jsonb NOT NULL, "
                    "quarantined_at timestamptz NOT NULL DEFAULT now())")
                created["tables"] = [*created["tables"], target.QUARANTINE]
        conn.commit()
    except psycopg.Error as exc:
        conn.rollback()
        created.update(tables=[], collation=None)
        raise UserError(f"creating the schema failed (nothing was changed): {exc}") from None
    finally:
        conn.close()
    if options.schema == "existing":
        created["filled"] = [t.name for t in plan.tables]
        created["aside"] = set_aside
    return plan


def _undo(url: str, created: dict[str, Any]) -> list[str]:
    """Put the target back as the run found it; what could not be (the set-aside objects
    that failed to come back)."""
    if not (created["tables"] or created["views"] or created["collation"] or created["filled"]
            or created["aside"]):
        return []
    try:
        conn = target.connect(url)
    except UserError:
        return [f"cannot connect to put back {len(created['aside'])} index(es) and key(s)"
                ] if created["aside"] else []
    problems: list[str] = []
    try:
        if created["filled"]:
            try:
                target.truncate(conn, created["filled"])
            except psycopg.Error as exc:
                conn.rollback()
                problems.append("emptying the tables it filled: "
                                + str(exc).strip().splitlines()[0])
        if created["aside"]:
            problems += aside.restore(conn, created["aside"])
        target.drop_created(conn, tables=created["tables"], views=created["views"],
                            collation=created["collation"])
    finally:
        conn.close()
    return problems


def _restore_recorded(conn: psycopg.Connection, report: MigrationReport, *,
                      dry_run: bool) -> None:
    """Put back what a run that died had set aside (its record in the target), before this
    run reads the target's schema; a dry run, which writes nothing, says so instead."""
    found = aside.recorded(conn)
    if not found:
        return
    names = ", ".join(f"{a.kind} {a.name}" for a in found)
    if dry_run:
        raise UserError(f"a run that died had set aside the target's {names} ({aside.RECORD} "
                        "lists them): run `inv db.migrate-from-sqlite --schema=existing` once "
                        "without --dry-run, which makes them again first")
    problems = aside.restore(conn, found)
    if problems:
        raise UserError(f"a run that died had set aside the target's {names}; making them "
                        "again failed: " + "; ".join(problems) + f". {aside.RECORD} in the "
                        "target lists their definitions")
    report.notes.append(Note("warn", "target", f"a run that died had set aside {names}: "
                             "made again"))


def _setval_sql(t: PlanTable) -> str:
    col = quote_ident(t.identity or "")
    tbl = quote_ident(t.name)
    mx = f"(SELECT max({col}) FROM {tbl})"
    return (f"SELECT setval(pg_get_serial_sequence({quote_literal(tbl)}, "
            f"{quote_literal(t.identity or '')}), GREATEST({mx}, {t.identity_floor}, 1), "
            f"{mx} IS NOT NULL OR {t.identity_floor} > 0)")


def _load(pool: Pool, plan: SchemaPlan, options: MigrateOptions, skip: Keys, ui: RunUI,
          report: MigrationReport, created: dict[str, Any], sizes: dict[str, int],
          chunks: dict[str, list[CopyChunk]],
          spilled: dict[str, Spilled]) -> tuple[list[TableReport], list[TableVerdict]]:
    """Copy every table (from its spill file when it has one), then (per table, as soon as it
    can) verify, index, key and check it."""
    # Rough seconds of work per task, from rows and bytes on disk; the scheduler runs the
    # longest remaining chain first.
    size = {t.source: t.row_count / 400_000 + sizes.get(t.source, 0) / 60e6 for t in plan.tables}
    reports = {t.source: TableReport(t.source, t.name) for t in plan.tables}
    verdicts: list[TableVerdict] = []
    graph: list[Task] = []
    by_name = {t.name: t for t in plan.tables}
    soft_failures: list[tuple[str, str]] = []

    def copied(t: PlanTable) -> Any:
        def done(result: CopyResult) -> None:
            r = reports[t.source]
            r.rows, r.bytes, r.seconds = result.rows, result.bytes, result.seconds
            r.checksum = result.checksum.to_json()
            r.quarantined = len(skip.get(t.source, []))
            verify_task = next(x for x in graph if x.id == f"verify:{t.source}")
            verify_task.kwargs["checksum"] = result.checksum
        return done

    def verified(t: PlanTable) -> Any:
        def done(result: tuple[TableVerdict, float]) -> None:
            verdict, _secs = result
            verdicts.append(verdict)
            r = reports[t.source]
            r.verification = f"{verdict.mode} " + ("ok" if verdict.ok else "FAILED")
            r.detail = verdict.detail
        return done

    def soft(label: str) -> Any:
        def done(result: dict[str, Any]) -> None:
            if not result["ok"]:
                soft_failures.append((label, result["error"]))
        return done

    existing_mode = options.schema == "existing"
    for t in plan.tables:
        deps: set[str] = set()
        if existing_mode:
            deps = {f"copy:{parent}" for child, parent in plan.load_after
                    if child == t.source and not _reaches(plan.load_after, parent, t.source)}
        graph.append(Task(f"copy:{t.source}", "copy",
                          {"t": t, "excluded": skip.get(t.source), "chunks": chunks.get(t.source),
                           "spilled": spilled.get(t.source), "freeze": not existing_mode},
                          deps=deps, priority=size[t.source], on_done=copied(t)))
        graph.append(Task(f"verify:{t.source}", "verify",
                          {"t": t, "checksum": None, "mode": options.verify,
                           "excluded": skip.get(t.source), "in_order": not existing_mode},
                          deps={f"copy:{t.source}"}, priority=size[t.source] * 0.25,
                          on_done=verified(t)))
        if t.identity:
            graph.append(Task(f"identity:{t.source}", "sql", {"statements": [_setval_sql(t)]},
                              deps={f"copy:{t.source}"}, priority=0.001))
    table_work: dict[str, set[str]] = {t.name: {f"verify:{t.source}"} for t in plan.tables}
    for ix in plan.indexes:
        t = by_name[ix.table]
        soft_ix = ix.raw_sql is not None or ix.where is not None
        graph.append(Task(f"index:{ix.name}", "sql",
                          {"statements": [ddl.create_index(ix)], "soft": soft_ix},
                          deps={f"copy:{t.source}"},
                          priority=t.row_count / 2e6 * max(1, len(ix.columns)),
                          on_done=soft(f"index {ix.name}") if soft_ix else None))
        table_work[ix.table].add(f"index:{ix.name}")
    for ix in plan.indexes:
        attach = ddl.attach_constraint(ix)
        if attach:
            graph.append(Task(f"attach:{ix.name}", "sql", {"statements": [attach]},
                              deps=set(table_work[ix.table]), priority=0.001))
    ready_tables = {name: set(work) | {f"attach:{ix.name}" for ix in plan.indexes
                                       if ix.table == name and ddl.attach_constraint(ix)}
                    for name, work in table_work.items()}
    # Foreign keys that share a table (as child or parent) run one after the other, in plan
    # order, so their locks can never wait on each other in a cycle; the rest run in parallel.
    previous: dict[str, str] = {}
    for fk in plan.foreign_keys:
        deps = ready_tables[fk.table] | ready_tables[fk.parent]
        deps |= {previous[n] for n in (fk.table, fk.parent) if n in previous}
        graph.append(Task(f"fk:{fk.name}", "sql",
                          {"statements": [ddl.add_foreign_key(fk),
                                          ddl.validate_constraint(fk.table, fk.name)]},
                          deps=deps, priority=plan.table(fk.source_table).row_count / 3e6))
        previous[fk.table] = previous[fk.parent] = f"fk:{fk.name}"
    _made_again(graph, plan, created["aside"], previous)
    for ck in plan.checks:
        t = by_name[ck.table]
        deps = set(ready_tables[ck.table])
        if ck.table in previous:
            deps.add(previous[ck.table])
        graph.append(Task(f"check:{ck.name}", "sql",
                          {"statements": [ddl.add_check(ck, not_valid=True),
                                          ddl.validate_constraint(ck.table, ck.name)],
                           "soft": True},
                          deps=deps, priority=t.row_count / 3e6,
                          on_done=soft(f"CHECK {ck.name}")))
        previous[ck.table] = f"check:{ck.name}"
    ui.step(f"Copying {len(plan.tables)} tables with {pool.jobs} workers"
            + ("" if existing_mode else "; indexes, keys and verification as each table lands"))
    bars = [(t.source, t.row_count - len(skip.get(t.source, []))) for t in plan.tables]
    with ui.bars(bars) as update:
        pool.run(graph, progress=update)
    for label, error in soft_failures:
        report.notes.append(Note("warn", label, f"not kept: {error}"))
    order = {t.source: i for i, t in enumerate(plan.tables)}
    return sorted(reports.values(), key=lambda r: order[r.table]), verdicts


def _made_again(graph: list[Task], plan: SchemaPlan, found: list[aside.Aside],
                previous: dict[str, str]) -> None:
    """Tasks making the set-aside indexes and keys again (`existing` mode): an index once its
    table is in, a key once both its tables and their indexes are, keys sharing a table one
    after the other (as `_load` orders its own)."""
    source_of = {t.name: t for t in plan.tables}
    made: dict[str, set[str]] = {}
    for a in found:
        if a.kind == "index":
            t = source_of[a.table]
            graph.append(Task(f"index:{a.name}", "sql", {"statements": a.statements()},
                              deps={f"copy:{t.source}"}, priority=t.row_count / 2e6))
            made.setdefault(a.table, set()).add(f"index:{a.name}")
    for a in found:
        if a.kind != "key":
            continue
        deps: set[str] = set()
        for name in (a.table, a.parent or ""):
            if name in source_of:
                deps |= {f"copy:{source_of[name].source}"} | made.get(name, set())
            if name in previous:
                deps.add(previous[name])
        graph.append(Task(f"fk:{a.name}", "sql", {"statements": a.statements()}, deps=deps,
                          priority=source_of[a.table].row_count / 3e6))
        previous[a.table] = f"fk:{a.name}"
        if a.parent:
            previous[a.parent] = f"fk:{a.name}"


def _reaches(edges: tuple[tuple[str, str], ...], start: str, goal: str) -> bool:
    """Whether GOAL is reachable from START along EDGES (child -> parent)."""
    seen: set[str] = set()
    stack = [start]
    while stack:
        cur = stack.pop()
        if cur == goal:
            return True
        if cur in seen:
            continue
        seen.add(cur)
        stack.extend(parent for child, parent in edges if child == cur)
    return False


def _skip_equal(pool: Pool, plan: SchemaPlan, filled: list[str], sqlite_path: Path,
                url: str, report: MigrationReport) -> SchemaPlan:
    """`existing` mode: FILLED tables already hold rows in the target. Those whose rows equal
    the source's (checksums) are left as they are and out of the plan, with a note; any other
    refuses the run before anything is written (target data is never deleted)."""
    tables = [plan.table(name) for name in filled]
    sums = pool.run([Task(f"sum:{t.source}", "source_checksum", {"t": t}, priority=t.row_count)
                     for t in tables])
    checked = pool.run([Task(f"verify:{t.source}", "verify",
                             {"t": t, "checksum": sums[f"sum:{t.source}"], "mode": "checksums"},
                             priority=t.row_count) for t in tables])
    differ: list[str] = []
    for t in tables:
        verdict, _secs = checked[f"verify:{t.source}"]
        if not verdict.ok:
            differ.append(_difference(t, verdict, sqlite_path, url))
            continue
        report.notes.append(Note("info", f"table {t.source}", f"already in the target with the "
                                 f"same {verdict.target_rows} row(s): left as it is, not copied"))
    if differ:
        alembic = any(t.name == ALEMBIC_VERSION for t in tables)
        raise UserError(
            "the target already holds rows that differ from the source's (nothing was "
            "written):\n  " + "\n  ".join(differ) + "\n"
            + ("Make both the same Alembic revision: migrate the SQLite database with the "
               "release whose migrations made the target, or make the target with the "
               "release the SQLite database is at; then run again" if alembic else
               "--schema=existing fills empty tables only: start from a fresh database made "
               "by the app's migrations (or empty these tables yourself), then run again"))
    skip = set(filled)
    return replace(plan, tables=tuple(t for t in plan.tables if t.source not in skip),
                   load_after=tuple((c, p) for c, p in plan.load_after
                                    if c not in skip and p not in skip))



def _difference(t: PlanTable, verdict: TableVerdict, sqlite_path: Path, url: str) -> str:
    """One line on how T differs; for Alembic's table, the revisions on each side."""
    column = next((c.source for c in t.columns if c.name == "version_num"), None)
    if t.name != ALEMBIC_VERSION or column is None:
        return f"table {t.name}: {verdict.detail}"
    src = open_readonly(sqlite_path)
    try:
        ours = sorted(str(r[0]) for r in src.execute(f"SELECT {qi(column)} FROM {qi(t.source)}"))
    finally:
        src.close()
    conn = connect_target(url)
    try:
        theirs = sorted(str(r[0]) for r in conn.execute(
            f"SELECT version_num FROM {quote_ident(t.name)}").fetchall())
    finally:
        conn.close()
    return (f"{t.name}: the target is at revision {', '.join(theirs) or '(none)'}, the SQLite "
            f"database at {', '.join(ours) or '(none)'}")


def _finish(url: str, sqlite_path: Path, plan: SchemaPlan, skip: Keys, bad: list[BadRow],
            report: MigrationReport, options: MigrateOptions) -> None:
    """Views (kept when PostgreSQL accepts their SQL) and the quarantined rows; in `existing`
    mode, the record of what was set aside goes (everything is back by now)."""
    conn = connect_target(url)
    try:
        if options.schema == "infer":
            with conn.cursor() as cur:
                for t in plan.tables:
                    cur.execute(ddl.enable_autovacuum(t))
            conn.commit()
        else:
            aside.drop_record(conn)
        for v in plan.views:
            try:
                with conn.transaction():
                    conn.execute(ddl.create_view(v.name, v.sql))
                report.notes.append(Note("info", f"view {v.source}", "recreated"))
            except psycopg.Error as exc:
                report.notes.append(Note("warn", f"view {v.source}", "not recreated: PostgreSQL "
                                          f"refused its SQL ({str(exc).strip().splitlines()[0]}). "
                                          f"Its SQL: {v.sql}"))
        if skip:
            _write_quarantine(conn, sqlite_path, plan, bad)
        conn.commit()
    finally:
        conn.close()


def _jsonable(v: Any) -> Any:
    if isinstance(v, bytes):
        try:
            text = v.decode("utf-8")
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(v).decode()}
        v = text
    if isinstance(v, str) and "\x00" in v:
        return {"base64": base64.b64encode(v.encode()).decode()}
    if isinstance(v, float) and v != v:
        return None
    return v


def _write_quarantine(conn: psycopg.Connection, sqlite_path: Path, plan: SchemaPlan,
                      bad: list[BadRow]) -> None:
    src = open_readonly(sqlite_path)
    src.text_factory = bytes
    try:
        grouped: dict[tuple[str, str], list[BadRow]] = {}
        for b in bad:
            grouped.setdefault((b.table, b.key), []).append(b)
        rows = []
        for (table, key), items in grouped.items():
            first = items[0]
            t = plan.table(table)
            if first.pk is None:
                got = src.execute(f"SELECT * FROM {qi(table)} WHERE rowid = ?", (first.rowid,))
            else:
                keycols = [c.source for c in t.columns if c.name in t.primary_key]
                where = " AND ".join(f"{qi(c)} IS ?" for c in keycols)
                got = src.execute(f"SELECT * FROM {qi(table)} WHERE {where}", tuple(first.pk))
            names = [d[0] for d in got.description]
            values = got.fetchone() or ()
            data = {n: _jsonable(v) for n, v in zip(names, values, strict=False)}
            reasons = "; ".join(f"{b.column}: {b.reason}" for b in items)
            rows.append((table, key, reasons, json.dumps(data)))
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {quote_ident(target.QUARANTINE)} (table_name, row_key, reasons, "
                "row_data) VALUES (%s, %s, %s, %s::jsonb)", rows)
    finally:
        src.close()


def verify(sqlite_path: Path, target_url: str, *, jobs: int | None = None,
           mode: str = "checksums", utc_timestamps: bool = False,
           ui: RunUI | None = None) -> MigrationReport:
    """Compare the target with the source (counts or checksums) without changing either."""
    ui = ui or RunUI()
    options = MigrateOptions(jobs=jobs or os.cpu_count() or 2, schema="existing", verify=mode,
                             utc_timestamps=utc_timestamps)
    start = time.perf_counter()
    report = MigrationReport(str(sqlite_path), redact_url(target_url), asdict(options))
    schema = _read_source(sqlite_path)
    plan = build_plan(schema, utc_timestamps=utc_timestamps)
    conn = target.connect(target_url)
    try:
        missing = [t.name for t in plan.tables if t.name not in target.relations(conn)]
        if missing:
            raise UserError(f"the target lacks table(s) {', '.join(missing)}: nothing to verify")
        if quarantined := _quarantined_keys(conn, plan):
            ui.warn(f"{sum(map(len, quarantined.values()))} quarantined row(s) are left out "
                    "of the comparison")
    finally:
        conn.close()
    ui.step(f"Verifying {len(plan.tables)} tables ({mode})")
    pool = Pool(min(options.jobs, max(1, len(plan.tables))), sqlite_path, target_url)
    reports = {t.source: TableReport(t.source, t.name) for t in plan.tables}
    verdicts: list[TableVerdict] = []
    try:
        sums = pool.run([Task(f"sum:{t.source}", "source_checksum",
                              {"t": t, "excluded": quarantined.get(t.source)},
                              priority=t.row_count) for t in plan.tables])
        checked = pool.run([Task(f"verify:{t.source}", "verify",
                                 {"t": t, "checksum": sums[f"sum:{t.source}"], "mode": mode,
                                  "excluded": quarantined.get(t.source)},
                                 priority=t.row_count) for t in plan.tables])
    except TaskFailed as exc:
        raise UserError(f"verification could not run: {exc}") from None
    finally:
        pool.close()
    for t in plan.tables:
        verdict, secs = checked[f"verify:{t.source}"]
        verdicts.append(verdict)
        r = reports[t.source]
        r.rows, r.seconds = verdict.target_rows, secs
        r.verification = f"{verdict.mode} " + ("ok" if verdict.ok else "FAILED")
        r.detail = verdict.detail
        r.checksum = sums[f"sum:{t.source}"].to_json()
    report.tables = list(reports.values())
    report.seconds = round(time.perf_counter() - start, 3)
    report.ok = all(v.ok for v in verdicts)
    ui.summary(report)
    if not report.ok:
        raise MigrationFailed("verification failed for " + ", ".join(
            v.table for v in verdicts if not v.ok), report)
    return report


def _quarantined_keys(conn: psycopg.Connection, plan: SchemaPlan) -> Keys:
    if target.QUARANTINE not in target.relations(conn):
        return {}
    out: Keys = {}
    rows = conn.execute(
        f"SELECT table_name, row_key FROM {quote_ident(target.QUARANTINE)}").fetchall()
    conn.rollback()
    for table, key in rows:
        if str(key).startswith("rowid="):
            out.setdefault(str(table), []).append((int(str(key)[6:]),))
    return out
