"""Worker processes and a small dependency scheduler.

Each worker holds one read-only SQLite connection and one PostgreSQL connection and runs
tasks by name (`HANDLERS`). Processes, not threads: rendering rows is Python work and the
GIL would serialise it. The parent keeps the dependency graph and hands a worker the most
valuable ready task whenever one is free; workers report progress and results on a queue.
"""

# ruff: noqa: S608 - SQL text here is built from quoted identifiers, never from values

from __future__ import annotations

import multiprocessing as mp
import queue
import sqlite3
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from .chunks import CopyChunk
from .copy import LineSink, copy_spilled, copy_table
from .plan import PlanForeignKey, PlanTable
from .preflight import scan_and_render, scan_orphans, scan_table
from .render import register_functions
from .spill import Spill, Spilled
from .sqlite_schema import open_readonly
from .verify import check_count, check_table, first_difference, source_checksum

SESSION_SETTINGS = (  # see the docstring below
    "SET client_encoding = 'UTF8'",
    "SET standard_conforming_strings = on",
    "SET bytea_output = 'hex'",
    "SET DateStyle = 'ISO, YMD'",
    "SET TimeZone = 'UTC'",
    "SET IntervalStyle = 'postgres'",
    "SET extra_float_digits = 1",
    "SET synchronous_commit = off",
    "SET maintenance_work_mem = '256MB'",
    "SET client_min_messages = warning",
    "SET max_parallel_workers_per_gather = 0",
    "SET max_parallel_maintenance_workers = 0",
    "SET enable_sort = off",
)
"""The text COPY reads and writes depends on the first seven (see `render`), so they are set
rather than assumed. synchronous_commit=off risks only the last commits on a server crash,
never consistency; verification runs after everything is committed. The workers are the
parallelism, so PostgreSQL starts no parallel workers of its own; enable_sort=off lets
verification read tables through their primary key instead of sorting them (index builds
sort regardless)."""


def open_source(path: Path) -> sqlite3.Connection:
    """The SQLite file as workers read it: read-only, with the render functions, text as bytes
    (invalid UTF-8 must reach the checks, not fail the fetch)."""
    conn = open_readonly(path)
    register_functions(conn)
    conn.text_factory = bytes
    return conn


def connect_target(url: str) -> psycopg.Connection:
    conn = psycopg.connect(url, autocommit=False)
    with conn.cursor() as cur:
        for stmt in SESSION_SETTINGS:
            cur.execute(stmt)
    conn.commit()
    return conn


@dataclass
class Context:
    """One worker's connections and its temp tables of excluded (quarantined) rows."""

    sqlite_path: Path
    target_url: str
    spill: Spill | None = None
    _src: sqlite3.Connection | None = None
    _pg: psycopg.Connection | None = None
    excluded: dict[str, str] = field(default_factory=dict)
    made: int = 0

    @property
    def src(self) -> sqlite3.Connection:
        if self._src is None:
            self._src = open_source(self.sqlite_path)
        return self._src

    @property
    def pg(self) -> psycopg.Connection:
        if self._pg is None:
            self._pg = connect_target(self.target_url)
        return self._pg

    def exclusion(self, table: str, keys: list[tuple[Any, ...]] | None) -> str | None:
        """A temp table in SQLite holding KEYS (rowids or primary keys) of TABLE to skip."""
        if not keys:
            return None
        self.made += 1
        name = f"skip_{self.made}"
        width = len(keys[0])
        cols = ", ".join(f"k{i}" for i in range(width))
        self.src.execute(f"CREATE TEMP TABLE {name} ({cols})")
        self.src.executemany(f"INSERT INTO temp.{name} VALUES ({', '.join('?' * width)})", keys)
        self.excluded[table] = name
        return name

    def close(self) -> None:
        if self._pg is not None:
            self._pg.close()
        if self._src is not None:
            self._src.close()


@dataclass
class _Reporter:
    """Posts (rows, bytes) of TABLE to the parent's progress bars, at most 5 times a second;
    `done` always gets through."""

    events: Any
    table: str
    last: float = 0.0

    def __call__(self, rows: int, nbytes: int) -> None:
        if time.perf_counter() - self.last > 0.2:
            self.done(rows, nbytes)

    def done(self, rows: int, nbytes: int) -> None:
        if self.events is not None:
            self.events.put(("progress", self.table, rows, nbytes))
        self.last = time.perf_counter()


