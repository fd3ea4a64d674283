"""Build and ship, end to end on the test bed: `inv build --push` of the roster app from a git
checkout to a real registry (TLS, htpasswd), `inv deploy` pulling it on the sshd host with
credentials that do not stay there, the registry cache reused by a rebuild on an emptied build
cache, a rollback that pulls nothing, and each fault with one message and no host changed."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deploy.stack import Stack, output
from tests.support.docker import docker
from tests.support.images import PYTHON_TAG, ROSTER_DIR, ImageSet
from tests.support.registry import Registry

pytestmark = pytest.mark.e2e

CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
"""The host's CA bundle, handed to pip inside the build (TESTBED.md: TLS to PyPI is re-signed
here by a CA that only the host trusts)."""
PASSWORD_VAR = "E2E_REGISTRY_PASSWORD"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=e2e", "-c",
                           "user.email=e2e@example.com", *args], check=True,
                          capture_output=True, text=True).stdout.strip()


@dataclass
class Ship:
    stack: Stack
    registry: Registry
    src: Path
    image: str

    def inv(self, *args: str, password: str | None = None,
            timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return self.stack.inv(*args, timeout=timeout, extra_env={
            PASSWORD_VAR: password or self.registry.password})

    def commit(self, message: str) -> str:
        git(self.src, "add", "-A")
        git(self.src, "commit", "-qm", message)
        return git(self.src, "rev-parse", "HEAD")

    def forget_local_images(self, *tags: str) -> None:
        """Remove the image's `tags` (all by default) from the engine the host and the
        builder share here, as if the build ran elsewhere: a deploy has to pull them."""
        for ref in docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}",
                          self.image).split():
            if not tags or ref.rsplit(":", 1)[1] in tags:
                docker("rmi", "-f", ref, check=False)

    def password_traces(self) -> list[str]:
        """Files under the places a login could leave the password: none may hold it."""
        secret = self.registry.password.encode()
        roots = [Path.home(), self.stack.app_dir, Path("/etc/docker"), Path("/dev/shm"),
                 Path("/tmp"), self.stack.root]
        found = []
        for root in roots:
            for dirpath, dirnames, filenames in os.walk(root):
                if "/proc" in dirpath or ".venv" in dirpath:
                    dirnames[:] = []
                    continue
                for name in filenames:
                    path = Path(dirpath, name)
                    try:
                        if path.is_file() and path.stat().st_size < 1 << 20 \
                                and secret in path.read_bytes():
                            found.append(str(path))
                    except OSError:
                        continue
        return found


@pytest.fixture
def ship(stack: Stack, registry: Registry, test_images: ImageSet) -> Iterator[Ship]:
    """The roster app in its own git repository, an environment pushing it to the registry
    and running it on SQLite on the sshd host."""
    src = stack.root / "src"
    shutil.copytree(ROSTER_DIR, src, ignore=shutil.ignore_patterns("__pycache__", ".*_cache"))
    git(src, "init", "-q")
    data = stack.root / "data"
    data.mkdir()
    data.chmod(0o777)
    image = f"{registry.server}/roster-{stack.project}"
    stack.write_env(overrides={
        "app": {"image": image, "tag": "unset", "migrate_command": ["alembic", "upgrade", "head"],
                "healthcheck": {"command": None, "start_period": 10, "timeout": 3},
                "resources": {"cpus": 1.0, "memory": "256m"}, "env": {"WEB_CONCURRENCY": "1"},
                "build": {"context": "src", "args": {"BASE_IMAGE": PYTHON_TAG},
                          "secrets": {"pip_ca": CA_BUNDLE}}},
        "registry": {"server": registry.server, "username": registry.username,
                     "password": {"secret": PASSWORD_VAR}, "ca_file": str(registry.ca_file)},
        "database": {"backend": "sqlite", "sqlite_path": str(data / "roster.db")},
        "deploy": {"verify": {"paths": ["/health", "/people?limit=1"]}},
    })
    s = Ship(stack, registry, src, image)
    s.commit("roster v1")
    assert s.inv("setup").returncode == 0
    yield s
    s.forget_local_images()


def test_build_push_deploy_rebuild_from_the_registry_cache_and_roll_back(ship: Ship) -> None:
    first = ship.inv("build", "--push")
    assert first.returncode == 0, output(first)
    sha1 = git(ship.src, "rev-parse", "HEAD")
    assert f"built {ship.image}:{sha1}" in first.stdout
    assert sha1 in ship.registry.tags(ship.image.split("/", 1)[1])
    labels = docker("image", "inspect", "--format",
                    '{{index .Config.Labels "org.opencontainers.image.revision"}}',
                    f"{ship.image}:{sha1}")
    assert labels == sha1

    ship.forget_local_images()
    deployed = ship.inv("deploy", "--yes", f"--version={sha1}")
    assert deployed.returncode == 0, output(deployed)
    assert f"pull {ship.image}:{sha1}" in deployed.stdout
    assert ship.stack.all_serving(f"{ship.image}:{sha1}")
    assert ship.password_traces() == [], "the registry password stayed on the host"
    assert ship.registry.password not in output(first) + output(deployed)

    main = ship.src / "roster_api" / "__init__.py"
    main.write_text(main.read_text() + "\n# one changed line\n")
    sha2 = ship.commit("roster v2: one changed line")
    ship.forget_local_images("buildcache")
    docker("builder", "prune", "-af")
    rebuilt = ship.inv("build", "--push")
    assert rebuilt.returncode == 0, output(rebuilt)
    ship.forget_local_images(sha2)
    table = rebuilt.stdout
    assert "pip install" not in table.split("rebuilt", 1)[1], \
        f"the dependency layer was rebuilt: the registry cache was not used:\n{table}"
    assert "COPY roster_api" in table.split("rebuilt", 1)[1]

    second = ship.inv("deploy", "--yes", f"--version={sha2}")
    assert second.returncode == 0, output(second)
    assert ship.stack.all_serving(f"{ship.image}:{sha2}")

    back = ship.inv("rollback", "--yes")
    assert back.returncode == 0, output(back)
    assert "pull " not in back.stdout, "a rollback runs an image the host kept"
    assert ship.stack.all_serving(f"{ship.image}:{sha1}")
    assert ship.password_traces() == []


def test_faults_leave_every_host_as_it_was(ship: Ship) -> None:
    built = ship.inv("build", "--push")
    assert built.returncode == 0, output(built)
    sha = git(ship.src, "rev-parse", "HEAD")

    wrong = ship.inv("deploy", "--yes", f"--version={sha}", password="not-the-password")
    assert wrong.returncode == 1
    assert (f"the registry {ship.registry.server} rejected the credentials of "
            f"{ship.registry.username} (the password is the secret {PASSWORD_VAR})"
            in wrong.stderr)
    assert "not-the-password" not in output(wrong) and "Traceback" not in output(wrong)

    missing = ship.inv("deploy", "--yes", "--version=0000000")
    assert missing.returncode == 1
    assert (f"image {ship.image}:0000000 is not in {ship.registry.server}; run `inv build "
            "--env=e2e --push --version=0000000`") in missing.stderr

    ship.registry.halt()
    try:
        down = ship.inv("deploy", "--yes", f"--version={sha}")
    finally:
        ship.registry.start()
    assert down.returncode == 1
    assert f"cannot reach the registry {ship.registry.server}" in down.stderr
    for proc in (wrong, missing, down):
        assert "gathering facts" not in proc.stdout
    assert not ship.stack.releases() and not ship.stack.containers(), "a host was touched"

    dockerfile = ship.src / "Dockerfile"
    step = "RUN /opt/venv/bin/python -m compileall"
    dockerfile.write_text(dockerfile.read_text().replace(step, f"RUN false && {step[4:]}"))
    ship.commit("a broken build")
    broken = ship.inv("build", "--push")
    assert broken.returncode == 1
    assert "failed at [" in broken.stderr and "RUN false" in broken.stderr
    assert "Traceback" not in output(broken)
    assert ship.password_traces() == []


def test_a_dirty_tree_is_refused_unless_allowed(ship: Ship) -> None:
    (ship.src / "roster_api" / "scratch.py").write_text("x = 1\n")
    refused = ship.inv("build", "--no-push")
    assert refused.returncode == 1
    assert "has changes that are not committed (roster_api/scratch.py)" in refused.stderr
    allowed = ship.inv("build", "--no-push", "--allow-dirty")
    assert allowed.returncode == 0, output(allowed)
    head = git(ship.src, "rev-parse", "HEAD")
    assert f"{ship.image}:{head}-dirty-" in allowed.stdout
