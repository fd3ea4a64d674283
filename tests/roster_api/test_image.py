"""The roster app's image as the test bed builds it (`shipyard-test/roster:*`): what is in it,
migrate-then-serve on a SQLite volume, the previous release against the new schema, the fault
variant, and `docker stop` with a request in flight."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.support.docker import (
    TEST_LABEL,
    container_port,
    docker,
    remove_labelled,
    unique_name,
    wait_for_health,
)
from tests.support.images import ROSTER_HEALTHCHECK, ImageSet

pytestmark = pytest.mark.testbed

SQLITE_URL = "sqlite:////data/roster.db"


@pytest.fixture
def owner() -> Iterator[str]:
    value = unique_name("roster")
    yield value
    remove_labelled(value)


@pytest.fixture
def volume(owner: str) -> str:
    name = unique_name("roster-data")
    docker("volume", "create", "--label", f"{TEST_LABEL}={owner}", name)
    return name


def migrate(image: str, volume: str, owner: str) -> str:
    """The deploy's migration step: `alembic upgrade head` in a one-off container."""
    return docker("run", "--rm", "--label", f"{TEST_LABEL}={owner}", "-v", f"{volume}:/data",
                  "-e", f"DATABASE_URL={SQLITE_URL}", image, "alembic", "upgrade", "head")


def serve(image: str, volume: str, owner: str, *env: str) -> tuple[str, str]:
    """Start `image` on the volume with a fast healthcheck; (container, base URL) once healthy."""
    name = unique_name("roster")
    docker("run", "-d", "--name", name, "--label", f"{TEST_LABEL}={owner}",
           "-v", f"{volume}:/data", "-p", "127.0.0.1::8000", "-e", f"DATABASE_URL={SQLITE_URL}",
           "--health-interval", "1s", "--health-retries", "1", "--health-start-period", "20s",
           *(arg for pair in env for arg in ("-e", pair)), image)
    wait_for_health(name, "healthy", timeout=60)
    return name, f"http://127.0.0.1:{container_port(name)}"


def until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_image_is_lean_and_runs_as_non_root(test_images: ImageSet) -> None:
    config = json.loads(docker("image", "inspect", "--format", "{{json .Config}}",
                               test_images.roster_v2))
    assert config["User"] == "10001:10001"
    assert config["ExposedPorts"] == {"8000/tcp": {}}
    assert config["Cmd"] == ["python", "-m", "roster_api"]
    assert config["Healthcheck"]["Test"] == ["CMD", *ROSTER_HEALTHCHECK.split()]
    assert "PYTHONUNBUFFERED=1" in config["Env"] and "APP_VERSION=v2" in config["Env"]
    found = docker("run", "--rm", test_images.roster_v2, "sh", "-c",
                   "id -u; stat -c %U /data; for tool in wget curl gcc cc make pip apt-get; "
                   "do command -v $tool || true; done; python -m pip --version 2>&1 || true")
    lines = found.splitlines()
    assert lines[:2] == ["10001", "app"]
    assert lines[2:-1] == ["/usr/bin/apt-get"], "no download tool, compiler or pip"
    assert "No module named pip" in lines[-1]


def test_migrate_then_serve_on_a_sqlite_volume(test_images: ImageSet, owner: str,
                                               volume: str) -> None:
    migrate(test_images.roster_v2, volume, owner)
    name, url = serve(test_images.roster_v2, volume, owner, "APP_VERSION=v2.0.1")
    assert httpx.get(f"{url}/version").json() == {"version": "v2.0.1", "alembic_head": "0002"}
    assert httpx.get(f"{url}/health").json() == {"status": "ok", "database": "ok"}
    assert httpx.post(f"{url}/organizations", json={"id": "o1", "name": "G"}).status_code == 201
    person = httpx.post(f"{url}/people", json={"org_id": "o1", "name": "Ana", "phone": "555"})
    assert person.status_code == 201 and person.json()["phone"] == "555"

    docker("exec", name, "touch", "/tmp/drain")
    assert httpx.get(f"{url}/health").json()["failing"] == "draining"
    wait_for_health(name, "unhealthy", timeout=15)


def test_the_previous_release_serves_on_the_new_schema(test_images: ImageSet, owner: str,
                                                       volume: str) -> None:
    """A rolling deploy: v1 serves while v2's migration runs, and keeps serving afterwards."""
    migrate(test_images.roster_v1, volume, owner)
    _, url = serve(test_images.roster_v1, volume, owner)
    assert httpx.get(f"{url}/version").json() == {"version": "v1", "alembic_head": "0001"}
    assert httpx.post(f"{url}/organizations", json={"id": "o1", "name": "G"}).status_code == 201
    before = httpx.post(f"{url}/people", json={"org_id": "o1", "name": "Ana"})
    assert before.status_code == 201 and "phone" not in before.json()

    assert "Running upgrade 0001 -> 0002" in docker(
        "run", "--rm", "-v", f"{volume}:/data", "-e", f"DATABASE_URL={SQLITE_URL}",
        "--label", f"{TEST_LABEL}={owner}", test_images.roster_v2, "sh", "-c",
        "alembic upgrade head 2>&1")
    after = httpx.post(f"{url}/people", json={"org_id": "o1", "name": "Bo"})
    assert after.status_code == 201, after.text
    assert [p["name"] for p in httpx.get(f"{url}/people").json()["items"]] == ["Ana", "Bo"]


def test_broken_api_passes_health_and_fails_its_api(test_images: ImageSet, owner: str,
                                                    volume: str) -> None:
    migrate(test_images.roster_broken_api, volume, owner)
    _, url = serve(test_images.roster_broken_api, volume, owner)
    assert httpx.get(f"{url}/health").status_code == 200
    assert httpx.get(f"{url}/version").json()["version"] == "broken-api"
    assert httpx.get(f"{url}/people").status_code == 500


def test_docker_stop_lets_the_request_in_flight_finish(test_images: ImageSet, owner: str,
                                                       volume: str) -> None:
    migrate(test_images.roster_v2, volume, owner)
    name, url = serve(test_images.roster_v2, volume, owner, "ROSTER_DEBUG_ROUTES=1",
                      "WEB_CONCURRENCY=2")
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(httpx.get, f"{url}/debug/sleep?seconds=3", timeout=30)
        # Two workers: ask until the one serving the slow request answers.
        until(lambda: httpx.get(f"{url}/debug/sleeping").json()["sleeping"] == 1, 10,
              "the slow request never arrived")
        started = time.monotonic()
        docker("stop", "-t", "30", name)
        stop_took = time.monotonic() - started
        response = slow.result()
    assert (response.status_code, response.json()) == (200, {"slept": 3.0})
    assert stop_took < 10, f"docker stop took {stop_took:.1f} s: shutdown was not prompt"
    state = json.loads(docker("inspect", "--format", "{{json .State}}", name))
    assert state["ExitCode"] in (0, 143) and not state["OOMKilled"]
    logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True,
                          check=True).stderr
    assert logs.count("Shutting down") == 2, logs
    assert "Stopping parent process" in logs
