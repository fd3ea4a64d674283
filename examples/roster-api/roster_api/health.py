"""`GET /health` as the rolling deploy needs it: fast, bounded, and honest about why not.

200 when no drain file exists and the database answers `SELECT 1` within
`HEALTH_DB_TIMEOUT`; otherwise 503 naming the failing part ("draining" or "database").
A probe that hangs (a database that accepts connections but never answers) is not started
again while it runs: later checks wait on the same probe, so a stuck database cannot pile
up threads.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool


@dataclass(frozen=True)
class HealthReport:
    status_code: int
    body: dict[str, Any]


class HealthCheck:
    def __init__(self, engine: Engine, *, drain_file: str, db_timeout: float) -> None:
        self._engine = engine
        self._drain_file = drain_file
        self._db_timeout = db_timeout
        self._probe: asyncio.Task[None] | None = None

    async def report(self) -> HealthReport:
        if os.path.exists(self._drain_file):
            return _failing("draining", f"the drain file {self._drain_file} exists: this "
                            "container is being replaced")
        problem = await self._database_problem()
        if problem:
            return _failing("database", problem)
        return HealthReport(200, {"status": "ok", "database": "ok"})

    async def _database_problem(self) -> str | None:
        if self._probe is None or self._probe.done():
            self._probe = asyncio.ensure_future(run_in_threadpool(self._select_one))
            self._probe.add_done_callback(_retrieve)
        try:
            await asyncio.wait_for(asyncio.shield(self._probe), self._db_timeout)
        except TimeoutError:
            return f"no answer to SELECT 1 within {self._db_timeout:g} s"
        except Exception as exc:  # any driver error means: not healthy
            lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            return lines[0] if lines else type(exc).__name__
        return None

    def _select_one(self) -> None:
        with self._engine.connect() as connection:
            connection.execute(sa.text("SELECT 1")).scalar_one()


def _failing(part: str, detail: str) -> HealthReport:
    return HealthReport(503, {"status": "unavailable", "failing": part, "detail": detail})


def _retrieve(task: asyncio.Task[None]) -> None:
    """Mark a failed probe's exception as seen, also when every waiter timed out."""
    if not task.cancelled():
        task.exception()