def _scan(ctx: Context, t: PlanTable, events: Any = None) -> Any:
    """The table's bad rows; and its COPY text in a spill file (`scan_and_render`) or, without
    one, the chunks its copy can read (`scan_table`)."""
    progress = _Reporter(events, t.source)
    if ctx.spill is None:
        chunks: list[CopyChunk] = []
        bad = scan_table(ctx.src, t, chunks)
        progress.done(t.row_count, 0)
        return {"bad": bad, "chunks": chunks or None, "spilled": None}
    sink = LineSink(t.order_key is not None)
    writer = ctx.spill.writer(t.source)

    def write(data: bytes) -> bool:
        progress(sink.checksum.rows, sink.bytes)
        return writer.write(data)

    try:
        bad, kept = scan_and_render(ctx.src, t, sink, write)
        progress.done(sink.checksum.rows, sink.bytes)
    except BaseException:
        writer.abandon()
        raise
    if bad or not kept:
        writer.abandon()
    path = writer.close()
    spilled = Spilled(path, sink.finish(), sink.bytes) if path else None
    return {"bad": bad, "chunks": None, "spilled": spilled}


def _orphans(ctx: Context, child: PlanTable, parent: PlanTable, fk: PlanForeignKey,
             excluded_parent: list[tuple[Any, ...]] | None = None) -> Any:
    name = ctx.exclusion(f"orphans:{parent.source}", excluded_parent) if excluded_parent else None
    return scan_orphans(ctx.src, child, parent, fk, excluded_parent=name)


def _copy(ctx: Context, t: PlanTable, excluded: list[tuple[Any, ...]] | None = None,
          events: Any = None, chunks: list[CopyChunk] | None = None,
          spilled: Spilled | None = None, freeze: bool = False) -> Any:
    """T into the target: from its spill file when the preflight left one (then the file
    goes), else rendered from SQLite again."""
    progress = _Reporter(events, t.source)
    if spilled is not None and not excluded:
        result = copy_spilled(ctx.pg, t, spilled.path, spilled.checksum, spilled.bytes,
                              freeze=freeze, progress=progress)
        spilled.path.unlink(missing_ok=True)
    else:
        name = ctx.exclusion(t.source, excluded)
        result = copy_table(ctx.src, ctx.pg, t, excluded=name, chunks=chunks, freeze=freeze,
                            progress=progress)
    progress.done(result.rows, result.bytes)
    return result


def _sql(ctx: Context, statements: list[str], soft: bool = False) -> Any:
    """Run STATEMENTS in one transaction; with SOFT, a failure is returned, not raised."""
    start = time.perf_counter()
    try:
        with ctx.pg.cursor() as cur:
            for stmt in statements:
                cur.execute(stmt)
        ctx.pg.commit()
    except psycopg.Error as exc:
        ctx.pg.rollback()
        if not soft:
            raise
        return {"ok": False, "error": str(exc).strip().splitlines()[0],
                "seconds": time.perf_counter() - start}
    return {"ok": True, "seconds": time.perf_counter() - start}


def _verify(ctx: Context, t: PlanTable, checksum: Any, mode: str,
            excluded: list[tuple[Any, ...]] | None = None, in_order: bool = False) -> Any:
    start = time.perf_counter()
    if mode == "counts":
        verdict = check_count(ctx.pg, t, checksum.rows)
    else:
        verdict = check_table(ctx.pg, t, checksum, in_order=in_order)
        if not verdict.ok and verdict.source_rows == verdict.target_rows:
            name = ctx.excluded.get(t.source) or ctx.exclusion(t.source, excluded)
            detail = first_difference(ctx.src, ctx.pg, t, excluded=name)
            verdict = type(verdict)(verdict.table, verdict.mode, False, verdict.source_rows,
                                    verdict.target_rows, f"{verdict.detail}; {detail}")
    return verdict, time.perf_counter() - start


def _source_checksum(ctx: Context, t: PlanTable,
                     excluded: list[tuple[Any, ...]] | None = None) -> Any:
    name = ctx.exclusion(t.source, excluded)
    return source_checksum(ctx.src, t, excluded=name)


def _sizes(ctx: Context) -> dict[str, int]:
    """Bytes each table takes in the SQLite file (empty when SQLite lacks dbstat)."""
    try:
        rows = ctx.src.execute("SELECT name, pgsize FROM dbstat WHERE aggregate = TRUE").fetchall()
    except sqlite3.Error:
        return {}
    return {(n.decode() if isinstance(n, bytes) else str(n)): int(s) for n, s in rows}


HANDLERS: dict[str, Callable[..., Any]] = {
    "sizes": _sizes,
    "scan": _scan,
    "orphans": _orphans,
    "copy": _copy,
    "sql": _sql,
    "verify": _verify,
    "source_checksum": _source_checksum,
}


