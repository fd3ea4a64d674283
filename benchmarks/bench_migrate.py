#!/usr/bin/env python3
"""Benchmark `inv db.migrate-from-sqlite` against pgloader on the bench roster database.

    .venv/bin/python benchmarks/bench_migrate.py [--scale 5] [--runs 3] [--jobs N]
                                                 [--servers durable,tuned]

Makes the roster database with the shared generator (cached under benchmarks/out/), starts two
throwaway PostgreSQL clusters (tests/support/postgres.py): one with PostgreSQL's default,
durable settings (fsync, synchronous_commit, full_page_writes on: what a managed database
runs) and one tuned for loading (all three off). Per run, on each server, it loads the roster
with each tool into a fresh empty database, alternating which tool goes first, after a
CHECKPOINT. Both tools build indexes and foreign keys; this tool also verifies every row
(checksums). Reports per server and tool the median wall time, rows/s, peak RSS of the
tool's process tree (sampled from /proc; the server's own memory is not counted), the CPU
seconds of the tool and of the server, the ratio to pgloader on the same server, and a few
fidelity checks on what each tool created. Writes benchmarks/out/bench_migrate.json, and this
tool's `--report` of each run as benchmarks/out/report-SERVER-RUN.json (its `timeline` says
where the time went).
"""

# ruff: noqa: S608 - SQL text here is built from quoted identifiers, never from values

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from tests.support.postgres import PgCluster, start_cluster  # noqa: E402

OUT = ROOT / "benchmarks" / "out"


def shared_dir() -> Path:
    return Path(os.environ.get("SHARED_DIR", ROOT.parent / "shared"))


def roster(scale: float) -> Path:
    """The generated roster database for SCALE, made once and cached."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"roster-s{scale:g}.db"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        gen = shared_dir() / "bench" / "make_roster_sqlite.py"
        subprocess.run([sys.executable, str(gen), str(tmp), "--scale", f"{scale:g}"], check=True)
        tmp.rename(path)
    return path


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                out.extend(int(x) for x in fh.read().split())
    except OSError:
        pass
    return out


def tree_rss(pid: int) -> int:
    """Resident bytes of PID and all its descendants."""
    total = 0
    stack = [pid]
    page = os.sysconf("SC_PAGE_SIZE")
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/statm") as fh:
                total += int(fh.read().split()[1]) * page
        except OSError:
            continue
        stack.extend(_children(p))
    return total


def server_cpu(pg: PgCluster) -> float:
    """CPU seconds the cluster has used: the postmaster, its exited children (backends and
    autovacuum workers, reaped by it) and the ones still running."""
    postmaster = int((pg.datadir / "postmaster.pid").read_text().split()[0])
    ticks = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == postmaster:
            ticks += sum(int(x) for x in fields[11:15])
        elif int(fields[1]) == postmaster:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(argv: list[str], log: Path) -> tuple[float, int, int]:
    """(wall seconds, peak tree RSS bytes, exit code) of one run of ARGV."""
    peak = 0
    with log.open("w") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                env={**os.environ, "COLUMNS": "100"})
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, tree_rss(proc.pid))
                done.wait(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        rc = proc.wait()
        wall = time.perf_counter() - start
        done.set()
        sampler.join()
    return wall, peak, rc


def source_facts(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    facts = {"notnull": 0, "varchar": 0, "datetime": 0, "indexes": 0, "int_pk": 0, "rows": 0}
    tables = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")]
    for t in tables:
        for _cid, _name, ctype, notnull, _d, pk in conn.execute(f'PRAGMA table_info("{t}")'):
            facts["notnull"] += bool(notnull or pk)
            facts["varchar"] += ctype.upper().startswith("VARCHAR(")
            facts["datetime"] += ctype.upper() in ("DATETIME", "TIMESTAMP")
        pks = [r for r in conn.execute(f'PRAGMA table_info("{t}")') if r[5]]
        facts["int_pk"] += len(pks) == 1 and pks[0][2].upper() == "INTEGER"
        facts["rows"] += conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
    facts["indexes"] = conn.execute(
        "SELECT count(*) FROM sqlite_master WHERE type='index' AND sql IS NOT NULL").fetchone()[0]
    conn.close()
    return facts


def target_facts(pg: PgCluster, dbname: str, db: Path) -> dict[str, int]:
    """The same facts, read back from what a tool created."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    names = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type='index' AND sql IS NOT NULL")]
    conn.close()
    q = (
        "SELECT (SELECT count(*) FROM information_schema.columns WHERE table_schema='public' "
        "AND is_nullable='NO'), "
        "(SELECT count(*) FROM information_schema.columns WHERE table_schema='public' "
        "AND data_type='character varying' AND character_maximum_length IS NOT NULL), "
        "(SELECT count(*) FROM information_schema.columns WHERE table_schema='public' "
        "AND data_type='timestamp without time zone'), "
        "(SELECT count(*) FROM pg_indexes WHERE schemaname='public' AND indexname IN ("
        + ",".join("'" + n + "'" for n in names) + ")), "
        "(SELECT count(*) FROM information_schema.columns WHERE table_schema='public' "
        "AND column_name='id' AND (is_identity='YES' OR column_default LIKE 'nextval%')), "
        "(SELECT sum(n_live_tup) FROM pg_stat_user_tables)")
    got = pg.psql(q, dbname).split("|")
    keys = ["notnull", "varchar", "datetime", "indexes", "int_pk"]
    facts = {k: int(v or 0) for k, v in zip(keys, got, strict=False)}
    rows = 0
    for t in pg.psql("SELECT tablename FROM pg_tables WHERE schemaname='public'", dbname).split():
        rows += int(pg.psql(f'SELECT count(*) FROM "{t}"', dbname))
    facts["rows"] = rows
    return facts


