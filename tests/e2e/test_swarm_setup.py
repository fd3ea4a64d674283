"""`inv setup` on a swarm given bad input: one clear message each, a non-zero exit, no
traceback. The environments pair the test bed's first node (the manager) with its third, a
spare engine that each test puts in the state it needs and leaves out of any swarm."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fabfile.config import load_config
from fabfile.config.secrets import Secret
from fabfile.errors import UserError
from fabfile.remote import connect
from fabfile.swarm import setup as swarm_setup
from tests.support.swarm import SwarmBed, SwarmNode
from tests.swarm.stack import SECRETS, SwarmStack, host_entry, output

pytestmark = pytest.mark.e2e


@pytest.fixture
def pair(swarm_bed: SwarmBed, tmp_path: Path) -> Iterator[tuple[SwarmStack, SwarmNode]]:
    """An environment of the first node (manager) and the spare third node (worker)."""
    spare = swarm_bed.nodes[2]
    spare.docker("swarm", "leave", "--force", check=False)
    stack = SwarmStack.create(tmp_path, swarm_bed)
    stack.write_env(overrides={"hosts": [host_entry(stack.manager, "manager"),
                                         host_entry(spare, "worker")]})
    yield stack, spare
    spare.docker("swarm", "leave", "--force", check=False)
    stack.cleanup()


def failed(proc: subprocess.CompletedProcess[str]) -> str:
    """The error line of a run that must fail cleanly."""
    assert proc.returncode == 1, output(proc)
    assert "Traceback" not in output(proc)
    assert proc.stderr.startswith("error: "), output(proc)
    return proc.stderr


def state(node: SwarmNode) -> str:
    return node.docker("info", "--format", "{{.Swarm.LocalNodeState}}")


def test_a_host_that_cannot_reach_the_managers_advertise_address(
        pair: tuple[SwarmStack, SwarmNode]) -> None:
    stack, spare = pair
    rule = ["OUTPUT", "-p", "tcp", "-d", stack.manager.address, "--dport", "2377", "-j", "REJECT"]
    subprocess.run([*spare.enter, "iptables", "-I", *rule], check=True)
    try:
        message = failed(stack.inv("setup"))
    finally:
        subprocess.run([*spare.enter, "iptables", "-D", *rule], check=True)
    assert (f"{spare.address}:22 cannot reach the manager's advertise address "
            f"{stack.manager.address}:2377 (TCP): open 2377/tcp") in message
    assert state(spare) == "inactive"


def test_a_host_in_another_swarm_is_refused_with_the_fix(
        pair: tuple[SwarmStack, SwarmNode]) -> None:
    stack, spare = pair
    spare.docker("swarm", "init", "--advertise-addr", spare.address)
    message = failed(stack.inv("setup"))
    assert f"{spare.address}:22 already belongs to another swarm (managers {spare.address})" \
        in message and "run `docker swarm leave --force` on it" in message
    assert state(spare) == "active"


def test_a_port_traefik_needs_in_use(pair: tuple[SwarmStack, SwarmNode]) -> None:
    stack, _ = pair
    env = stack.write_env("edge", {"traefik": {"enabled": True}})
    listener = subprocess.Popen(
        [*stack.manager.enter, "python3", "-c",
         "import socket, time; s = socket.socket(); s.bind(('0.0.0.0', 80)); s.listen(); "
         "print('up', flush=True); time.sleep(120)"], stdout=subprocess.PIPE, text=True)
    try:
        assert listener.stdout is not None and listener.stdout.readline().strip() == "up"
        message = failed(stack.inv("setup", env=env))
    finally:
        listener.kill()
        listener.wait()
    assert f"port 80 on root@{stack.manager.address}:22 is in use by python3: Traefik " \
           "publishes 80 and 443 on the first manager" in message


def test_a_stale_join_token_is_named(pair: tuple[SwarmStack, SwarmNode]) -> None:
    """The token read before the join was rotated meanwhile (another operator)."""
    stack, spare = pair
    assert stack.inv("setup", env=stack.write_env("one", {"hosts": [
        host_entry(stack.manager, "manager")]})).returncode == 0
    stale = stack.manager.docker("swarm", "join-token", "-q", "worker")
    stack.manager.docker("swarm", "join-token", "-q", "--rotate", "worker")
    cfg = load_config("sw", root=stack.env_dir, environ=SECRETS)
    manager, worker = (swarm_setup.HostSetup(h, connect(h)) for h in cfg.hosts)
    try:
        with pytest.raises(UserError) as caught:
            swarm_setup._join(cfg, manager, worker, {"worker": Secret("token", stale)})
    finally:
        manager.transport.close()
        worker.transport.close()
    assert "the manager refused the join token" in caught.value.message
    assert "rotated after it was read" in caught.value.message
    assert stale not in caught.value.message
    assert state(spare) == "inactive"


def test_a_manager_that_does_not_answer(pair: tuple[SwarmStack, SwarmNode]) -> None:
    stack, spare = pair
    silent = f"{stack.bed.subnet}.250"
    manager: dict[str, Any] = {**host_entry(stack.manager, "manager"), "address": silent,
                               "connect_timeout": 2}
    env = stack.write_env("gone", {"hosts": [manager, host_entry(spare, "worker")]})
    message = failed(stack.inv("setup", env=env))
    assert f"cannot reach {silent}:22 over SSH" in message


@pytest.mark.parametrize(("roles", "expected"), [
    (["worker", "worker"], "hosts: expected at least one host with role: manager"),
    (["manager", "manager"], "hosts: expected an odd number of managers, 1, 3 or 5 (got 2)"),
], ids=["no-manager", "two-managers"])
def test_a_bad_topology_is_explained(pair: tuple[SwarmStack, SwarmNode], roles: list[str],
                                     expected: str) -> None:
    stack, spare = pair
    env = stack.write_env("bad", {"hosts": [host_entry(stack.manager, roles[0]),
                                            host_entry(spare, roles[1])]})
    assert expected in failed(stack.inv("setup", env=env))
