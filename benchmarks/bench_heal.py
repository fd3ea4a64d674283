#!/usr/bin/env python3
"""Benchmark self-healing: time from a hang, and from a crash, until the container is healthy
and routed again, beside Docker alone and an autoheal-style restart loop.

    .venv/bin/python benchmarks/bench_heal.py [--runs 5] [--rate 10] [--peer-timeout 45]

Starts what it needs from the test bed (Docker Engine, the fake app's images, a throwaway
sshd host on 127.0.0.1, the Traefik stand-in front with its 2 s throttle and a bounded
loopback load), runs `inv setup` and a first `inv deploy` of two web replicas with the
default healthcheck timings (interval 2 s, timeout 2 s, retries 3) and the default
self-healing settings (restart after 5 s unhealthy, 3 s to stop). Then, alternating the two
containers, `--runs` times each:

- hang: the app's listener is stopped (SIGSTOP) inside the container, PID 1 lives on;
- crash: the app's listener is killed, PID 1 exits non-zero, Docker's policy restarts it;

with each of three setups:

- `watcher`: this tool's watcher (`inv setup` installed it);
- `Docker alone`: `app.healthcheck.self_heal: false` (`inv setup` removed the watcher), as
  Compose runs without it: a hung container is never restarted (one hang, given up after
  `--peer-timeout` seconds, then restarted by hand);
- `autoheal-style`: the same with a loop emulating willfarrell/autoheal's defaults (every
  5 s, `docker restart -t 10` every unhealthy container of the project; it runs with the
  Docker socket, ignores drain files and deploy locks, and never gives up).

Reported per setup and scenario: the median (min-max) time from the break until Docker
reports the container healthy again and until the stand-in routes to it again (capacity
back), the failed requests through the stand-in, how many runs came back within 30 s, and
the ratio of the median to the watcher's. Writes benchmarks/out/bench_heal.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from tests.deploy.stack import DOMAIN, Stack, bench_stack  # noqa: E402
from tests.support.docker import docker  # noqa: E402
from tests.support.front import Front  # noqa: E402
from tests.support.heal import Recovery, crash, hang, recover, wait  # noqa: E402
from tests.support.load import LoadGenerator  # noqa: E402

OUT = ROOT / "benchmarks" / "out"
THROTTLE = 2.0
TARGET = 30.0
HEALTH = {"interval": 2, "timeout": 2, "retries": 3, "start_period": 3}
AUTOHEAL_INTERVAL = 5.0
AUTOHEAL_STOP_TIMEOUT = 10
WATCHER, ALONE, AUTOHEAL = "watcher", "Docker alone", "autoheal-style"


class AutohealLoop:
    """willfarrell/autoheal's loop with its defaults, run here instead of its container."""

    def __init__(self, project: str) -> None:
        self.project = project
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.wait(AUTOHEAL_INTERVAL):
            sick = docker("ps", "-q", "--filter", f"label=com.docker.compose.project="
                          f"{self.project}", "--filter", "health=unhealthy", check=False).split()
            for cid in sick:
                docker("restart", "-t", str(AUTOHEAL_STOP_TIMEOUT), cid, check=False)

    def __enter__(self) -> AutohealLoop:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(AUTOHEAL_INTERVAL + AUTOHEAL_STOP_TIMEOUT + 5)


