#!/usr/bin/env python3
"""Benchmark `inv deploy`: wall time, the health-bound floor, the tool's overhead, SSH
commands per deploy, and failed requests, beside two naive peers.

    .venv/bin/python benchmarks/bench_deploy.py [--runs 3] [--replicas 2] [--rate 25]

Starts what it needs from the test bed (Docker Engine, the fake app's images, a throwaway
sshd on 127.0.0.1, the Traefik stand-in front and a bounded loopback load generator), sets
up a throwaway environment, deploys v1, then per run (alternating v1/v2):

- `inv deploy` rolling the web service (2 replicas) over SSH;
- `inv deploy` again with nothing to change;
- naive peer 1: `docker compose up -d --wait` on the same compose file with the other tag
  (Compose recreates the containers: stop old, start new);
- naive peer 2: the usual SSH script, `ssh host 'tar x'` of the release then
  `ssh host 'docker compose up -d --wait'` (docker-rollout itself is a shell plugin that no
  registry here ships).

The floor is what the app and the proxy rules make anyone wait, measured with plain
`docker` commands and no tool: containers started until healthy, plus (for a rolling
update) the drain (drain file until Docker reports unhealthy, the proxy's throttle plus the
margin) and the graceful stop. `inv deploy` also smoke-tests through the front (2 rounds,
0.2 s apart: a configured wait, shown apart). Overhead = wall - floor - smoke wait, and
includes starting Python and Invoke. Failed requests are counted from the load through the
front during each operation and the 4 s after it. Writes benchmarks/out/bench_deploy.json.

Then the same on a two-node Docker Swarm (`tests/support/swarm.py`, unless `--no-swarm`),
behind the stand-in for Traefik's Swarm provider (polling every 2 s): `inv deploy` rolling
the same app with `deploy.engine: swarm`, and with nothing to change. Its floor is Swarm's
own rolling update of the same service spec with plain `docker service update` (each task
started until healthy, one after the other, then the update's monitor period) plus the wait
until the provider's next poll routes to the new tasks (refresh + throttle + margin); the
old tasks drain in the background.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from tests.deploy.stack import APP, DOMAIN, Stack, bench_stack  # noqa: E402
from tests.support.docker import docker  # noqa: E402
from tests.support.images import APP_HEALTH_COMMAND, APP_HEALTHCHECK  # noqa: E402
from tests.support.load import LoadGenerator  # noqa: E402
from tests.support.sshd import SshServer  # noqa: E402

OUT = ROOT / "benchmarks" / "out"
THROTTLE = 2.0
MARGIN = 1.0
GRACE = 3
HEALTH = {"interval": 1, "timeout": 1, "retries": 2, "start_period": 3,
          "command": APP_HEALTH_COMMAND}
AFTERMATH = 4.0
SMOKE_CHECKS = 2
SMOKE_INTERVAL = 0.2
ROLLING = "inv deploy: rolling (v1<->v2)"
NO_CHANGE = "inv deploy: no change"
SWARM_ROLLING = "inv deploy, swarm: rolling (v1<->v2)"
SWARM_NO_CHANGE = "inv deploy, swarm: no change"
SWARM_REFRESH = 2.0
SWARM_THROTTLE = 1.0
NAIVE_LOCAL = "compose up -d --wait (recreate)"
NAIVE_SSH = "ssh tar x; ssh compose up -d --wait"


def commands_of(text: str) -> int:
    """The `commands` column (SSH commands) of `inv deploy`'s summary table."""
    match = re.search(r"│ root@[^│]+│ \S+\s+│[^│]*│[^│]*│[^│]*│ (\d+)\s+│", text)
    if not match:
        raise RuntimeError(f"no summary table in:\n{text}")
    return int(match.group(1))


