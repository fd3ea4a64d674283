"""`inv exec`'s commands as data: no secret in any argv, the exit code passes through, the
remainder after `--` is taken word for word."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fabfile.command import plan
from fabfile.config import Config, load_config
from fabfile.tasks.command import command_after_dashes
from tests.helpers import DUMMY_SECRETS, env_tree


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    return load_config("prod", root=env_tree(tmp_path), environ=DUMMY_SECRETS)


def test_a_one_off_container_of_the_current_release_reads_the_env_file_itself(cfg: Config) -> None:
    argv = plan.argv(cfg, "run", ["alembic", "current"], tty=False)
    assert argv == ("docker", "compose", "-f", "/srv/roster/current/compose.yml", "run", "--rm",
                    "--no-deps", "-T", "-l", "traefik.enable=false", "web", "alembic", "current")
    assert "-T" not in plan.argv(cfg, "run", ["sh"], tty=True)


def test_reuse_is_docker_exec_into_the_picked_container(cfg: Config) -> None:
    assert plan.argv(cfg, "reuse", ["sh"], tty=True, container="abc") == (
        "docker", "exec", "-it", "abc", "sh")
    assert plan.argv(cfg, "reuse", ["ls"], tty=False, container="abc")[2] == "-i"


def test_no_secret_reaches_an_argv_or_the_audit_line(cfg: Config) -> None:
    line = plan.audit_line(cfg, "alice@laptop", "deploy@vps1:22", "run",
                           ["psql", DUMMY_SECRETS["PROD_DATABASE_URL"]])
    steps = [plan.prepare_step(cfg, "run", line).argv, plan.argv(cfg, "run", ["env"], tty=False)]
    for secret in DUMMY_SECRETS.values():
        assert all(secret not in arg for argv in steps for arg in argv)
    entry = json.loads(line)
    assert entry["action"] == "exec" and entry["who"] == "alice@laptop"
    assert entry["message"] == "on deploy@vps1:22, in a one-off container: psql '***'"


@pytest.mark.parametrize(("argv", "expected"), [
    (["inv", "exec", "--env=prod", "--", "python", "-c", "print('a b')"],
     ["python", "-c", "print('a b')"]),
    (["inv", "exec", "--env=prod", "--", "sh", "--", "x"], ["sh", "--", "x"]),
    (["inv", "exec", "--env=prod"], []),
])
def test_the_command_is_everything_after_the_first_dashes(argv: list[str],
                                                          expected: list[str]) -> None:
    assert command_after_dashes(argv) == expected