class Bench:
    def __init__(self, stack: Stack, front: Front, load: LoadGenerator, peer_timeout: float):
        self.stack, self.front, self.load = stack, front, load
        self.peer_timeout = peer_timeout
        self.t0 = time.monotonic() - load.now()
        self.rows: dict[tuple[str, str], list[dict[str, Any]]] = {}

    def episode(self, setup: str, scenario: str, cid: str) -> None:
        breaks: Callable[[str], None] = hang if scenario == "hang" else crash
        timeout = self.peer_timeout if setup == ALONE and scenario == "hang" else 60.0
        started = time.monotonic()
        row: dict[str, Any]
        try:
            got: Recovery = recover(self.front, DOMAIN, cid, breaks, timeout=timeout)
            row = {"healthy": got.after(got.healthy), "routed": got.after(got.back)}
        except TimeoutError:
            row = {"healthy": None, "routed": None}
            docker("restart", "-t", "3", cid)
            wait(lambda: docker("inspect", "-f", "{{.State.Health.Status}}", cid) == "healthy",
                 30, "healthy after the restart by hand")
            self.front.wait_for(lambda t: len(t.servers_for(DOMAIN)) == 2, timeout=10)
        time.sleep(THROTTLE + 1)
        results = self.load.results(started - self.t0, time.monotonic() - self.t0)
        row.update(requests=len(results), failed=sum(not r.ok for r in results))
        self.rows.setdefault((setup, scenario), []).append(row)

    def heal_env(self, on: bool) -> None:
        self.stack.write_env(overrides={
            "app": {"migrate_command": [], "healthcheck": {**HEALTH, "self_heal": on}},
            "deploy": {"traefik_throttle": THROTTLE, "drain_margin": 1.0, "smoke": {
                "urls": [f"{self.front.url}/health"], "host_header": DOMAIN,
                "interval": 1.0, "failures": 6}}})
        proc = self.stack.inv("setup")
        if proc.returncode != 0:
            raise RuntimeError(f"setup: {proc.stdout}\n{proc.stderr}")


def median(values: list[float]) -> float:
    return statistics.median(values)


def cell(values: list[float | None], peer_timeout: float) -> str:
    done = [v for v in values if v is not None]
    if not done:
        return f"never (> {peer_timeout:g}s)"
    text = f"{median(done):.1f}s ({min(done):.1f}-{max(done):.1f})"
    return text if len(done) == len(values) else f"{text}, {len(values) - len(done)} never"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--peer-timeout", type=float, default=45.0,
                        help="seconds to wait for a hung container to come back without help")
    args = parser.parse_args()
    console = Console(width=160)

    with bench_stack("bench-heal-", THROTTLE) as (stack, _, front, _), LoadGenerator(
            f"{front.url}/version", host=DOMAIN, rate=args.rate, max_seconds=3600, timeout=40,
            concurrency=300) as load:
        bench = Bench(stack, front, load, args.peer_timeout)
        bench.heal_env(True)
        proc = stack.inv("deploy", "--yes", "--version=v1")
        if proc.returncode != 0:
            raise RuntimeError(f"deploy: {proc.stdout}\n{proc.stderr}")
        front.wait_for(lambda t: len(t.servers_for(DOMAIN)) == 2, timeout=30)
        ids = sorted(c["id"] for c in stack.containers())
        for i in range(args.runs):
            bench.episode(WATCHER, "hang", ids[i % 2])
            bench.episode(WATCHER, "crash", ids[(i + 1) % 2])
        bench.heal_env(False)
        bench.episode(ALONE, "hang", ids[0])
        for i in range(args.runs):
            bench.episode(ALONE, "crash", ids[i % 2])
        with AutohealLoop(stack.project):
            for i in range(args.runs):
                bench.episode(AUTOHEAL, "hang", ids[i % 2])

    table = Table(title=f"self-healing benchmark: {args.runs} runs each, 2 web replicas, "
                        f"healthcheck 2s/2s x3, {args.rate:g} req/s through the Traefik "
                        f"stand-in (2 s throttle)")
    for col in ("setup", "scenario", "to healthy: median (min-max)",
                "to routed again: median (min-max)", "within 30 s", "failed requests",
                "routed / watcher"):
        table.add_column(col, justify="left" if col in ("setup", "scenario") else "right")
    ours = {scenario: median([r["routed"] for r in bench.rows[(WATCHER, scenario)]])
            for scenario in ("hang", "crash")}
    summary = []
    for (setup, scenario), rows in bench.rows.items():
        routed = [r["routed"] for r in rows]
        done = [v for v in routed if v is not None]
        ratio = f"{median(done) / ours[scenario]:.2f}x" if len(done) == len(routed) else "-"
        table.add_row(setup, scenario, cell([r["healthy"] for r in rows], args.peer_timeout),
                      cell(routed, args.peer_timeout),
                      f"{sum(v is not None and v < TARGET for v in routed)}/{len(rows)}",
                      f"{sum(r['failed'] for r in rows)}/{sum(r['requests'] for r in rows)}",
                      ratio)
        summary.append({"setup": setup, "scenario": scenario, "runs": rows})
    console.print(table)
    console.print("failed requests: those the stand-in had routed to the broken container "
                  "before Docker reported it (the hang: until unhealthy + 2 s throttle).")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench_heal.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
