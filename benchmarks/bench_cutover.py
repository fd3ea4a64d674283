#!/usr/bin/env python3
"""Benchmark the maintenance window of `inv db.cutover` beside the migration's own time.

    .venv/bin/python benchmarks/bench_cutover.py [--scales 1,5] [--runs 1]

For each roster scale: the roster app (v1, two replicas) deployed on the bench roster.db
(`../shared/bench/make_roster_sqlite.py`) on a throwaway sshd host with the local Docker
Engine, behind the Traefik stand-in with a light load on its API (20 requests/s); the target
is a PostgreSQL 15 in a network namespace of its own (a managed database on another
machine, TLS, default durable settings) in a fresh database. Then:

- the cutover, as an operator runs it: `inv db.cutover --yes --schema=existing`; its window
  (what users wait through behind the maintenance page) split into its phases: draining the
  web containers, the final snapshot, the migration with its verification (and the
  engine's own phases inside it), the deploy of the app on PostgreSQL, the page's removal;
  the load confirms it: the first to the last maintenance page served;
- the migration alone, the same way into another fresh database with the same schema
  (`inv db.migrate-from-sqlite --schema=existing` of the same file).

Target: window <= 1.5 x the migration's own time. Prints one table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from tests.backup.roster import bench_sqlite  # noqa: E402
from tests.deploy.stack import APP, DOMAIN, Stack, bench_stack  # noqa: E402
from tests.support.docker import docker  # noqa: E402
from tests.support.load import LoadGenerator  # noqa: E402
from tests.support.postgres import PgCluster, start_cluster  # noqa: E402

INV = str(Path(sys.executable).with_name("inv"))
ROSTER = "shipyard-test/roster"
APP_UID = 10001
PHASES = ("drain the web containers", "snapshot", "migrate + verify", "deploy on PostgreSQL",
          "page removal")


def prepare(stack: Stack, pg: PgCluster, scale: float, front_url: str) -> str:
    """roster.db of `scale` on the host, the environment, v1 deployed; the target's URL."""
    data = stack.root / "data"
    data.mkdir()
    sqlite = data / "roster.db"
    shutil.copyfile(bench_sqlite(scale), sqlite)
    for path in (data, sqlite):
        shutil.chown(path, APP_UID, APP_UID)
    url = pg.create_database("cut") + "?sslmode=require"
    stack.write_env(overrides={
        "app": {"image": ROSTER, "tag": "v1", "migrate_command": ["alembic", "upgrade", "head"],
                "healthcheck": {"command": None, "timeout": 3, "start_period": 15},
                "resources": {"cpus": 1.0, "memory": "512m"}, "env": {"WEB_CONCURRENCY": "1"}},
        "database": {"backend": "sqlite", "sqlite_path": str(sqlite)},
        "maintenance": {"image": f"{APP}:maintenance", "command": [], "port": 8000,
                        "ready_timeout": 30},
        "deploy": {"traefik_throttle": 1.0, "drain_margin": 0.5,
                   "smoke": {"urls": [f"{front_url}/health"], "host_header": DOMAIN}}})
    assert stack.inv("setup").returncode == 0
    first = stack.inv("deploy", "--yes", extra_env={"E2E_DATABASE_URL": url})
    if first.returncode != 0:
        raise SystemExit(f"the first deploy failed:\n{first.stdout}\n{first.stderr}")
    return url


def alembic_schema(url: str) -> None:
    """The app's own schema in a fresh database: its migrations, from its image (v1)."""
    docker("run", "--rm", "-e", "DATABASE_URL", ROSTER + ":v1", "alembic", "upgrade", "head",
           env={"DATABASE_URL": url}, timeout=600)


def migration_alone(stack: Stack, pg: PgCluster, sqlite: Path) -> float:
    url = pg.create_database("alone") + "?sslmode=require"
    alembic_schema(url)
    environ = {**os.environ, "NO_COLOR": "1"}
    started = time.monotonic()
    proc = subprocess.run([INV, "db.migrate-from-sqlite", f"--sqlite={sqlite}",
                           f"--target-url={url}", "--schema=existing"], cwd=ROOT, env=environ,
                          capture_output=True, text=True, check=False)
    took = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"the migration failed:\n{proc.stdout}\n{proc.stderr}")
    return took


def one_scale(scale: float) -> dict[str, object]:
    pg = start_cluster(tls=True, remote=True, durable=True)
    try:
        with bench_stack("bench-cutover-", throttle=1.0) as (stack, _server, front, work):
            url = prepare(stack, pg, scale, front.url)
            report = work / "window.json"
            with LoadGenerator(f"{front.url}/people?limit=1", host=DOMAIN, rate=20,
                               max_seconds=1800) as load:
                proc = stack.inv("db.cutover", "--yes", "--schema=existing",
                                 f"--report={report}", extra_env={"E2E_DATABASE_URL": url},
                                 timeout=1800)
            if proc.returncode != 0:
                raise SystemExit(f"the cutover failed:\n{proc.stdout}\n{proc.stderr}")
            window = json.loads(report.read_text())
            pages = [r.started for r in load.results() if r.status == 503]
            failed = [r for r in load.results() if not r.ok and r.status != 503]
            alone = migration_alone(stack, pg, bench_sqlite(scale))
            docker("rm", "-f", f"{stack.project}-maintenance", check=False)
            return {"window": window, "seen": max(pages) - min(pages) if pages else 0.0,
                    "failed": len(failed), "requests": len(load.results()), "alone": alone}
    finally:
        pg.stop()
        shutil.rmtree(pg.datadir.parent, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scales", default="1,5", help="roster scales, comma-separated")
    parser.add_argument("--runs", type=int, default=1, help="runs per scale (medians)")
    args = parser.parse_args()
    scales = [float(s) for s in args.scales.split(",")]
    table = Table(title="cutover benchmark: the roster app's maintenance window, "
                        f"median of {args.runs} run(s); PostgreSQL with durable settings")
    for column in ("scale (rows)", *PHASES, "window", "page seen by load",
                   "migration alone", "window / migration", "target", "failed requests"):
        table.add_column(column, justify="right")
    for scale in scales:
        runs = [one_scale(scale) for _ in range(args.runs)]
        med = {p: statistics.median(r["window"]["phases"].get(p, 0.0)  # type: ignore[index]
                                    for r in runs) for p in PHASES}
        window = statistics.median(r["window"]["window"] for r in runs)  # type: ignore[index]
        alone = statistics.median(r["alone"] for r in runs)  # type: ignore[misc]
        seen = statistics.median(r["seen"] for r in runs)  # type: ignore[misc]
        rows = runs[0]["window"]["rows"]  # type: ignore[index]
        ratio = window / alone
        table.add_row(f"{scale:g} ({rows:,})", *(f"{med[p]:.1f}s" for p in PHASES),
                      f"{window:.1f}s", f"{seen:.1f}s", f"{alone:.1f}s", f"{ratio:.2f}",
                      "<= 1.5 " + ("met" if ratio <= 1.5 else "MISSED"),
                      f"{sum(r['failed'] for r in runs)}/{sum(r['requests'] for r in runs)}")  # type: ignore[misc]
        engine = runs[0]["window"]["migration"]  # type: ignore[index]
        print(f"scale {scale:g}: the migration's own phases in the window: "
              + ", ".join(f"{k} {v:.1f}s" for k, v in engine.items()), file=sys.stderr)
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
