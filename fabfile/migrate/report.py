"""What a run prints (rich) and writes (`--report=FILE.json`)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from .plan import Note
from .preflight import BadRow

SHOWN_BAD_ROWS = 50


def redact_url(url: str) -> str:
    out = re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)
    return re.sub(r"(password=)[^&\s]*", r"\1***", out)


@dataclass
class TableReport:
    table: str
    target: str
    rows: int = 0
    bytes: int = 0
    seconds: float = 0.0
    verification: str = "not run"
    detail: str = ""
    quarantined: int = 0
    checksum: dict[str, Any] = field(default_factory=dict)

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


@dataclass
class MigrationReport:
    source: str
    target: str
    options: dict[str, Any]
    ok: bool = False
    error: str = ""
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)
    tables: list[TableReport] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    bad_rows: list[BadRow] = field(default_factory=list)
    renames: dict[str, str] = field(default_factory=dict)
    statements: list[str] = field(default_factory=list)
    source_unchanged: bool | None = None
    timeline: list[tuple[str, float, float, float]] = field(default_factory=list)
    """(task, start, end, worker CPU) seconds of each worker task: where the time goes."""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for t, tr in zip(data["tables"], self.tables, strict=True):
            t["rows_per_s"] = round(tr.rows_per_s, 1)
        data["bad_rows"] = [asdict(b) | {"pk": list(b.pk) if b.pk else None} for b in self.bad_rows]
        return data

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2, default=str) + "\n")


class RunUI:
    """One line per step, progress bars while copying, tables at the end."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=False, highlight=False)

    def step(self, text: str) -> None:
        self.console.print(f"[bold cyan]•[/] {text}")

    def warn(self, text: str) -> None:
        self.console.print(f"[yellow]![/] {text}")

    @contextmanager
    def bars(self, tables: list[tuple[str, int]]) -> Iterator[Any]:
        progress = Progress(TextColumn("{task.description:<28}"), BarColumn(),
                            MofNCompleteColumn(), TimeElapsedColumn(), console=self.console,
                            transient=False, refresh_per_second=8)
        ids: dict[str, TaskID] = {}
        with progress:
            for name, total in tables:
                ids[name] = progress.add_task(name[:28], total=max(total, 1))

            def update(name: str, rows: int, _nbytes: int = 0) -> None:
                if name in ids:
                    progress.update(ids[name], completed=rows)

            yield update

    def bad_rows(self, rows: list[BadRow], *, quarantined: bool) -> None:
        title = (f"{len(rows)} bad value(s) " +
                 ("moved to _quarantine" if quarantined else "- nothing was written to the target"))
        table = Table(title=title, title_justify="left")
        for col in ("table", "row", "column", "reason", "value"):
            table.add_column(col, overflow="fold")
        for b in rows[:SHOWN_BAD_ROWS]:
            table.add_row(b.table, b.key, b.column, b.reason, b.excerpt)
        self.console.print(table)
        if len(rows) > SHOWN_BAD_ROWS:
            self.console.print(f"... and {len(rows) - SHOWN_BAD_ROWS} more (all in --report)")

    def notes(self, notes: list[Note]) -> None:
        if not notes:
            return
        table = Table(title="Schema notes", title_justify="left")
        table.add_column("", width=4)
        table.add_column("object", overflow="fold")
        table.add_column("note", overflow="fold")
        for n in notes:
            table.add_row("[yellow]warn[/]" if n.level == "warn" else "info", n.subject, n.message)
        self.console.print(table)

    def statements(self, statements: list[str]) -> None:
        self.console.print("[bold]Schema that would be created:[/]")
        for stmt in statements:
            self.console.print(stmt if stmt.startswith("--") else stmt + ";", markup=False,
                               highlight=False)

    def summary(self, report: MigrationReport) -> None:
        table = Table(title="Migration" if report.ok else "Migration FAILED", title_justify="left")
        for col, just in (("table", "left"), ("rows", "right"), ("MB", "right"),
                          ("copy s", "right"), ("rows/s", "right"), ("verification", "left")):
            table.add_column(col, justify=just)  # type: ignore[arg-type]
        total_rows = total_bytes = 0
        for t in report.tables:
            total_rows += t.rows
            total_bytes += t.bytes
            color = "green" if t.verification.endswith("ok") else "red"
            mark = f"[{color}]{t.verification}[/]"
            if t.quarantined:
                mark += f" ({t.quarantined} quarantined)"
            table.add_row(t.table, f"{t.rows:,}", f"{t.bytes / 1e6:.1f}", f"{t.seconds:.2f}",
                          f"{t.rows_per_s:,.0f}", mark)
        rate = total_rows / report.seconds if report.seconds else 0
        table.add_row("[bold]total (wall)[/]", f"{total_rows:,}", f"{total_bytes / 1e6:.1f}",
                      f"{report.seconds:.2f}", f"{rate:,.0f}", "", end_section=True)
        self.console.print(table)
        for t in report.tables:
            if t.detail:
                self.console.print(f"[red]{t.table}[/]: {t.detail}")
        if report.phases:
            phases = ", ".join(f"{k} {v:.2f}s" for k, v in report.phases.items())
            self.console.print(f"phases: {phases}")
