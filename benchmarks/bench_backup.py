#!/usr/bin/env python3
"""Benchmark `backup.create` and `backup.restore` against the plain way, in the same run.

    .venv/bin/python benchmarks/bench_backup.py [--runs 3] [--scale 5]

Starts what it needs from the test bed: a PostgreSQL 15 cluster on 127.0.0.1 (TLS on, as
managed databases require), the bench roster at `--scale` migrated into it with
`fabfile.migrate` (the roster loader of the tests if that fails), a throwaway sshd that
plays the host (its Docker is the local engine, with the `postgres:15` client image), and
moto's S3 in a separate process. Then, per run, interleaved:

- backup, ours: `fabfile.backup.dump.create` (connect, facts, one host script that dumps,
  compresses, hashes and uploads through presigned URLs, then the manifest);
- backup, baseline: `pg_dump -Fc` to a file, then boto3 `upload_file` (default transfer
  settings) to the same S3 server;
- restore, ours: `fabfile.backup.restore.restore` into a fresh database, once with the dump
  in the host's cache and once after deleting it (download from S3);
- restore, baseline: a plain single-job `pg_restore -d` of the baseline dump into a fresh
  database (and, for the S3 row, boto3 `download_file` first);
- the floor of ours: `pg_restore -j<CPUs>` of the same uncompressed dump with the same
  session settings, run locally: what our restore costs without SSH, the client container
  and the checksum.

Every restore starts on a quiet server: earlier restored databases dropped (so autovacuum is
not busy with their rows), a CHECKPOINT, no autovacuum worker running; the two restores
from a file swap order every run.

Prints one table of medians and ratios; writes benchmarks/out/bench_backup.json too.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from fabfile.backup import dump, restore  # noqa: E402
from fabfile.backup.naming import DateSpec, human_size  # noqa: E402
from fabfile.config import load_config  # noqa: E402
from tests.backup.conftest import ENV, bed_yaml  # noqa: E402
from tests.backup.roster import bench_sqlite, fingerprint, load_roster  # noqa: E402
from tests.helpers import env_tree  # noqa: E402
from tests.support.images import ensure_images  # noqa: E402
from tests.support.postgres import PgCluster, start_cluster  # noqa: E402
from tests.support.s3 import start_s3_server  # noqa: E402
from tests.support.sshd import start_sshd  # noqa: E402

OUT = ROOT / "benchmarks" / "out"
BUCKET = "bench-backups"
TARGETS = {"backup": 0.6, "restore from cache": 0.7}
T = TypeVar("T")


def timed(fn: Callable[..., T], *args: Any) -> tuple[float, T]:
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def load(pg: PgCluster, scale: float) -> str:
    """The roster at `scale` in database `roster`; how it got there."""
    sqlite = bench_sqlite(scale)
    pg.psql("CREATE DATABASE roster")
    try:
        from fabfile.migrate.engine import MigrateOptions, migrate

        migrate(sqlite, pg.url("roster") + "?sslmode=require", MigrateOptions(verify="counts"))
        return "fabfile.migrate"
    except Exception as exc:  # the migrator is another team's moving target
        print(f"migrator failed ({type(exc).__name__}: {exc}); using the tests' loader")
        pg.psql("DROP DATABASE roster WITH (FORCE)")
        pg.psql("CREATE DATABASE roster")
        load_roster(sqlite, pg.url("roster"))
        return "tests/backup/roster.py"


RESTORED = ("base_restore", "ours_cache", "ours_s3", "base_s3")


def fresh(pg: PgCluster, name: str) -> str:
    """An empty database `name` on a quiet server: the databases earlier steps restored are
    dropped (else autovacuum works through their fresh rows during the next timing), dirty
    buffers are written out, and no autovacuum worker is left running."""
    for old in RESTORED:
        pg.psql(f'DROP DATABASE IF EXISTS "{old}" WITH (FORCE)')
    pg.psql(f'CREATE DATABASE "{name}"')
    pg.psql("CHECKPOINT")
    for _ in range(100):
        busy = pg.psql("SELECT count(*) FROM pg_stat_activity "
                       "WHERE backend_type = 'autovacuum worker'")
        if busy.strip() == "0":
            break
        time.sleep(0.1)
    return pg.url(name) + "?sslmode=require"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scale", type=float, default=5)
    args = parser.parse_args()
    console = Console(highlight=False)

    ensure_images()
    pg = start_cluster(tls=True)
    sshd = start_sshd()
    s3 = start_s3_server(separate_process=True)
    work = Path(tempfile.mkdtemp(prefix="bench-backup-"))
    try:
        loaded_with = load(pg, args.scale)
        rows = sum(n for n, _ in fingerprint(pg.url("roster")).values())
        size = int(pg.psql("SELECT pg_database_size('roster')"))
        console.print(f"roster scale {args.scale:g}: {rows:,} rows, {human_size(size)} "
                      f"in PostgreSQL (loaded with {loaded_with})")
        client = s3.client()
        client.create_bucket(Bucket=BUCKET)
        cache = work / "cache"
        root = env_tree(work, {ENV: bed_yaml(sshd.host, s3, BUCKET, cache)})
        environ = {"BT_DATABASE_URL": pg.url("roster") + "?sslmode=require",
                   "BT_BACKUP_ACCESS_KEY_ID": s3.access_key,
                   "BT_BACKUP_SECRET_ACCESS_KEY": s3.secret_key}
        cfg = load_config(ENV, root=root, environ=environ)
        source = pg.url("roster") + "?sslmode=require"
        baseline_file = work / "baseline.dump"
        times: dict[str, list[float]] = {k: [] for k in (
            "backup ours", "backup base", "cache ours", "s3 ours", "restore base",
            "s3 base", "floor")}
        sizes: dict[str, int] = {}
        expected = fingerprint(pg.url("roster"))

        def baseline_backup() -> None:
            subprocess.run(["pg_dump", "-Fc", "-f", str(baseline_file), source], check=True)
            client.upload_file(str(baseline_file), BUCKET, f"baseline/{time.time_ns()}.dump")

        def our_restore(target: str) -> None:
            restore.restore(cfg, DateSpec("latest"), target_url=target)

        def plain_restore(target: str, path: Path) -> None:
            subprocess.run(["pg_restore", "-d", target, str(path)], check=True)

        jobs = os.cpu_count() or 2

        def floor_restore(target: str, path: Path) -> None:
            """What our restore runs once the bytes are checked: pg_restore -j of the same
            uncompressed dump, same session settings, but local (no SSH, container, hash)."""
            subprocess.run(["pg_restore", f"-j{jobs}", "--no-owner", "--no-acl", "-d", target,
                            str(path)], check=True, env={**os.environ, "PGOPTIONS": (
                                "-c max_parallel_maintenance_workers=0 "
                                "-c synchronous_commit=off")})

        def baseline_from_s3(target: str) -> None:
            got = work / "downloaded.dump"
            key = client.list_objects_v2(Bucket=BUCKET, Prefix="baseline/")["Contents"][-1]
            client.download_file(BUCKET, key["Key"], str(got))
            plain_restore(target, got)

        for run in range(1, args.runs + 1):
            times["backup base"].append(timed(baseline_backup)[0])
            seconds, created = timed(dump.create, cfg)
            times["backup ours"].append(seconds)
            manifest = created.manifest
            sizes = {"ours": manifest.size, "baseline": baseline_file.stat().st_size}

            def base_from_cache() -> None:
                target = fresh(pg, "base_restore")
                times["restore base"].append(timed(plain_restore, target, baseline_file)[0])

            def ours_from_cache() -> None:
                target = fresh(pg, "ours_cache")
                times["cache ours"].append(timed(our_restore, target)[0])
                assert fingerprint(pg.url("ours_cache")) == expected

            for step in (base_from_cache, ours_from_cache)[::1 if run % 2 else -1]:
                step()
            plain = work / "plain.dump"
            subprocess.run(["zstd", "-q", "-d", "-f", "-o", str(plain),
                            str(cache / f"{manifest.backup_id}.dump.zst")], check=True)
            target = fresh(pg, "ours_cache")
            times["floor"].append(timed(floor_restore, target, plain)[0])
            plain.unlink()
            (cache / f"{manifest.backup_id}.dump.zst").unlink()
            target = fresh(pg, "ours_s3")
            times["s3 ours"].append(timed(our_restore, target)[0])
            assert fingerprint(pg.url("ours_s3")) == expected
            target = fresh(pg, "base_s3")
            times["s3 base"].append(timed(baseline_from_s3, target)[0])
            console.print(f"run {run}: " + ", ".join(
                f"{k} {v[-1]:.2f}s" for k, v in times.items()))
            time.sleep(1)

        med = {k: statistics.median(v) for k, v in times.items()}
        table = Table(title=f"backup benchmark: roster scale {args.scale:g} ({rows:,} rows, "
                            f"{human_size(size)}), median of {args.runs} runs, "
                            f"{os.cpu_count()} CPUs", title_justify="left")
        for column in ("operation", "ours", "baseline", "ratio", "target"):
            table.add_column(column, justify="left" if column == "operation" else "right")
        lines = [
            ("backup", "backup ours", "backup base",
             f"pg_dump -Fc + upload_file; {human_size(sizes['ours'])} vs "
             f"{human_size(sizes['baseline'])}"),
            ("restore from cache", "cache ours", "restore base", "single-job pg_restore"),
            (f"pg_restore -j{jobs} alone, local", "floor", "restore base",
             "single-job pg_restore; the floor of ours"),
            ("restore from S3", "s3 ours", "restore base", "single-job pg_restore"),
            ("restore from S3", "s3 ours", "s3 base", "download_file + single-job pg_restore"),
        ]
        report: list[dict[str, Any]] = []
        for name, ours, base, note in lines:
            ratio = med[ours] / med[base]
            target = TARGETS.get(name) if base in ("backup base", "restore base") else None
            mark = "" if target is None else (f"<= {target} " + ("met" if ratio <= target
                                                                 else "MISSED"))
            table.add_row(f"{name} (vs {note})", f"{med[ours]:.2f}s", f"{med[base]:.2f}s",
                          f"{ratio:.2f}", mark)
            report.append({"operation": name, "baseline": note, "ours_s": med[ours],
                           "baseline_s": med[base], "ratio": ratio, "target": target,
                           "runs_ours": times[ours], "runs_baseline": times[base]})
        console.print(table)
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "bench_backup.json").write_text(json.dumps(
            {"scale": args.scale, "rows": rows, "db_bytes": size, "sizes": sizes,
             "loaded_with": loaded_with, "results": report}, indent=2))
    finally:
        s3.stop()
        sshd.stop()
        pg.stop()
        subprocess.run(["rm", "-rf", str(work), str(pg.datadir.parent)], check=False)


if __name__ == "__main__":
    main()
