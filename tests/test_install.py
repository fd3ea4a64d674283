"""`setup --install`'s messages from the install script's markers (pure), and its root
handling."""

from __future__ import annotations

from pathlib import Path

import pytest

from fabfile.config import Config, load_config
from fabfile.install import run
from fabfile.remote import Result, Step
from tests.helpers import DUMMY_SECRETS, env_tree


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    return load_config("prod", root=env_tree(tmp_path), environ=DUMMY_SECRETS)


def result(stdout: str, stderr: str = "", code: int = 4) -> Result:
    return Result(Step("install", ("sh",)), code, stdout, stderr)


def test_a_non_root_user_goes_through_sudo_without_a_password(cfg: Config) -> None:
    argv = run.install_step(cfg, cfg.hosts[0]).argv
    assert argv[:4] == ("sudo", "-n", "sh", "-c") and argv[-3:] == ("deploy", "20.10", "2.20")


@pytest.mark.parametrize(("stdout", "stderr", "expected"), [
    ("@release Debian GNU/Linux 12 (bookworm)\n@error compose-too-old docker-compose=1.29.2-3\n",
     "", "Debian GNU/Linux 12 (bookworm) has no Compose v2 plugin of 2.20 or newer (apt offers: "
         "docker-compose=1.29.2-3; Debian 12's docker-compose is Compose v1"),
    ("@release Fedora Linux 40\n@error unsupported\n", "",
     "runs Fedora Linux 40: setup --install knows Debian and Ubuntu (apt)"),
    ("", "sudo: a password is required\n",
     "user deploy cannot use sudo without a password (sudo: a password is required)"),
    ("@release Ubuntu 20.04\n@error engine-too-old docker.io=19.03.8\n", "",
     "the Docker Engine of Ubuntu 20.04 is older than 20.10 (apt offers docker.io=19.03.8)"),
])
def test_each_refusal_says_why_and_what_to_do(cfg: Config, stdout: str, stderr: str,
                                              expected: str) -> None:
    message = run.explain(cfg, cfg.hosts[0], result(stdout, stderr))
    assert expected in message


def test_what_changed_is_said(cfg: Config) -> None:
    done = run.changes(result("@installed docker.io 26.1.5\n@group-added deploy\n"
                              "@started docker (systemd)\n@ready\n", code=0))
    assert done == ["installed docker.io 26.1.5", "added deploy to the docker group",
                    "started docker (systemd)"]
