"""The deploy's question to the registry, against a real one (distribution 2.8, TLS, htpasswd):
is this tag there? Every failure is one message naming the server, never the password."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from fabfile import registry as registry_api
from fabfile.config import Config
from fabfile.config import Registry as RegistryConfig
from fabfile.config.secrets import Secret
from fabfile.errors import UserError
from tests.deploy.factgen import config
from tests.support.docker import docker
from tests.support.images import ImageSet
from tests.support.registry import Registry

pytestmark = pytest.mark.testbed


def cfg_for(reg: Registry, tmp: Path, *, password: str | None = None,
            ca: bool = True) -> Config:
    """The unit environment with its image in `reg`, logging in as the registry's user."""
    cfg = config("unit", tmp, {"app": {"image": f"{reg.server}/probe"}})
    return dataclasses.replace(cfg, registry=RegistryConfig(
        server=reg.server, username=reg.username,
        password=Secret("E2E_REGISTRY_PASSWORD", password or reg.password),
        ca_file=str(reg.ca_file) if ca else None))


@pytest.fixture(scope="module")
def pushed(registry: Registry, test_images: ImageSet) -> str:
    """`probe:v1` pushed to the registry."""
    import os
    import subprocess
    import tempfile

    ref = f"{registry.server}/probe:v1"
    docker("tag", test_images.app_v1, ref)
    with tempfile.TemporaryDirectory() as conf:
        env = {**os.environ, "DOCKER_CONFIG": conf}
        subprocess.run(["docker", "login", "-u", registry.username, "--password-stdin",
                        registry.server], input=registry.password, text=True, env=env,
                       check=True, capture_output=True)
        subprocess.run(["docker", "push", ref], env=env, check=True, capture_output=True)
    docker("rmi", ref)
    return ref


def test_a_pushed_tag_is_found_with_its_digest(registry: Registry, pushed: str,
                                               tmp_path: Path) -> None:
    found = registry_api.require(cfg_for(registry, tmp_path), "v1")
    assert found is not None and found.digest.startswith("sha256:")


def test_a_missing_tag_says_how_to_push_it(registry: Registry, pushed: str,
                                           tmp_path: Path) -> None:
    cfg = cfg_for(registry, tmp_path)
    assert registry_api.manifest(cfg, "v9") is None
    with pytest.raises(UserError) as info:
        registry_api.require(cfg, "v9")
    assert info.value.message == (
        f"image {registry.server}/probe:v9 is not in {registry.server}; run `inv build "
        "--env=unit --push --version=v9` (CI's build job does this for each commit); "
        "nothing was changed")


def test_rejected_credentials_name_the_secret_not_the_value(registry: Registry, pushed: str,
                                                            tmp_path: Path) -> None:
    with pytest.raises(UserError) as info:
        registry_api.require(cfg_for(registry, tmp_path, password="wrong-pw-123"), "v1")
    assert (f"the registry {registry.server} rejected the credentials of {registry.username} "
            "(the password is the secret E2E_REGISTRY_PASSWORD)") in info.value.message
    assert "wrong-pw-123" not in info.value.message


def test_an_untrusted_certificate_says_which_setting_fixes_it(registry: Registry, pushed: str,
                                                              tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"not trusted here: set registry\.ca_file"):
        registry_api.require(cfg_for(registry, tmp_path, ca=False), "v1")


def test_a_registry_that_is_down(registry: Registry, pushed: str, tmp_path: Path) -> None:
    registry.halt()
    try:
        with pytest.raises(UserError, match=f"cannot reach the registry {registry.server}"):
            registry_api.require(cfg_for(registry, tmp_path), "v1")
    finally:
        registry.start()
