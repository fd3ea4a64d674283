"""A Swarm environment on the test bed: its first node the manager, its second a worker, a
throwaway project, network and app directory, and the real `inv` CLI run against it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.helpers import INV, PROJECT_ROOT, deep_merge, run_inv
from tests.support.docker import unique_name
from tests.support.images import APP_HEALTH_COMMAND
from tests.support.swarm import SwarmBed, SwarmNode

DOMAIN = "roster.test"
APP = "shipyard-test/app"
DB_URL = "postgresql://app:swarm-secret-pw@db.example.com:5432/app?sslmode=require"
SECRETS = {"SWARM_DATABASE_URL": DB_URL, "SWARM_API_TOKEN": "tok-swarm-0123456789"}
REFRESH = 2.0
THROTTLE = 1.0
RETRY_ATTEMPTS = 5
DIAL_TIMEOUT = 1.0


def host_entry(node: SwarmNode, role: str, **extra: Any) -> dict[str, Any]:
    assert node.ssh is not None
    return {"address": node.address, "port": node.ssh.port, "user": node.ssh.user,
            "key_file": str(node.ssh.key_file), "known_hosts": str(node.ssh.known_hosts),
            "role": role, **extra}


@dataclass
class SwarmStack:
    root: Path
    project: str
    bed: SwarmBed

    @classmethod
    def create(cls, root: Path, bed: SwarmBed) -> SwarmStack:
        stack = cls(root=root, project=unique_name("sw").replace("-", ""), bed=bed)
        stack.env_dir.mkdir(parents=True, exist_ok=True)
        stack.write_env()
        return stack

    @property
    def manager(self) -> SwarmNode:
        return self.bed.nodes[0]

    @property
    def worker(self) -> SwarmNode:
        return self.bed.nodes[1]

    @property
    def env_dir(self) -> Path:
        return self.root / "environments"

    @property
    def app_dir(self) -> Path:
        return self.root / "host" / "app"

    @property
    def network(self) -> str:
        return f"{self.project}-net"

    @property
    def web(self) -> str:
        return f"{self.project}_web"

    def base(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "app": {
                "name": "web", "image": APP, "tag": "v1", "replicas": 2,
                "command": ["/app/serve"], "migrate_command": ["/app/migrate"],
                "healthcheck": {"interval": 1, "timeout": 2, "retries": 2, "start_period": 3,
                                "command": APP_HEALTH_COMMAND},
                "stop_grace_period": 3, "resources": {"cpus": 0.5, "memory": "64m"},
                "secret_env": {"API_TOKEN": {"secret": "SWARM_API_TOKEN"}},
            },
            "domains": [DOMAIN],
            "hosts": [host_entry(self.manager, "manager"), host_entry(self.worker, "worker")],
            "deploy": {
                "engine": "swarm", "app_dir": str(self.app_dir), "network": self.network,
                "keep_releases": 3, "traefik_throttle": THROTTLE, "drain_margin": 1.0,
                "health_timeout": 20,
                "smoke": {"interval": 0.2, "checks": 2, "failures": 3, "window": 30},
                "swarm": {"refresh_seconds": REFRESH, "monitor": 2, "resolve_image": "never",
                          "retry_attempts": RETRY_ATTEMPTS, "dial_timeout": DIAL_TIMEOUT},
            },
            "traefik": {"enabled": False, "acme_email": "ops@example.com"},
            "database": {"url": {"secret": "SWARM_DATABASE_URL"}},
        }

    def write_env(self, name: str = "sw", overrides: dict[str, Any] | None = None) -> str:
        """Write `<name>.yaml` (the base deep-merged with `overrides`); returns `name`."""
        data = deep_merge(self.base(), overrides or {})
        (self.env_dir / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        return name

    def inv(self, *args: str, env: str = "sw", timeout: float = 300,
            extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """`inv TASK --env=ENV ARGS...`, the way an operator runs it."""
        task, *rest = args
        return run_inv(task, f"--env={env}", *rest, env_dir=self.env_dir, timeout=timeout,
                       extra_env={**SECRETS, **(extra_env or {})})

    def popen(self, *args: str, env: str = "sw") -> subprocess.Popen[str]:
        """`inv` in the background (to act on the swarm while it runs); output merged."""
        task, *rest = args
        environ = {**os.environ, **SECRETS, "NO_COLOR": "1", "COLUMNS": "200",
                   "DEPLOY_ENVIRONMENTS_DIR": str(self.env_dir)}
        return subprocess.Popen([INV, task, f"--env={env}", *rest], cwd=PROJECT_ROOT,
                                env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)

    def tasks(self, service: str = "web") -> list[dict[str, str]]:
        """The service's tasks meant to run: node, state, image."""
        out = self.manager.docker("service", "ps", "--no-trunc", "--filter",
                                  "desired-state=running", "--format", "{{json .}}",
                                  f"{self.project}_{service}", check=False)
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def all_running(self, version: str, count: int = 2) -> bool:
        tasks = self.tasks()
        return len(tasks) == count and all(
            t["Image"].split("@")[0] == f"{APP}:{version}" and t["CurrentState"].startswith(
                "Running") for t in tasks)

    def current(self) -> str | None:
        link = self.app_dir / "current"
        return os.readlink(link).removeprefix("releases/") if link.is_symlink() else None

    def audit(self) -> list[dict[str, Any]]:
        log = self.app_dir / "audit.log"
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]

    def cleanup(self) -> None:
        self.manager.docker("stack", "rm", self.project, check=False)
        shutil.rmtree(self.root / "host", ignore_errors=True)


def output(proc: subprocess.CompletedProcess[str]) -> str:
    return f"{proc.stdout}\n{proc.stderr}"