def steps_of(text: str) -> dict[str, float]:
    """`ok HOST: STEP (1.2s)` lines -> {STEP: seconds}."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        m = re.match(r"ok root@\S+: (.+?) \((\d+\.\d+)s\)$", line)
        if m:
            name = re.sub(r"\d{8}T\d{6}Z-\S+", "<id>", m.group(1))
            found[name] = float(m.group(2))
    return found


def _poll(ids: list[str], done: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = docker("inspect", "--format", "{{.State.Health.Status}}", *ids)
        if done(out.split()):
            return
        time.sleep(0.05)
    raise TimeoutError("containers did not reach the state in time")


def measure_floor(replicas: int) -> dict[str, float]:
    """The waits no tool can avoid, with plain docker commands: start `replicas` containers
    with the stack's healthcheck until healthy; drain until unhealthy; graceful stop."""
    check = f"{APP_HEALTHCHECK} || exit 1"
    flags = ["--health-cmd", check, "--health-interval", f"{HEALTH['interval']}s",
             "--health-timeout", f"{HEALTH['timeout']}s", "--health-retries",
             str(HEALTH["retries"]), "--health-start-period", f"{HEALTH['start_period']}s",
             "--label", "org.shipyard.test=bench-floor"]
    t0 = time.monotonic()
    ids: list[str] = []
    threads = [threading.Thread(target=lambda: ids.append(
        docker("run", "-d", *flags, f"{APP}:v2"))) for _ in range(replicas)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        _poll(ids, lambda states: all(s == "healthy" for s in states))
        healthy = time.monotonic() - t0
        t1 = time.monotonic()
        for cid in ids:
            docker("exec", cid, "sh", "-c", ": > /tmp/drain")
        _poll(ids, lambda states: all(s == "unhealthy" for s in states))
        unhealthy = time.monotonic() - t1
        t2 = time.monotonic()
        docker("stop", "-t", str(GRACE), *ids)
        stop = time.monotonic() - t2
    finally:
        docker("rm", "-f", *ids, check=False)
    return {"healthy": healthy, "unhealthy": unhealthy, "settle": THROTTLE + MARGIN,
            "stop": stop}


def ssh_argv(server: SshServer, command: str) -> list[str]:
    h = server.host
    return ["ssh", "-p", str(h.port), "-i", str(h.key_file), "-o",
            f"UserKnownHostsFile={h.known_hosts}", "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes", f"{h.user}@{h.address}", command]


class Bench:
    def __init__(self, stack: Stack, server: SshServer, load: LoadGenerator, work: Path) -> None:
        self.stack, self.server, self.load, self.work = stack, server, load, work
        self.rows: dict[str, list[dict[str, Any]]] = {}

    def record(self, name: str, start: float, wall: float, commands: int | None,
               extra: dict[str, Any] | None = None) -> None:
        time.sleep(AFTERMATH)
        window = self.load.results(start, start + wall + AFTERMATH)
        failed = [r for r in window if not r.ok]
        self.rows.setdefault(name, []).append({
            "wall": wall, "commands": commands, "requests": len(window),
            "failed": len(failed), **(extra or {})})

    def inv_deploy(self, name: str, version: str) -> None:
        start = self.load.now()
        t = time.monotonic()
        proc = self.stack.inv("deploy", "--yes", f"--version={version}")
        wall = time.monotonic() - t
        if proc.returncode != 0:
            raise RuntimeError(f"inv deploy failed:\n{proc.stdout}\n{proc.stderr}")
        self.record(name, start, wall, commands_of(proc.stdout), {"steps": steps_of(proc.stdout)})

    def naive_files(self, version: str) -> Path:
        """A copy of the live release with another image tag: what a naive script ships."""
        current = self.stack.app_dir / "current"
        target = self.work / f"naive-{version}"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(current, target)
        compose = target / "compose.yml"
        compose.write_text(re.sub(rf'image: "{APP}:\w+"', f'image: "{APP}:{version}"',
                                  compose.read_text()))
        return target

    def naive_local(self, version: str) -> None:
        files = self.naive_files(version)
        start = self.load.now()
        t = time.monotonic()
        subprocess.run(["docker", "compose", "-f", str(files / "compose.yml"), "up", "-d",
                        "--wait"], check=True, capture_output=True)
        self.record(NAIVE_LOCAL, start, time.monotonic() - t, 0)

    def naive_ssh(self, version: str) -> None:
        files = self.naive_files(version)
        remote = self.work / f"remote-{version}"
        start = self.load.now()
        t = time.monotonic()
        tar = subprocess.run(["tar", "-C", str(files), "-cf", "-", "."], check=True,
                             capture_output=True).stdout
        subprocess.run(ssh_argv(self.server, f"mkdir -p {remote} && tar -xf - -C {remote}"),
                       input=tar, check=True, capture_output=True)
        subprocess.run(ssh_argv(self.server,
                                f"docker compose -f {remote}/compose.yml up -d --wait"),
                       check=True, capture_output=True)
        self.record(NAIVE_SSH, start,
                    time.monotonic() - t, 2)


def swarm_floor(node: Any, service: str, versions: list[str]) -> float:
    """Seconds Swarm itself takes to roll `service` to each of `versions`, median: plain
    `docker service update --image`, until the update completed and every task runs."""
    took = []
    deadline = time.monotonic() + 60
    while True:
        running, _, wanted = node.docker("service", "ls", "--filter", f"name={service}",
                                         "--format", "{{.Replicas}}").partition("/")
        if running == wanted and running not in ("", "0"):
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"{service} never started")
        time.sleep(0.2)
    status = "{{if .UpdateStatus}}{{.UpdateStatus.StartedAt}}|{{.UpdateStatus.State}}{{end}}"
    for version in versions:
        before = node.docker("service", "inspect", "--format", status, service).split("|")[0]
        t = time.monotonic()
        node.docker("service", "update", "--detach", "--no-resolve-image", "--image",
                    f"{APP}:{version}", service)
        while True:
            started, _, state = node.docker("service", "inspect", "--format", status,
                                            service).partition("|")
            if started != before and state == "completed":
                break
            if time.monotonic() - t > 120:
                raise TimeoutError(f"{service} did not converge: {state}")
            time.sleep(0.1)
        took.append(time.monotonic() - t)
    return median(took)


