"""Fixtures shared by the end-to-end deploy tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.stack import Stack
from tests.support.docker import DockerEngine
from tests.support.images import ImageSet
from tests.support.sshd import SshHost


@pytest.fixture
def stack(ssh_host: SshHost, test_images: ImageSet, docker_engine: DockerEngine,
          tmp_path: Path) -> Iterator[Stack]:
    """A fresh e2e environment on the sshd host (own project, network, app dir), removed after."""
    s = Stack.create(tmp_path, ssh_host)
    yield s
    s.cleanup()
