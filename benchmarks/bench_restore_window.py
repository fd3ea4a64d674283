#!/usr/bin/env python3
"""Benchmark a restore over a live site: how long the site answers no page of the app, and
how many requests fail, for `inv backup.restore` and for the same restore done by hand.

    .venv/bin/python benchmarks/bench_restore_window.py [--runs 2] [--scale 1]

Starts the test bed's parts: PostgreSQL 15 (TLS on) holding the bench roster at `--scale`
(loaded with the tests' loader), a throwaway sshd that plays the host (its Docker is the
local engine), moto's S3, the Traefik stand-in (`tests/support/front.py`), and the fake
app (v1, two replicas) deployed on them with `inv deploy`. One backup is taken. Then, per
run, in alternating order, with 20 requests/s going through the stand-in:

- ours: `inv backup.restore --yes` over the live database (maintenance page, web stopped,
  pre-restore backup, exact restore, web started and healthy, page down, smoke test);
- by hand, as the README told users before the tool did it: `docker compose stop web`,
  `pg_restore -j<CPUs> --clean --if-exists --no-owner --no-acl` of the same dump (already
  unpacked, from this machine: no SSH, no checksum), `docker compose start web`.

For each: the window (from the first request the app did not answer to the last one), the
requests that failed (anything but the app's 200 or the maintenance page's 503), the ones
the maintenance page answered, and the whole run. Prints medians and ratios; writes
benchmarks/out/bench_restore_window.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from tests.backup.roster import bench_sqlite, fingerprint, load_roster  # noqa: E402
from tests.deploy.stack import APP, DOMAIN, Stack  # noqa: E402
from tests.support.docker import docker, ensure_docker  # noqa: E402
from tests.support.front import Front  # noqa: E402
from tests.support.images import ensure_images  # noqa: E402
from tests.support.load import LoadGenerator, Result  # noqa: E402
from tests.support.postgres import start_cluster  # noqa: E402
from tests.support.s3 import start_s3_server  # noqa: E402
from tests.support.sshd import start_sshd  # noqa: E402

OUT = ROOT / "benchmarks" / "out"
PAGE = "Down for maintenance"
THROTTLE = 2.0


def measure(load: LoadGenerator, since: float, seconds: float) -> dict[str, float]:
    results: list[Result] = load.results(since)
    down = [r for r in results if r.status != 200]
    failed = [r for r in down if not (r.status == 503 and PAGE in r.body)]
    window = max(r.started for r in down) - min(r.started for r in down) if down else 0.0
    return {"window": window, "failed": len(failed), "pages": len(down) - len(failed),
            "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--scale", type=float, default=1)
    args = parser.parse_args()
    console = Console(highlight=False)

    ensure_docker()
    ensure_images()
    pg = start_cluster(tls=True)
    sshd = start_sshd()
    s3 = start_s3_server(separate_process=True)
    work = Path(tempfile.mkdtemp(prefix="bench-restore-"))
    stack = Stack.create(work, sshd.host)
    front = Front(project=stack.project, throttle=THROTTLE, network=stack.network)
    try:
        pg.psql("CREATE DATABASE roster")
        load_roster(bench_sqlite(args.scale), pg.url("roster"))
        url = pg.url("roster") + "?sslmode=require"
        expected = fingerprint(pg.url("roster"))
        rows = sum(n for n, _ in expected.values())
        console.print(f"roster scale {args.scale:g}: {rows:,} rows")
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        s3.client().create_bucket(Bucket=bucket)
        secrets = {"E2E_DATABASE_URL": url, "E2E_BACKUP_KEY": s3.access_key,
                   "E2E_BACKUP_SECRET": s3.secret_key}
        assert stack.inv("setup").returncode == 0
        front.start()
        cache = work / "cache"
        stack.write_env(overrides={
            "app": {"migrate_command": []},
            "maintenance": {"image": f"{APP}:maintenance", "command": [], "port": 8000},
            "backup": {"bucket": bucket, "endpoint_url": s3.endpoint_url,
                       "region": s3.region, "access_key_id": {"secret": "E2E_BACKUP_KEY"},
                       "secret_access_key": {"secret": "E2E_BACKUP_SECRET"},
                       "cache_dir": str(cache)},
            "deploy": {"traefik_throttle": THROTTLE, "smoke": {
                "urls": [f"{front.url}/health"], "host_header": DOMAIN}}})

        def inv(*argv: str) -> str:
            proc = stack.inv(*argv, extra_env=secrets, timeout=1800)
            if proc.returncode:
                raise SystemExit(f"inv {' '.join(argv)} failed:\n{proc.stdout}{proc.stderr}")
            return proc.stdout

        inv("deploy", "--yes")
        front.wait_for(lambda t: len(t.servers_for(DOMAIN)) == 2, timeout=60)
        inv("backup.create")
        backup = json.loads(inv("backup.list", "--json"))[0]["id"]
        plain = work / "backup.dump"
        subprocess.run(["zstd", "-q", "-d", "-f", "-o", str(plain),
                        str(cache / f"{backup}.dump.zst")], check=True)
        compose = str(stack.app_dir / "current" / "compose.yml")
        jobs = os.cpu_count() or 2

        def ours() -> None:
            inv("backup.restore", f"--date={backup}", "--yes")

        def by_hand() -> None:
            docker("compose", "-f", compose, "stop", "web", timeout=300)
            subprocess.run(["pg_restore", f"-j{jobs}", "--clean", "--if-exists", "--no-owner",
                            "--no-acl", "-d", url, str(plain)], check=True)
            docker("compose", "-f", compose, "start", "web", timeout=300)
            front.wait_for(lambda t: len(t.servers_for(DOMAIN)) == 2, timeout=120)

        results: dict[str, list[dict[str, float]]] = {"ours": [], "by hand": []}
        ways: list[tuple[str, Callable[[], None]]] = [("ours", ours), ("by hand", by_hand)]
        with LoadGenerator(f"{front.url}/version", host=DOMAIN, rate=20,
                           max_seconds=3600) as load:
            for run in range(args.runs):
                for name, way in ways[:: 1 if run % 2 == 0 else -1]:
                    time.sleep(THROTTLE + 1)
                    since = load.now()
                    started = time.monotonic()
                    way()
                    time.sleep(THROTTLE + 1)
                    results[name].append(measure(load, since, time.monotonic() - started))
                    assert fingerprint(pg.url("roster")) == expected, name
                    console.print(f"run {run + 1} {name}: {results[name][-1]}")
    finally:
        front.stop()
        stack.cleanup()
        docker("rm", "-f", f"{stack.project}-maintenance", check=False)
        s3.stop()
        sshd.stop()
        pg.stop()

    table = Table(title=f"restore over a live site, roster scale {args.scale:g} "
                        f"({rows:,} rows), medians of {args.runs} runs, 20 requests/s")
    for column in ("", "ours (maintenance page)", "by hand (stop, pg_restore, start)",
                   "ours / by hand"):
        table.add_column(column)
    summary = {}
    for key, label in (("window", "site without the app (s)"), ("failed", "requests failed"),
                       ("pages", "answered by the maintenance page"),
                       ("seconds", "whole restore (s)")):
        a = statistics.median(r[key] for r in results["ours"])
        b = statistics.median(r[key] for r in results["by hand"])
        summary[key] = {"ours": a, "by hand": b}
        ratio = f"{a / b:.2f}x" if b else "-"
        fmt = "{:.1f}" if key in ("window", "seconds") else "{:.0f}"
        table.add_row(label, fmt.format(a), fmt.format(b), ratio)
    console.print(table)
    OUT.mkdir(exist_ok=True)
    (OUT / "bench_restore_window.json").write_text(json.dumps(
        {"scale": args.scale, "rows": rows, "runs": results, "medians": summary}, indent=2))


if __name__ == "__main__":
    main()