SERVERS = {
    "durable": "PostgreSQL defaults: fsync, synchronous_commit, full_page_writes on",
    "tuned": "fsync, synchronous_commit, full_page_writes off",
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=5.0, help="roster scale (5 = ~1.55M rows)")
    ap.add_argument("--runs", type=int, default=3, help="runs per tool; the median is reported")
    ap.add_argument("--jobs", type=int, default=0, help="this tool's --jobs (default: CPUs)")
    ap.add_argument("--servers", default=",".join(SERVERS),
                    help="which servers to run against: durable, tuned or both (default)")
    args = ap.parse_args()
    servers = [x.strip() for x in args.servers.split(",") if x.strip()]
    if not servers or any(x not in SERVERS for x in servers):
        print(f"--servers: expected a list of {', '.join(SERVERS)}", file=sys.stderr)
        return 2
    if not shutil.which("pgloader"):
        print("pgloader is not installed (apt-get install pgloader)", file=sys.stderr)
        return 2
    console = Console(width=240)
    db = roster(args.scale)
    src = source_facts(db)
    console.print(f"roster scale {args.scale:g}: {db} ({db.stat().st_size / 1e6:.0f} MB, "
                  f"{src['rows']:,} rows)")
    console.print(f"load before: {os.getloadavg()[0]:.2f} (1-minute average), "
                  f"{os.cpu_count()} CPUs")
    inv = str(ROOT / ".venv" / "bin" / "inv")
    if not Path(inv).exists():
        inv = shutil.which("inv") or "inv"
    tools = {
        "pgloader": lambda url: ["pgloader", f"sqlite://{db}", url],
        "db.migrate-from-sqlite": lambda url: [
            inv, "db.migrate-from-sqlite", f"--sqlite={db}", f"--target-url={url}",
            "--verify=checksums", f"--report={OUT / 'report-last.json'}",
            *([f"--jobs={args.jobs}"] if args.jobs else [])],
    }
    clusters = {name: start_cluster(durable=name == "durable") for name in servers}
    results: dict[tuple[str, str], dict[str, list[float]]] = {
        (srv, t): {"wall": [], "rss": [], "cpu": [], "server": []}
        for srv in servers for t in tools}
    fidelity: dict[str, dict[str, int]] = {}
    try:
        for run in range(args.runs):
            for srv in servers:
                pg = clusters[srv]
                order = list(tools) if run % 2 == 0 else list(reversed(tools))
                for tool in order:
                    url = pg.create_database("bench")
                    dbname = url.rsplit("/", 1)[1]
                    log = OUT / f"{tool}-{srv}-{run}.log"
                    pg.psql("CHECKPOINT")  # each run starts with no dirty pages to write
                    time.sleep(1)  # let the server settle (autovacuum of the last database)
                    cpu, server = children_cpu(), server_cpu(pg)
                    wall, rss, rc = measure(tools[tool](url), log)
                    time.sleep(0.3)  # the tool's backends exit after it does
                    cpu, server = children_cpu() - cpu, server_cpu(pg) - server
                    if rc != 0:
                        console.print(f"[red]{tool} failed on {srv} (exit {rc}); see {log}[/]")
                        return 1
                    r = results[(srv, tool)]
                    r["wall"].append(wall)
                    r["rss"].append(rss)
                    r["cpu"].append(cpu)
                    r["server"].append(server)
                    if tool not in fidelity:
                        fidelity[tool] = target_facts(pg, dbname, db)
                    if tool != "pgloader":
                        (OUT / f"report-{srv}-{run}.json").write_bytes(
                            (OUT / "report-last.json").read_bytes())
                    console.print(f"run {run + 1}/{args.runs} {srv:8s} {tool}: {wall:.2f} s, "
                                  f"peak {rss / 1e6:.0f} MB, CPU {cpu:.2f} s + server "
                                  f"{server:.2f} s")
                    pg.drop_database(url)
    finally:
        for pg in clusters.values():
            pg.stop()
            shutil.rmtree(pg.datadir.parent, ignore_errors=True)
    console.print(f"load after: {os.getloadavg()[0]:.2f} (1-minute average)")
    table = Table(title=f"SQLite -> PostgreSQL, roster scale {args.scale:g} "
                        f"({src['rows']:,} rows), median of {args.runs}; indexes + foreign "
                        "keys; ours verifies checksums")
    for col in ("server", "tool", "wall s", "min-max s", "rows/s", "peak RSS MB", "tool CPU s",
                "server CPU s", "vs pgloader", "rows", "NOT NULL", "varchar(n)",
                "naive DATETIME", "index names", "INTEGER PK identity"):
        table.add_column(col, justify="left" if col in ("server", "tool") else "right")
    summary: dict[str, dict[str, object]] = {}
    cpus = os.cpu_count() or 1
    floors = []
    for (srv, tool), r in results.items():
        med = statistics.median(r["wall"])
        base = statistics.median(results[(srv, "pgloader")]["wall"])
        f = fidelity[tool]
        cpu, server = statistics.median(r["cpu"]), statistics.median(r["server"])
        summary[f"{srv}/{tool}"] = {
            "server": srv, "tool": tool, "wall_median": med, "wall": r["wall"],
            "peak_rss_mb": max(r["rss"]) / 1e6, "rows_per_s": src["rows"] / med,
            "ratio": med / base, "fidelity": f, "tool_cpu_s": cpu, "server_cpu_s": server}
        table.add_row(
            srv, tool, f"{med:.2f}", f"{min(r['wall']):.2f}-{max(r['wall']):.2f}",
            f"{src['rows'] / med:,.0f}", f"{max(r['rss']) / 1e6:.0f}", f"{cpu:.2f}",
            f"{server:.2f}", f"{med / base:.2f}x",
            f"{f['rows']:,}/{src['rows']:,}", f"{f['notnull']}/{src['notnull']}",
            f"{f['varchar']}/{src['varchar']}", f"{f['datetime']}/{src['datetime']}",
            f"{f['indexes']}/{src['indexes']}", f"{f['int_pk']}/{src['int_pk']}",
            end_section=tool == list(tools)[-1])
        floors.append(f"{srv} {tool}: (tool + server CPU) / {cpus} CPUs = "
                      f"{(cpu + server) / cpus:.2f} s, the wall time that much work cannot "
                      "beat on this machine")
    console.print(table)
    for srv in servers:
        console.print(f"{srv}: {SERVERS[srv]}")
    for line in floors:
        console.print(line)
    (OUT / "bench_migrate.json").write_text(json.dumps(
        {"scale": args.scale, "runs": args.runs, "servers": servers, "source": src,
         "results": summary}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
