"""Docker Engine and Compose v2 for the test bed (TESTBED.md).

`ensure_docker()` starts `dockerd` in the background when no daemon answers and leaves it
running for later sessions; it is safe to call from several processes at once. The helpers
here run the `docker` CLI; objects a test creates carry `TEST_LABEL` so they can be found and
removed.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

DOCKER_SOCK = Path("/var/run/docker.sock")
DOCKER_PIDFILE = Path("/var/run/docker.pid")
DOCKERD_LOG = Path("/tmp/shipyard-dockerd.log")
LOCK_FILE = Path("/tmp/shipyard-dockerd.lock")
START_TIMEOUT = 60.0
TEST_LABEL = "org.shipyard.test"
"""Label key put on containers, networks and volumes that tests create (value: an owner id)."""


class DockerError(RuntimeError):
    """A `docker` command failed; the message holds its stderr."""


@dataclass(frozen=True)
class DockerEngine:
    """A Docker Engine that answers on /var/run/docker.sock, with the Compose v2 plugin."""

    server_version: str
    compose_version: str
    log_file: Path = DOCKERD_LOG


def docker(
    *args: str,
    check: bool = True,
    input: str | None = None,
    timeout: float = 300.0,
    env: Mapping[str, str] | None = None,
) -> str:
    """Run `docker ARGS` and return its stdout without the trailing newline.

    Raises DockerError (with stderr) on a non-zero exit when `check` is true.
    """
    full_env = {**os.environ, **env} if env else None
    proc = subprocess.run(
        ["docker", *args], capture_output=True, text=True, input=input, timeout=timeout,
        env=full_env, check=False,
    )
    if check and proc.returncode != 0:
        raise DockerError(
            f"docker {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}"
        )
    return proc.stdout.rstrip("\n")


def unique_name(prefix: str = "sy") -> str:
    """A name no other test (or concurrent session) uses, valid for containers and projects."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _server_version() -> str | None:
    try:
        proc = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True, text=True, timeout=20, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    version = proc.stdout.strip()
    if proc.returncode != 0 or not version or version == "<no value>":
        return None
    return version


def _compose_version() -> str:
    proc = subprocess.run(
        ["docker", "compose", "version", "--short"], capture_output=True, text=True, check=False,
    )
    version = proc.stdout.strip().lstrip("v")
    if proc.returncode != 0 or not version.startswith("2."):
        raise RuntimeError(
            f"Docker Compose v2 is missing (got {version or proc.stderr.strip()!r}): "
            "run .ci/install-system.sh"
        )
    return version


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on `path` (created if missing) for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _dockerd_alive() -> bool:
    try:
        pid = int(DOCKER_PIDFILE.read_text().strip())
    except (OSError, ValueError):
        return False
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "dockerd"
    except OSError:
        return False


def _wait_for_daemon(timeout: float, log_offset: int) -> str | None:
    """Poll until the daemon answers; None when it gave up (fatal log line) or timed out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if DOCKER_SOCK.exists():
            version = _server_version()
            if version:
                return version
        try:
            with DOCKERD_LOG.open("rb") as log:
                log.seek(log_offset)
                if b"failed to start daemon" in log.read():
                    return None
        except OSError:
            pass
        time.sleep(0.25)
    return None


def _start_dockerd(extra_flags: list[str]) -> str | None:
    if shutil.which("dockerd") is None:
        raise RuntimeError("dockerd not found: run .ci/install-system.sh")
    with DOCKERD_LOG.open("ab") as log:
        offset = log.tell()
        log.write(f"--- shipyard: starting dockerd {' '.join(extra_flags)}\n".encode())
    # setsid -f: dockerd outlives this process and its session (other sessions reuse it).
    subprocess.run(
        ["setsid", "-f", "sh", "-c", 'exec dockerd "$@" >>"$0" 2>&1 </dev/null',
         str(DOCKERD_LOG), *extra_flags],
        check=True,
    )
    return _wait_for_daemon(START_TIMEOUT, offset)


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def ensure_docker() -> DockerEngine:
    """Make sure a Docker Engine with Compose v2 answers; start dockerd if needed.

    dockerd is started with its defaults (overlay2, iptables, bridge networks); should that
    fail, once more with `--iptables=false` (published ports then go through docker-proxy,
    and containers on one user-defined network still reach each other).
    """
    version = _server_version()
    if version is None:
        with file_lock(LOCK_FILE):
            version = _server_version()
            if version is None and _dockerd_alive():
                log_size = DOCKERD_LOG.stat().st_size if DOCKERD_LOG.exists() else 0
                version = _wait_for_daemon(START_TIMEOUT, log_size)
            if version is None:
                DOCKER_PIDFILE.unlink(missing_ok=True)
                version = _start_dockerd([])
            if version is None and not _dockerd_alive():
                version = _start_dockerd(["--iptables=false"])
            if version is None:
                raise RuntimeError(
                    f"dockerd did not come up within {START_TIMEOUT:.0f}s; "
                    f"last lines of {DOCKERD_LOG}:\n{_tail(DOCKERD_LOG)}"
                )
    return DockerEngine(server_version=version, compose_version=_compose_version())


def container_port(container: str, port: int = 8000) -> int:
    """Host port that `container`'s `port`/tcp is published on (on 127.0.0.1)."""
    out = docker("port", container, f"{port}/tcp")
    for line in out.splitlines():
        host, _, host_port = line.rpartition(":")
        if host in ("127.0.0.1", "0.0.0.0"):
            return int(host_port)
    raise DockerError(f"{container} does not publish {port}/tcp on IPv4: {out!r}")


def health_status(container: str) -> str:
    """Docker's health status of `container` ('starting', 'healthy', 'unhealthy' or 'none')."""
    out = docker("inspect", "--format", "{{json .State.Health}}", container)
    state = json.loads(out)
    return str(state["Status"]) if state else "none"


def wait_for_health(container: str, wanted: str, timeout: float = 30.0) -> float:
    """Poll until `container`'s health status is `wanted`; returns the seconds it took."""
    start = time.monotonic()
    status = ""
    while time.monotonic() - start < timeout:
        status = health_status(container)
        if status == wanted:
            return time.monotonic() - start
        time.sleep(0.2)
    raise TimeoutError(f"{container} is {status!r}, not {wanted!r}, after {timeout}s")


def remove_labelled(owner: str) -> None:
    """Remove the containers, networks and volumes labelled `TEST_LABEL=owner`."""
    selector = f"label={TEST_LABEL}={owner}"
    containers = docker("ps", "-aq", "--filter", selector).split()
    if containers:
        docker("rm", "-f", "-v", *containers, check=False)
    networks = docker("network", "ls", "-q", "--filter", selector).split()
    if networks:
        docker("network", "rm", *networks, check=False)
    volumes = docker("volume", "ls", "-q", "--filter", selector).split()
    if volumes:
        docker("volume", "rm", "-f", *volumes, check=False)


def remove_compose_project(project: str) -> None:
    """`docker compose down` for a project by name: its containers, networks and volumes."""
    docker("compose", "-p", project, "down", "-v", "--remove-orphans", "-t", "5", check=False)
