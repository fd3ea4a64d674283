"""`inv deploy --env=local`: the shipped local environment (the local transport, no SSH, the
roster app with a PostgreSQL service in the stack) deploying to this machine's Docker Engine,
as the README's main-job command does: its Alembic migrations run as the one-off migration
step, the smoke test checks each container on the Docker network, and the app answers.
Only its names and app directory are changed for the test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.stack import output
from tests.helpers import env_tree, run_inv
from tests.support.docker import DockerEngine, docker, unique_name
from tests.support.images import PYTHON_TAG, ImageSet

ROSTER_V1, ROSTER_V2 = "shipyard-test/roster:v1", "shipyard-test/roster:v2"

pytestmark = pytest.mark.e2e


@pytest.fixture
def local_env(test_images: ImageSet, docker_engine: DockerEngine,
              tmp_path: Path) -> Iterator[tuple[Path, str]]:
    project = unique_name("local").replace("-", "")
    root = env_tree(tmp_path, {"local": {
        "project": project,
        "app": {"tag": "v1"},
        "deploy": {"app_dir": str(tmp_path / "app"), "network": f"{project}-net"},
    }})
    yield root, project
    ids = docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={project}").split()
    if ids:
        docker("rm", "-f", "-v", *ids, check=False)
    for network in (f"{project}-net", f"{project}_backend"):
        docker("network", "rm", network, check=False)
    docker("volume", "rm", f"{project}_pgdata", check=False)


def images(project: str, service: str) -> list[str]:
    """`IMAGE STATUS ID` of the service's running containers."""
    out = docker("ps", "--filter", f"label=com.docker.compose.project={project}", "--filter",
                 f"label=com.docker.compose.service={service}", "--format",
                 "{{.Image}} {{.Status}} {{.ID}}")
    return sorted(out.splitlines())


def ask(project: str, path: str, method: str = "GET", body: str = "") -> tuple[int, str]:
    """Request `path` from the web service on the stack's network, as the README shows."""
    script = ("import sys, urllib.request as u, urllib.error as e\n"
              "r = u.Request(sys.argv[1], method=sys.argv[2], data=sys.argv[3].encode() or None,"
              " headers={'Content-Type': 'application/json'})\n"
              "try:\n    x = u.urlopen(r, timeout=10); print(x.status, x.read().decode())\n"
              "except e.HTTPError as err:\n    print(err.code, err.read().decode())\n")
    out = docker("run", "--rm", "--network", f"{project}-net", PYTHON_TAG, "python3", "-c",
                 script, f"http://web:8000{path}", method, body)
    code, _, text = out.partition(" ")
    return int(code), text


def test_deploy_env_local_runs_the_roster_app_on_its_database(
        local_env: tuple[Path, str]) -> None:
    root, project = local_env
    setup = run_inv("setup", "--env=local", env_dir=root)
    assert setup.returncode == 0, output(setup)
    first = run_inv("deploy", "--env=local", "--yes", env_dir=root)
    assert first.returncode == 0, output(first)
    assert "services: db" in first.stdout
    assert "migrate: alembic upgrade head" in first.stdout
    assert "smoke test: 5 good rounds" in first.stdout, "the smoke test must not be skipped"
    assert [line.split()[0] for line in images(project, "web")] == [ROSTER_V1] * 2
    db = images(project, "db")
    assert len(db) == 1 and "(healthy)" in db[0]
    assert (root.parent / ".env.local").stat().st_mode & 0o777 == 0o600
    assert ask(project, "/version")[1] == '{"version":"v1","alembic_head":"0001"}'
    code, created = ask(project, "/organizations", "POST",
                        '{"id": "org_local", "name": "Local", "region": null}')
    assert code == 201, created

    second = run_inv("deploy", "--env=local", "--yes", "--version=v2", env_dir=root)
    assert second.returncode == 0, output(second)
    assert "services:" not in second.stdout
    assert "migrate: alembic upgrade head" in second.stdout
    assert [line.split()[0] for line in images(project, "web")] == [ROSTER_V2] * 2
    assert [line.split()[-1] for line in images(project, "db")] == [db[0].split()[-1]]
    assert ask(project, "/version")[1] == '{"version":"v2","alembic_head":"0002"}'
    code, person = ask(project, "/people", "POST",
                       '{"org_id": "org_local", "name": "Ana", "phone": "+351 1"}')
    assert code == 201 and '"phone":"+351 1"' in person, person
