"""`inv deploy --env=local`: the shipped local environment (the local transport, no SSH, a
PostgreSQL service in the stack) deploying to this machine's Docker Engine, as the README's
main-job command does. Only its names, app directory and image are changed for the test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.stack import APP, output
from tests.helpers import env_tree, run_inv
from tests.support.docker import DockerEngine, docker, unique_name
from tests.support.images import ImageSet

pytestmark = pytest.mark.e2e


@pytest.fixture
def local_env(test_images: ImageSet, docker_engine: DockerEngine,
              tmp_path: Path) -> Iterator[tuple[Path, str]]:
    project = unique_name("local").replace("-", "")
    root = env_tree(tmp_path, {"local": {
        "project": project,
        "app": {"image": APP, "tag": "v1"},
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


def test_deploy_env_local_runs_the_stack_with_its_database(local_env: tuple[Path, str]) -> None:
    root, project = local_env
    setup = run_inv("setup", "--env=local", env_dir=root)
    assert setup.returncode == 0, output(setup)
    first = run_inv("deploy", "--env=local", "--yes", env_dir=root)
    assert first.returncode == 0, output(first)
    assert "services: db" in first.stdout
    assert [line.split()[0] for line in images(project, "web")] == [f"{APP}:v1"] * 2
    db = images(project, "db")
    assert len(db) == 1 and "(healthy)" in db[0]
    assert (root.parent / ".env.local").stat().st_mode & 0o777 == 0o600

    second = run_inv("deploy", "--env=local", "--yes", "--version=v2", env_dir=root)
    assert second.returncode == 0, output(second)
    assert "services:" not in second.stdout
    assert [line.split()[0] for line in images(project, "web")] == [f"{APP}:v2"] * 2
    assert [line.split()[-1] for line in images(project, "db")] == [db[0].split()[-1]]
