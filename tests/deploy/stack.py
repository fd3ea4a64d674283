"""An end-to-end deploy target on the test bed: a throwaway environment (its own Compose
project, network and app directory) whose one host is the test bed's sshd, and helpers that
run the real `inv` CLI against it and look at what it left on the host."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.helpers import INV, PROJECT_ROOT, deep_merge, run_inv
from tests.support.docker import docker, ensure_docker, unique_name
from tests.support.front import Front
from tests.support.heal import stop_watcher
from tests.support.images import APP_HEALTH_COMMAND, ensure_images
from tests.support.sshd import SshHost, SshServer, start_sshd

DOMAIN = "roster.test"
DB_URL = "postgresql://app:e2e-secret-pw@db.example.com:5432/app?sslmode=require"
APP = "shipyard-test/app"




@dataclass
class Stack:
    root: Path
    project: str
    ssh: SshHost

    @classmethod
    def create(cls, tmp_path: Path, ssh: SshHost) -> Stack:
        stack = cls(root=tmp_path, project=unique_name("e2e").replace("-", ""), ssh=ssh)
        stack.env_dir.mkdir(parents=True, exist_ok=True)
        stack.write_env()
        return stack

    @property
    def env_dir(self) -> Path:
        return self.root / "environments"

    @property
    def app_dir(self) -> Path:
        return self.root / "host" / "app"

    @property
    def network(self) -> str:
        return f"{self.project}-net"

    def base(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "app": {
                "name": "web", "image": APP, "tag": "v1", "replicas": 2,
                "migrate_command": ["/app/migrate"],
                "healthcheck": {"interval": 1, "timeout": 1, "retries": 2, "start_period": 3,
                                "command": APP_HEALTH_COMMAND},
                "stop_grace_period": 3, "resources": {"cpus": 0.5, "memory": "64m"},
            },
            "domains": [DOMAIN],
            "hosts": [{"address": self.ssh.address, "port": self.ssh.port, "user": self.ssh.user,
                       "key_file": str(self.ssh.key_file),
                       "known_hosts": str(self.ssh.known_hosts)}],
            "deploy": {
                "app_dir": str(self.app_dir), "network": self.network, "keep_releases": 3,
                "traefik_throttle": 2.0, "drain_margin": 0.5, "health_timeout": 30,
                "smoke": {"interval": 0.2, "checks": 2, "failures": 3, "window": 30},
            },
            "traefik": {"enabled": False, "acme_email": "ops@example.com"},
            "database": {"url": {"secret": "E2E_DATABASE_URL"}},
        }

    def write_env(self, name: str = "e2e", overrides: dict[str, Any] | None = None) -> str:
        """Write `<name>.yaml` (the base deep-merged with `overrides`); returns `name`."""
        data = deep_merge(self.base(), overrides or {})
        (self.env_dir / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        return name

    def inv(self, *args: str, env: str = "e2e", timeout: float = 300,
            extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """`inv TASK --env=ENV ARGS...`, the way an operator runs it."""
        task, *rest = args
        return run_inv(task, f"--env={env}", *rest, env_dir=self.env_dir, timeout=timeout,
                       extra_env={"E2E_DATABASE_URL": DB_URL, **(extra_env or {})})

    def popen(self, *args: str, env: str = "e2e") -> subprocess.Popen[str]:
        """The same, in the background (to interrupt it)."""
        task, *rest = args
        environ = dict(os.environ)
        environ.update({"NO_COLOR": "1", "COLUMNS": "200", "E2E_DATABASE_URL": DB_URL,
                        "DEPLOY_ENVIRONMENTS_DIR": str(self.env_dir)})
        return subprocess.Popen([INV, task, f"--env={env}", *rest], cwd=PROJECT_ROOT,
                                env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)

    def containers(self, service: str = "web") -> list[dict[str, str]]:
        """The service's containers: id, image, state, health, release."""
        ids = docker("ps", "-aq", "--no-trunc", "--filter",
                     f"label=com.docker.compose.project={self.project}", "--filter",
                     f"label=com.docker.compose.service={service}", "--filter",
                     "label=com.docker.compose.oneoff=False").split()
        if not ids:
            return []
        found = []
        for item in json.loads(docker("inspect", *ids)):
            health = (item["State"].get("Health") or {}).get("Status", "none")
            found.append({"id": item["Id"], "image": item["Config"]["Image"],
                          "state": item["State"]["Status"], "health": health,
                          "config": item["Config"]["Labels"].get(
                              "com.docker.compose.project.config_files", "")})
        return found

    def images(self) -> list[str]:
        return sorted(c["image"] for c in self.containers())

    def all_serving(self, image: str, count: int = 2) -> bool:
        web = self.containers()
        return len(web) == count and all(
            c["image"] == image and c["state"] == "running" and c["health"] == "healthy"
            for c in web)

    def current(self) -> str | None:
        link = self.app_dir / "current"
        return os.readlink(link).removeprefix("releases/") if link.is_symlink() else None

    def releases(self) -> list[str]:
        base = self.app_dir / "releases"
        return sorted(p.name for p in base.iterdir()) if base.exists() else []

    def audit(self) -> list[dict[str, Any]]:
        log = self.app_dir / "audit.log"
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]

    def locked(self) -> bool:
        return (self.app_dir / "lock").exists()

    def phase(self) -> str | None:
        """The name of the deploy phase running on the host now, if any."""
        try:
            return (self.app_dir / "lock" / "phase.pid").read_text().split()[1]
        except (OSError, IndexError):
            return None

    def cleanup(self) -> None:
        stop_watcher(self.app_dir)
        ids = docker("ps", "-aq", "--filter",
                     f"label=com.docker.compose.project={self.project}").split()
        if ids:
            docker("rm", "-f", "-v", *ids, check=False)
        docker("network", "rm", self.network, check=False)
        docker("network", "rm", f"{self.project}_backend", check=False)
        docker("volume", "rm", f"{self.project}_pgdata", check=False)
        shutil.rmtree(self.root / "host", ignore_errors=True)


def wait_for(predicate: Callable[[], bool], timeout: float, what: str,
             every: float = 0.1) -> None:
    """Poll `predicate` every `every` seconds until it holds; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


def output(proc: subprocess.CompletedProcess[str]) -> str:
    """Everything an operator saw (stdout then stderr), for assertions and messages."""
    return f"{proc.stdout}\n{proc.stderr}"


@contextmanager
def bench_stack(prefix: str, throttle: float) -> Iterator[tuple[Stack, SshServer, Front, Path]]:
    """For benchmarks, outside pytest: the Docker Engine and images, a throwaway sshd host, a
    Stack in a new temporary directory and the Traefik stand-in started for its project;
    (stack, sshd, front, directory), all stopped and removed after."""
    ensure_docker()
    ensure_images()
    server = start_sshd()
    work = Path(tempfile.mkdtemp(prefix=prefix))
    stack = Stack.create(work, server.host)
    front: Front | None = None
    try:
        front = Front(project=stack.project, throttle=throttle, network=stack.network).start()
        yield stack, server, front, work
    finally:
        if front is not None:
            front.stop()
        stack.cleanup()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
