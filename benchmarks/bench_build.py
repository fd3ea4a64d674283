#!/usr/bin/env python3
"""Benchmark `inv build --push` against plain `docker build` + `docker push`, in one run.

    .venv/bin/python benchmarks/bench_build.py [--runs 3]

Starts what it needs from the test bed: the Docker Engine with buildx and the Python base
image (`tests/support/images.py`), and a registry with TLS and htpasswd in its own network
namespace (`tests/support/registry.py`). The app is the roster app (`examples/roster-api/`),
copied into a fresh git repository per run; every run pushes to fresh repository names, so
"cold" means nothing in the registry either. Per run, for each tool, in alternating order:

- cold: an emptied local build cache (`docker builder prune -af`, the image removed), build
  and push;
- rebuild: one changed source line (a new commit), the local build cache emptied again,
  build and push. `inv build` pulls its cache from the registry (`IMAGE:buildcache`, inline
  cache with the default `docker` driver); plain `docker build` has none, so its rebuild is
  a cold build.

Pip downloads the app's wheels from PyPI in every cold build (BuildKit's cache mount goes
with the pruned cache), as it does on a fresh CI runner. Prints the medians and the ratio of
each row to the plain rebuild; the target is inv's rebuild <= 0.3 x plain's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from tests.support.docker import docker  # noqa: E402
from tests.support.images import PYTHON_TAG, ROSTER_DIR, ensure_images  # noqa: E402
from tests.support.registry import Registry, start_registry  # noqa: E402

INV = str(Path(sys.executable).with_name("inv"))
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=bench", "-c",
                    "user.email=bench@example.com", *args], check=True, capture_output=True)


def fresh_cache(image: str) -> None:
    """What a new CI runner has: no build cache, no local copy of the image."""
    docker("builder", "prune", "-af")
    for ref in docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", image).split():
        docker("rmi", "-f", ref, check=False)


def change_one_line(src: Path, n: int) -> None:
    path = src / "roster_api" / "__init__.py"
    path.write_text(path.read_text() + f"\n# bench change {n}\n")
    git(src, "commit", "-qam", f"change {n}")


class Workspace:
    """A git checkout of the roster app and an environment building it into the registry."""

    def __init__(self, registry: Registry, base: Path, name: str) -> None:
        self.registry = registry
        self.root = base / name
        self.src = self.root / "src"
        shutil.copytree(ROSTER_DIR, self.src,
                        ignore=shutil.ignore_patterns("__pycache__", ".*_cache", "tests"))
        git(self.src, "init", "-q")
        git(self.src, "add", "-A")
        git(self.src, "commit", "-qm", "roster")
        self.image = f"{registry.server}/bench-{name}-{uuid.uuid4().hex[:6]}"
        (self.root / "environments").mkdir()
        env = {
            "project": "bench", "app": {
                "name": "web", "image": self.image, "tag": "unset",
                "build": {"context": "src", "args": {"BASE_IMAGE": PYTHON_TAG},
                          "secrets": {"pip_ca": CA_BUNDLE}}},
            "domains": ["bench.test"],
            "hosts": [{"address": "127.0.0.1"}],
            "traefik": {"enabled": False, "acme_email": "ops@example.com"},
            "database": {"url": {"secret": "BENCH_DATABASE_URL"}},
            "registry": {"server": registry.server, "username": registry.username,
                         "password": {"secret": "BENCH_REGISTRY_PASSWORD"},
                         "ca_file": str(registry.ca_file)},
        }
        (self.root / "environments" / "bench.yaml").write_text(yaml.safe_dump(env))

    def inv_build(self) -> float:
        environ = {**os.environ, "DEPLOY_ENVIRONMENTS_DIR": str(self.root / "environments"),
                   "BENCH_DATABASE_URL": "postgresql://u:p@db.example:5432/d?sslmode=require",
                   "BENCH_REGISTRY_PASSWORD": self.registry.password, "NO_COLOR": "1"}
        started = time.monotonic()
        proc = subprocess.run([INV, "build", "--env=bench", "--push"], cwd=ROOT, env=environ,
                              capture_output=True, text=True, check=False)
        took = time.monotonic() - started
        if proc.returncode != 0:
            raise SystemExit(f"inv build failed:\n{proc.stdout}\n{proc.stderr}")
        return took

    def plain_build(self, tag: str) -> float:
        """`docker build` + `docker push`, logged in the usual way (a throwaway config)."""
        config = Path(tempfile.mkdtemp(prefix="bench-docker-"))
        plugins = Path.home() / ".docker" / "cli-plugins"
        if plugins.exists():
            (config / "cli-plugins").symlink_to(plugins)
        environ = {**os.environ, "DOCKER_CONFIG": str(config)}
        ref = f"{self.image}:{tag}"
        try:
            subprocess.run(["docker", "login", "-u", self.registry.username, "--password-stdin",
                            self.registry.server], input=self.registry.password, text=True,
                           env=environ, check=True, capture_output=True)
            started = time.monotonic()
            subprocess.run(["docker", "build", "-q", "-t", ref, "--build-arg",
                            f"BASE_IMAGE={PYTHON_TAG}", "--secret",
                            f"id=pip_ca,src={CA_BUNDLE}", str(self.src)],
                           env=environ, check=True, capture_output=True)
            subprocess.run(["docker", "push", "-q", ref], env=environ, check=True,
                           capture_output=True)
            return time.monotonic() - started
        finally:
            shutil.rmtree(config, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    ensure_images()
    registry = start_registry()
    times: dict[str, list[float]] = {k: [] for k in
                                     ("inv cold", "inv rebuild", "plain cold", "plain rebuild")}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-build-") as tmp:
            for run in range(args.runs):
                ours = Workspace(registry, Path(tmp), f"inv{run}")
                plain = Workspace(registry, Path(tmp), f"plain{run}")
                order = [("inv", ours), ("plain", plain)]
                if run % 2:
                    order.reverse()
                for phase in ("cold", "rebuild"):
                    for tool, ws in order:
                        if phase == "rebuild":
                            change_one_line(ws.src, run)
                        fresh_cache(ws.image)
                        took = ws.inv_build() if tool == "inv" else ws.plain_build(phase)
                        times[f"{tool} {phase}"].append(took)
                        print(f"run {run + 1}: {tool} {phase}: {took:.1f}s", file=sys.stderr)
    finally:
        registry.stop()
    medians = {k: statistics.median(v) for k, v in times.items()}
    base = medians["plain rebuild"]
    table = Table(title=f"build benchmark: roster app, build + push to a TLS registry, "
                        f"median of {args.runs} runs, emptied local build cache each time")
    for column in ("approach", "median", "min-max", "vs plain rebuild", "target"):
        table.add_column(column, justify="left" if column == "approach" else "right")
    rows = [
        ("inv build --push: cold", "inv cold", ""),
        ("inv build --push: rebuild, one changed line", "inv rebuild",
         "<= 0.30 " + ("met" if medians["inv rebuild"] <= 0.3 * base else "MISSED")),
        ("docker build + docker push: cold", "plain cold", ""),
        ("docker build + docker push: rebuild, one changed line", "plain rebuild", ""),
    ]
    for label, key, target in rows:
        values = times[key]
        table.add_row(label, f"{medians[key]:.1f}s", f"{min(values):.1f}-{max(values):.1f}s",
                      f"{medians[key] / base:.2f}", target)
    Console().print(table)


if __name__ == "__main__":
    main()