def swarm_bench(runs: int, replicas: int, rate: float) -> tuple[Bench, float, dict[str, Any]]:
    """`inv deploy` on a two-node swarm, rolling and no change; its floor."""
    from tests.support.front import _UnixHTTPConnection
    from tests.support.swarm import SwarmBed
    from tests.support.swarm_front import SwarmFront
    from tests.swarm.stack import SwarmStack

    bed = SwarmBed.create(2, images=[f"{APP}:v1", f"{APP}:v2"])
    work = Path(tempfile.mkdtemp(prefix="bench-swarm-"))
    stack = SwarmStack.create(work, bed)
    front: SwarmFront | None = None
    cid = ""
    try:
        settings = {"app": {"migrate_command": [], "replicas": replicas, "healthcheck": HEALTH,
                            "stop_grace_period": GRACE},
                    "deploy": {"traefik_throttle": SWARM_THROTTLE, "drain_margin": MARGIN,
                               "swarm": {"refresh_seconds": SWARM_REFRESH}}}
        stack.write_env(overrides=settings)
        for task in ("setup", "deploy"):
            proc = stack.inv(task, *(["--yes", "--version=v1"] if task == "deploy" else []))
            if proc.returncode != 0:
                raise RuntimeError(f"swarm {task}: {proc.stdout}\n{proc.stderr}")
        cid, netns = stack.manager.idle_container(stack.network, f"{APP}:v1")
        front = SwarmFront(manager_socket=str(stack.manager.socket), dial_from=netns,
                           project=stack.project, refresh=SWARM_REFRESH,
                           throttle=SWARM_THROTTLE).start()
        front.wait_for(lambda t: len(t.servers_for(DOMAIN)) == replicas, timeout=30)
        smoke = {"urls": [f"{front.url}/health"], "host_header": DOMAIN,
                 "checks": SMOKE_CHECKS, "interval": SMOKE_INTERVAL}
        stack.write_env(overrides={**settings, "deploy": {**settings["deploy"],
                                                           "smoke": smoke}})
        with LoadGenerator(f"{front.url}/version", host=DOMAIN, rate=rate,
                           max_seconds=3600) as load:
            bench = Bench(stack, None, load, work)  # type: ignore[arg-type]
            version = "v1"
            for _ in range(runs):
                version = "v2" if version == "v1" else "v1"
                bench.inv_deploy(SWARM_ROLLING, version)
                bench.inv_deploy(SWARM_NO_CHANGE, version)
        # The floor, on a copy of the web service (same spec) beside the stack's.
        spec = stack.manager.docker("service", "inspect", "--format",
                                    "{{json .Spec}}", stack.web)
        floor_service = f"{stack.project}_floor"
        data = json.loads(spec)
        data["Name"] = floor_service
        data["Labels"] = {}
        api = _UnixHTTPConnection(str(stack.manager.socket), 30)
        api.request("POST", "/v1.41/services/create", json.dumps(data),
                    {"Content-Type": "application/json"})
        created = api.getresponse()
        if created.status != 201:
            raise RuntimeError(f"creating {floor_service}: {created.read()!r}")
        api.close()
        first = "v1" if data["TaskTemplate"]["ContainerSpec"]["Image"].endswith(":v2") else "v2"
        other = {"v1": "v2", "v2": "v1"}
        floor = swarm_floor(stack.manager, floor_service,
                            [first if i % 2 == 0 else other[first] for i in range(runs)])
        parts = {"update": floor, "settle": SWARM_REFRESH + SWARM_THROTTLE + MARGIN}
    finally:
        if front is not None:
            front.stop()
        if cid:
            stack.manager.docker("rm", "-f", cid, check=False)
        stack.cleanup()
        bed.close()
        shutil.rmtree(work, ignore_errors=True)
    return bench, parts["update"] + parts["settle"], parts


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--rate", type=float, default=25.0)
    parser.add_argument("--no-swarm", action="store_true",
                        help="leave out the rows of the two-node swarm")
    args = parser.parse_args()
    console = Console(width=150)

    with bench_stack("bench-deploy-", THROTTLE) as (stack, server, front, work):
        proc = stack.inv("setup")
        if proc.returncode != 0:
            raise RuntimeError(f"setup: {proc.stdout}\n{proc.stderr}")
        stack.write_env(overrides={
            "app": {"migrate_command": [], "replicas": args.replicas, "healthcheck": HEALTH,
                    "stop_grace_period": GRACE},
            "deploy": {"traefik_throttle": THROTTLE, "drain_margin": MARGIN, "smoke": {
                "urls": [f"{front.url}/health"], "host_header": DOMAIN,
                "checks": SMOKE_CHECKS, "interval": SMOKE_INTERVAL}},
        })
        proc = stack.inv("deploy", "--yes", "--version=v1")
        if proc.returncode != 0:
            raise RuntimeError(f"deploy: {proc.stdout}\n{proc.stderr}")
        front.wait_for(lambda t: len(t.servers_for(DOMAIN)) == args.replicas, timeout=30)
        floors = [measure_floor(args.replicas) for _ in range(args.runs)]
        with LoadGenerator(f"{front.url}/version", host=DOMAIN, rate=args.rate,
                           max_seconds=3600) as load:
            bench = Bench(stack, server, load, work)
            version = "v1"
            for _ in range(args.runs):
                version = "v2" if version == "v1" else "v1"
                bench.inv_deploy(ROLLING, version)
                bench.inv_deploy(NO_CHANGE, version)
                version = "v2" if version == "v1" else "v1"
                bench.naive_local(version)
                version = "v2" if version == "v1" else "v1"
                bench.naive_ssh(version)
            total = load.results()

    swarm_parts: dict[str, Any] = {}
    if not args.no_swarm:
        swarm, swarm_floor_s, swarm_parts = swarm_bench(args.runs, args.replicas, args.rate)
        bench.rows.update(swarm.rows)
    floor = {k: median([f[k] for f in floors]) for k in floors[0]}
    rolling_floor = floor["healthy"] + floor["unhealthy"] + floor["settle"] + floor["stop"]
    recreate_floor = floor["stop"] + floor["healthy"]
    smoke_wait = (SMOKE_CHECKS - 1) * SMOKE_INTERVAL
    floors_by_name = {
        ROLLING: rolling_floor,
        NO_CHANGE: 0.0,
        NAIVE_LOCAL: recreate_floor,
        NAIVE_SSH: recreate_floor,
    }
    if swarm_parts:
        floors_by_name[SWARM_ROLLING] = swarm_floor_s
        floors_by_name[SWARM_NO_CHANGE] = 0.0
    configured = {ROLLING: smoke_wait, SWARM_ROLLING: smoke_wait}
    ours = median([r["wall"] for r in bench.rows[ROLLING]])
    table = Table(title=f"deploy benchmark: median of {args.runs} runs, {args.replicas} web "
                        f"replicas, {args.rate:g} req/s through the Traefik stand-in")
    for col in ("approach", "wall", "health-bound floor", "smoke wait", "tool overhead",
                "SSH commands", "failed requests", "wall / rolling"):
        table.add_column(col, justify="left" if col == "approach" else "right")
    summary: dict[str, Any] = {"floor": floor, "rows": bench.rows, "requests": len(total)}
    for name, rows in bench.rows.items():
        wall = median([r["wall"] for r in rows])
        fl = floors_by_name[name]
        cmds = sorted({r["commands"] for r in rows})
        failed = sum(r["failed"] for r in rows)
        requests = sum(r["requests"] for r in rows)
        waits = configured.get(name, 0.0)
        table.add_row(name, f"{wall:.2f}s", f"{fl:.2f}s", f"{waits:.2f}s",
                      f"{wall - fl - waits:+.2f}s", "/".join(map(str, cmds)),
                      f"{failed}/{requests}", f"{wall / ours:.2f}x")
        summary.setdefault("table", []).append({
            "approach": name, "wall": wall, "floor": fl, "smoke_wait": waits,
            "overhead": wall - fl - waits, "commands": cmds, "failed": failed,
            "requests": requests})
    console.print(table)
    console.print(
        f"floor parts (median): healthy {floor['healthy']:.2f}s, drain until unhealthy "
        f"{floor['unhealthy']:.2f}s, throttle+margin {floor['settle']:.2f}s, graceful stop "
        f"{floor['stop']:.2f}s")
    if swarm_parts:
        console.print(f"swarm floor parts (median): Swarm's own rolling update "
                      f"{swarm_parts['update']:.2f}s, until the provider's next poll "
                      f"(refresh+throttle+margin) {swarm_parts['settle']:.2f}s")
        summary["swarm_floor"] = swarm_parts
    steps: dict[str, list[float]] = {}
    for row in bench.rows[ROLLING]:
        for step, seconds in row["steps"].items():
            steps.setdefault(step, []).append(seconds)
    console.print("rolling deploy steps (median): " + ", ".join(
        f"{step} {median(values):.2f}s" for step, values in steps.items()))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench_deploy.json").write_text(json.dumps(summary, indent=2, default=str))


if __name__ == "__main__":
    main()
