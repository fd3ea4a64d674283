"""The topology rules of `deploy.engine: swarm`, as the loader reports them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from fabfile.config import load_config
from fabfile.errors import UserError
from fabfile.swarm.topology import advertise, control, managers, problems
from tests.helpers import DUMMY_SECRETS, deep_merge, env_tree

ROOT = Path(__file__).parent / "environments"
SECRETS = {**DUMMY_SECRETS, "STRIPE_KEY": "sk_test_123456"}


def swarm_env(tmp_path: Path) -> Path:
    """The shipped environments plus the example `swarm.yaml`."""
    root = env_tree(tmp_path, {})
    (root / "swarm.yaml").write_text((ROOT / "swarm.yaml").read_text())
    return root


def _merged(root: Path, overrides: dict[str, Any]) -> Path:
    path = root / "swarm.yaml"
    path.write_text(yaml.safe_dump(deep_merge(yaml.safe_load(path.read_text()), overrides)))
    return root


def errors(root: Path) -> str:
    with pytest.raises(UserError) as caught:
        load_config("swarm", root=root, environ=SECRETS)
    return caught.value.message


def test_the_example_swarm_is_valid_and_its_first_manager_controls(tmp_path: Path) -> None:
    cfg = load_config("swarm", root=swarm_env(tmp_path), environ=SECRETS)
    assert problems(cfg) == []
    assert control(cfg).address == "vps1.roster.acme.example"
    assert [advertise(h) for h in cfg.hosts] == ["10.10.0.11", "10.10.0.12", "10.10.0.13"]
    assert len(managers(cfg)) == 1


HOSTS = [{"address": "10.0.0.1", "role": "worker"}, {"address": "10.0.0.2", "role": "worker"}]


@pytest.mark.parametrize(("hosts", "expected"), [
    (HOSTS, "swarm.yaml: hosts: expected at least one host with role: manager"),
    ([{**h, "role": "manager"} for h in HOSTS],
     "hosts: expected an odd number of managers, 1, 3 or 5 (got 2): the managers' Raft log "
     "needs a majority"),
    ([{"address": "node1.example.com", "role": "manager"}],
     "hosts.0.advertise_address: expected the IP address the other nodes reach "
     "node1.example.com at"),
    ([{"address": "10.0.0.1", "role": "manager"},
      {"address": "node2.example.com", "advertise_address": "10.0.0.1", "role": "worker"}],
     "hosts.1.advertise_address: expected an address of its own (10.0.0.1 is also hosts.0's)"),
    ([{"address": "10.0.0.1"}], "hosts.0.role: expected manager or worker for each host"),
    ([{"address": "10.0.0.1", "role": "leader"}], "hosts.0.role: expected one of 'manager', "
     "'worker'"),
], ids=["no-manager", "two-managers", "hostname-only", "same-address", "no-role", "bad-role"])
def test_bad_topologies_are_explained(tmp_path: Path, hosts: list[dict[str, Any]],
                                      expected: str) -> None:
    assert expected in errors(_merged(swarm_env(tmp_path), {"hosts": hosts}))


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"app": {"command": []}}, "app.command: expected the app's command as its image runs it"),
    ({"database": {"backend": "sqlite", "sqlite_path": "/srv/app.db"}},
     "database.backend: expected postgres when deploy.engine is swarm"),
], ids=["no-command", "sqlite"])
def test_what_a_swarm_needs_besides_hosts(tmp_path: Path, overrides: dict[str, Any],
                                          expected: str) -> None:
    assert expected in errors(_merged(swarm_env(tmp_path), overrides))


def test_swarm_keys_on_a_compose_environment_are_refused(tmp_path: Path) -> None:
    root = env_tree(tmp_path, {"staging": {"hosts": [{"address": "staging-1.roster.acme.example",
                                                       "role": "manager"}]}})
    with pytest.raises(UserError) as caught:
        load_config("staging", root=root, environ=SECRETS)
    assert "hosts.0: expected no role, advertise_address or labels when deploy.engine is " \
           "compose" in caught.value.message
