"""Docker Engine + Compose v2 + the fake app image, as the deploy tests will use them."""

from __future__ import annotations

import subprocess
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.docker import (
    TEST_LABEL,
    DockerEngine,
    container_port,
    docker,
    remove_compose_project,
    unique_name,
    wait_for_health,
)
from tests.support.images import APP_HEALTHCHECK, ImageSet

pytestmark = pytest.mark.testbed


def run_app(image: str, owner: str, *extra: str) -> str:
    name = unique_name("app")
    docker(
        "run", "-d", "--name", name, "--label", f"{TEST_LABEL}={owner}",
        "-p", "127.0.0.1::8000",
        "--health-cmd", APP_HEALTHCHECK, "--health-interval", "1s", "--health-timeout", "2s",
        "--health-retries", "1", *extra, image,
    )
    return name


def get(port: int, path: str) -> httpx.Response:
    deadline = time.monotonic() + 10
    while True:
        try:
            return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_engine_and_compose_v2(docker_engine: DockerEngine) -> None:
    assert docker_engine.compose_version.startswith("2.")
    assert docker("info", "--format", "{{.Driver}}") == "overlay2"


def test_app_serves_version_then_drains_and_stops_fast(test_images: ImageSet, owner: str) -> None:
    name = run_app(test_images.app_v1, owner)
    port = container_port(name)

    version = get(port, "/version")
    assert (version.status_code, version.text) == (200, "v1")
    assert version.headers["x-app-version"] == "v1"
    root = get(port, "/")
    assert root.status_code == 200 and "v1" in root.text
    assert get(port, "/health").text == "ok"
    wait_for_health(name, "healthy", timeout=15)

    docker("exec", name, "touch", "/tmp/drain")
    drained = get(port, "/health")
    assert (drained.status_code, drained.text) == (503, "draining")
    wait_for_health(name, "unhealthy", timeout=15)
    assert get(port, "/version").status_code == 200

    started = time.monotonic()
    docker("stop", "-t", "30", name)
    assert time.monotonic() - started < 3
    assert docker("inspect", "--format", "{{.State.ExitCode}}", name) == "0"


def test_stop_lets_in_flight_requests_finish(test_images: ImageSet, owner: str) -> None:
    name = run_app(test_images.app_v1, owner)
    port = container_port(name)
    get(port, "/health")
    with ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(get, port, "/slow?seconds=2")
        time.sleep(0.5)
        started = time.monotonic()
        docker("stop", "-t", "30", name)
        stop_took = time.monotonic() - started
        response = in_flight.result(timeout=10)
    assert (response.status_code, response.text) == (200, "slept 2")
    assert 1.0 < stop_took < 5.0


def test_variants_broken_slow_and_v2(test_images: ImageSet, owner: str) -> None:
    broken = run_app(test_images.app_broken, owner)
    slow = run_app(test_images.app_slow, owner)
    slow_1s = run_app(test_images.app_slow, owner, "-e", "START_DELAY=1")
    v2 = run_app(test_images.app_v2, owner)

    assert get(container_port(v2), "/version").text == "v2"
    assert (get(container_port(broken), "/health").status_code,
            get(container_port(broken), "/version").text) == (503, "broken")
    starting = get(container_port(slow), "/health")
    assert (starting.status_code, starting.text) == (503, "starting")
    env = docker("inspect", "--format", "{{json .Config.Env}}", test_images.app_slow)
    assert "START_DELAY=5" in env

    wait_for_health(slow_1s, "healthy", timeout=15)
    assert get(container_port(slow_1s), "/health").status_code == 200
    wait_for_health(broken, "unhealthy", timeout=15)


def test_migrate_command_logs_and_exits_with_migrate_exit(
    test_images: ImageSet, owner: str
) -> None:
    volume = unique_name("data")
    docker("volume", "create", "--label", f"{TEST_LABEL}={owner}", volume)
    mount = ["-v", f"{volume}:/data", "--label", f"{TEST_LABEL}={owner}"]

    out = docker("run", "--rm", *mount, test_images.app_v2, "/app/migrate")
    assert out.startswith("migrate v2 ")
    failed = subprocess.run(
        ["docker", "run", "--rm", *mount, "-e", "MIGRATE_EXIT=3", test_images.app_v2,
         "/app/migrate"], capture_output=True, text=True, check=False,
    )
    assert failed.returncode == 3
    log = docker("run", "--rm", *mount, test_images.app_v1, "cat", "/data/migrations.log")
    assert [line.split()[:2] for line in log.splitlines()] == [["migrate", "v2"]] * 2
    assert docker("run", "--rm", "--label", f"{TEST_LABEL}={owner}", test_images.app_v1,
                  "/app/migrate").startswith("migrate v1 ")


def test_compose_up_wait_on_a_user_defined_network(
    test_images: ImageSet, tmp_path: Path
) -> None:
    project = unique_name("cp")
    compose = tmp_path / "compose.yml"
    compose.write_text(textwrap.dedent(f"""\
        services:
          web:
            image: {test_images.app_v1}
            networks: [appnet]
            ports: ["127.0.0.1::8000"]
            healthcheck:
              test: ["CMD-SHELL", "{APP_HEALTHCHECK}"]
              interval: 1s
              timeout: 2s
              retries: 2
          probe:
            image: {test_images.app_v2}
            networks: [appnet]
        networks:
          appnet: {{}}
        """))
    base = ["compose", "-p", project, "-f", str(compose)]
    try:
        docker(*base, "up", "-d", "--wait", timeout=120)
        through_network = docker(*base, "exec", "-T", "probe",
                                 "wget", "-q", "-O", "-", "http://web:8000/version")
        assert through_network == "v1"
        published = docker(*base, "port", "web", "8000")
        assert published.startswith("127.0.0.1:")
        assert get(int(published.rsplit(":", 1)[1]), "/version").text == "v1"

        docker(*base, "up", "-d", "--no-deps", "--no-recreate", "--scale", "web=2", "web",
               timeout=120)
        ids = docker(*base, "ps", "-q", "web").split()
        assert len(ids) == 2
        for container in ids:
            wait_for_health(container, "healthy", timeout=20)
    finally:
        remove_compose_project(project)
    assert docker("network", "ls", "-q", "--filter", f"name={project}_appnet") == ""