def _worker_main(sqlite_path: Path, target_url: str, spill: Spill | None, tasks: Any,
                 events: Any) -> None:
    ctx = Context(sqlite_path, target_url, spill)
    try:
        while True:
            item = tasks.get()
            if item is None:
                break
            task_id, kind, kwargs = item
            try:
                if kind in ("copy", "scan"):
                    kwargs = {**kwargs, "events": events}
                cpu = time.process_time()
                result = HANDLERS[kind](ctx, **kwargs)
                events.put(("done", task_id, result, time.process_time() - cpu))
            except Exception as exc:
                message = str(exc).strip() or type(exc).__name__
                if not isinstance(exc, psycopg.Error | sqlite3.Error | RuntimeError):
                    message += "\n" + traceback.format_exc()
                events.put(("error", task_id, message))
    finally:
        ctx.close()


@dataclass
class Task:
    id: str
    kind: str
    kwargs: dict[str, Any]
    deps: set[str] = field(default_factory=set)
    priority: float = 0.0
    """An estimate of the task's own cost; the scheduler ranks by cost of the chain behind."""
    on_done: Callable[[Any], None] | None = None


def _bottom_levels(tasks: dict[str, Task]) -> dict[str, float]:
    """Each task's cost plus the costliest chain of tasks waiting on it (list scheduling:
    run the longest remaining chain first)."""
    succ: dict[str, list[str]] = {t: [] for t in tasks}
    for t in tasks.values():
        for d in t.deps:
            if d in succ:
                succ[d].append(t.id)
    memo: dict[str, float] = {}

    def level(tid: str) -> float:
        if tid not in memo:
            memo[tid] = tasks[tid].priority + max((level(s) for s in succ[tid]), default=0.0)
        return memo[tid]

    return {tid: level(tid) for tid in tasks}


class TaskFailed(Exception):
    def __init__(self, task_id: str, message: str) -> None:
        super().__init__(f"{task_id}: {message}")
        self.task_id = task_id
        self.message = message


class Pool:
    """JOBS forked workers running a dependency graph of tasks; with SPILL, the preflight's
    scans render COPY text into it."""

    def __init__(self, jobs: int, sqlite_path: Path, target_url: str,
                 spill: Spill | None = None) -> None:
        ctx = mp.get_context("fork")
        self.jobs = jobs
        self.tasks: Any = ctx.SimpleQueue()
        self.events: Any = ctx.Queue()
        self.procs = [ctx.Process(target=_worker_main, daemon=True,
                                  args=(sqlite_path, target_url, spill, self.tasks, self.events))
                      for _ in range(jobs)]
        for p in self.procs:
            p.start()
        self.timeline: list[tuple[str, float, float, float]] = []
        """(task id, start, end, worker CPU seconds): where the time went."""

    def run(self, graph: Iterable[Task], *,
            progress: Callable[[str, int, int], None] | None = None,
            started: Callable[[Task], None] | None = None) -> dict[str, Any]:
        """Run every task once its deps are done; the first failure stops new work and raises."""
        pending = {t.id: t for t in graph}
        rank = _bottom_levels(pending)
        done: dict[str, Any] = {}
        running: dict[str, Task] = {}
        begun: dict[str, float] = {}
        failure: TaskFailed | None = None
        while pending or running:
            if failure is None:
                ready = sorted((t for t in pending.values() if t.deps <= done.keys()),
                               key=lambda t: -rank[t.id])
                for task in ready[:max(0, self.jobs - len(running))]:
                    del pending[task.id]
                    running[task.id] = task
                    begun[task.id] = time.perf_counter()
                    if started:
                        started(task)
                    self.tasks.put((task.id, task.kind, task.kwargs))
                if not running and pending:
                    raise RuntimeError(f"dependency cycle among tasks: {sorted(pending)[:5]}")
            elif not running:
                break
            try:
                event = self.events.get(timeout=1.0)
            except queue.Empty:
                dead = [p for p in self.procs if not p.is_alive()]
                if dead:
                    raise RuntimeError("a worker process died") from None
                continue
            if event[0] == "progress":
                if progress:
                    progress(event[1], event[2], event[3])
                continue
            task = running.pop(event[1])
            cpu = event[3] if len(event) > 3 else 0.0
            self.timeline.append((task.id, begun[task.id], time.perf_counter(), cpu))
            if event[0] == "error":
                failure = failure or TaskFailed(task.id, event[2])
                continue
            done[task.id] = event[2]
            if task.on_done:
                task.on_done(event[2])
        if failure:
            raise failure
        return done

    def close(self) -> None:
        for _ in self.procs:
            self.tasks.put(None)
        deadline = time.monotonic() + 5
        for p in self.procs:
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.terminate()
                p.join(1)
