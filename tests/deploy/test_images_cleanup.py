"""After a successful deploy `finish.sh` removes the app's images that no kept release names:
only images this app pulled, never one a container uses. Real Docker, local transport."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fabfile.config import Host
from fabfile.deploy import rollout, scripts
from fabfile.remote import LocalTransport
from tests.support.docker import DockerEngine, docker, unique_name
from tests.support.images import ImageSet

pytestmark = pytest.mark.testbed


@pytest.fixture
def repo(test_images: ImageSet, docker_engine: DockerEngine) -> Iterator[str]:
    """A throwaway repository with four distinct images tagged a..d (the busybox app, each
    with its own label so each tag is an image of its own)."""
    name = f"shipyard-cleanup/{unique_name('app')}"
    base = docker("create", test_images.app_v1)
    try:
        for tag in "abcd":
            docker("commit", "--change", f"LABEL cleanup.tag={tag}", base, f"{name}:{tag}")
    finally:
        docker("rm", "-f", base)
    yield name
    docker("rm", "-f", f"{name}-user", check=False)
    for tag in "abcd":
        docker("rmi", f"{name}:{tag}", check=False)


def present(repo: str) -> set[str]:
    return set(docker("image", "ls", "--format", "{{.Tag}}", repo).split())


def test_only_pulled_images_no_release_needs_are_removed(repo: str, tmp_path: Path) -> None:
    app_dir = tmp_path / "app"
    for rid, tag in (("r1", "a"), ("r2", "b")):
        (app_dir / "releases" / rid).mkdir(parents=True)
        (app_dir / "releases" / rid / "compose.yml").write_text(
            f'services:\n  web:\n    image: "{repo}:{tag}"\n')
    (app_dir / "cache").mkdir()
    (app_dir / "cache" / "pulled").write_text(
        "".join(f"{repo}:{t}\n" for t in "abc") + "other/app:x\n")
    docker("create", "--name", f"{repo.split('/')[1]}-user", f"{repo}:c")
    (app_dir / "lock").mkdir()
    (app_dir / "lock" / "token.tok").touch()
    step = scripts.step("finish", "finish", str(app_dir), "tok", "0", "", "{}", repo, "keep")
    result = LocalTransport(Host(address="localhost", transport="local")).run(step)
    assert "image-removed" not in rollout.markers(result.stdout)
    assert present(repo) == {"a", "b", "c", "d"}, "c is used by a container, d was not pulled"
    docker("rm", "-f", f"{repo.split('/')[1]}-user")
    (app_dir / "releases" / "r1" / "compose.yml").unlink()
    result = LocalTransport(Host(address="localhost", transport="local")).run(step)
    assert sorted(rollout.markers(result.stdout)["image-removed"]) == [f"{repo}:a", f"{repo}:c"]
    assert present(repo) == {"b", "d"}
    record = (app_dir / "cache" / "pulled").read_text().split()
    assert sorted(record) == ["other/app:x", f"{repo}:b"]
