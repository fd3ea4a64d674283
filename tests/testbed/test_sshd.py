"""The sshd "host": Fabric connects with the throwaway key and verifies the host key; plus the
small tmpfs disks that "disk full" tests mount on the host."""

from __future__ import annotations

import errno
import io
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import paramiko
import pytest
from fabric import Connection

from tests.support.docker import DockerEngine
from tests.support.sshd import SshHost, write_wrong_known_hosts

pytestmark = pytest.mark.testbed


def connect(host: SshHost, known_hosts: Path) -> Connection:
    """Fabric connection that trusts only `known_hosts`.

    Fabric also loads ~/.ssh/known_hosts, which paramiko consults first: a stale entry for a
    reused port would win over `known_hosts`, so it is emptied here.
    """
    conn = Connection(host.address, user=host.user, port=host.port,
                      connect_kwargs={"key_filename": str(host.key_file)})
    conn.client.get_host_keys().clear()
    conn.client._system_host_keys.clear()
    conn.client.load_host_keys(str(known_hosts))
    conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())
    return conn


def test_known_hosts_names_the_server_key(ssh_host: SshHost) -> None:
    line = ssh_host.known_hosts.read_text()
    assert line.startswith(f"[127.0.0.1]:{ssh_host.port} ssh-ed25519 AAAA")
    assert (ssh_host.address, ssh_host.user) == ("127.0.0.1", "root")


def test_fabric_runs_docker_on_the_host(ssh_host: SshHost, docker_engine: DockerEngine) -> None:
    with connect(ssh_host, ssh_host.known_hosts) as conn:
        def run(command: str) -> str:
            return str(conn.run(command, hide=True, in_stream=False).stdout)

        assert run("docker version --format '{{.Server.Version}}'").strip() == (
            docker_engine.server_version)
        assert run("docker compose version --short").startswith("2.")
        conn.put(io.BytesIO(b"hello\n"), "/tmp/sshd-smoke-upload.txt")
        assert run("cat /tmp/sshd-smoke-upload.txt && rm /tmp/sshd-smoke-upload.txt") == "hello\n"


def test_wrong_or_unknown_host_key_is_rejected(ssh_host: SshHost, tmp_path: Path) -> None:
    wrong = write_wrong_known_hosts(ssh_host, tmp_path / "known_hosts")
    assert wrong.read_text().split()[0] == f"[127.0.0.1]:{ssh_host.port}"
    with pytest.raises(paramiko.BadHostKeyException), connect(ssh_host, wrong) as conn:
        conn.open()
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    with (pytest.raises(paramiko.SSHException, match="not found in known_hosts"),
          connect(ssh_host, empty) as conn):
        conn.open()


def test_parallel_sessions(ssh_host: SshHost) -> None:
    def whoami(i: int) -> str:
        with connect(ssh_host, ssh_host.known_hosts) as conn:
            return str(conn.run(f"echo {i} $(id -un)", hide=True, in_stream=False).stdout.strip())

    with ThreadPoolExecutor(8) as pool:
        assert sorted(pool.map(whoami, range(8))) == [f"{i} root" for i in range(8)]


def test_small_disk_fills_up(small_disk: Callable[[str], Path]) -> None:
    disk = small_disk("1m")
    (disk / "fits").write_bytes(b"x" * 512 * 1024)
    with pytest.raises(OSError) as excinfo:
        (disk / "too-big").write_bytes(b"x" * 1024 * 1024)
    assert excinfo.value.errno == errno.ENOSPC
