"""Fixtures shared by the test-bed smoke tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.docker import DockerEngine, remove_labelled, unique_name


@pytest.fixture
def owner(docker_engine: DockerEngine) -> Iterator[str]:
    """A label value for the containers and volumes of one test; they are removed after it."""
    value = unique_name("t")
    yield value
    remove_labelled(value)
