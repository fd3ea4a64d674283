"""A throwaway OpenSSH server on 127.0.0.1 that plays a VPS host (TESTBED.md).

It has its own ed25519 host key, lets root in with a throwaway user key only, and runs
commands on this machine (so `docker` over SSH reaches the local Docker Engine).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .net import free_port, wait_for_port

SSHD = Path("/usr/sbin/sshd")


@dataclass(frozen=True)
class SshHost:
    """How to reach the throwaway sshd; `known_hosts` holds its real host key."""

    address: str
    port: int
    user: str
    key_file: Path
    known_hosts: Path

    @property
    def connect_kwargs(self) -> dict[str, object]:
        """Fabric/paramiko `connect_kwargs` that use only the throwaway key."""
        return {"key_filename": str(self.key_file), "look_for_keys": False, "allow_agent": False}


def keygen(path: Path, comment: str) -> str:
    """Create an ed25519 key pair at `path`; returns the public key line (`type base64 comment`)."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True, capture_output=True,
    )
    return path.with_name(path.name + ".pub").read_text().strip()


def known_hosts_line(address: str, port: int, public_key: str) -> str:
    """A known_hosts line in OpenSSH's bracketed form: `[127.0.0.1]:2222 ssh-ed25519 AAAA...`."""
    key_type, key_b64 = public_key.split()[:2]
    host = address if port == 22 else f"[{address}]:{port}"
    return f"{host} {key_type} {key_b64}\n"


def write_wrong_known_hosts(host: SshHost, path: Path) -> Path:
    """Write a known_hosts file at `path` pinning a fresh key (not the server's) for `host`."""
    with tempfile.TemporaryDirectory(prefix="wrongkey-") as tmp:
        public = keygen(Path(tmp, "key"), "wrong-host-key")
    path.write_text(known_hosts_line(host.address, host.port, public))
    return path


def _config(base: Path, port: int, address: str = "127.0.0.1",
            extra: tuple[str, ...] = ()) -> str:
    return "\n".join([
        f"Port {port}",
        f"ListenAddress {address}",
        f"HostKey {base / 'ssh_host_ed25519_key'}",
        f"PidFile {base / 'sshd.pid'}",
        f"AuthorizedKeysFile {base / 'authorized_keys'}",
        "UsePAM no",
        "StrictModes no",
        "PermitRootLogin prohibit-password",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "MaxSessions 200",
        "MaxStartups 200:30:400",
        "MaxAuthTries 10",
        "LoginGraceTime 30",
        "UseDNS no",
        "PrintMotd no",
        "Subsystem sftp internal-sftp",
        "AcceptEnv LANG LC_*",
        *extra,
        "",
    ])


@dataclass
class SshServer:
    """A running sshd process and the host it stands for."""

    host: SshHost
    process: subprocess.Popen[bytes]
    base: Path

    @property
    def log_file(self) -> Path:
        return self.base / "sshd.log"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.base, ignore_errors=True)


def start_sshd(user: str = "root", *, address: str = "127.0.0.1", port: int | None = None,
               wrap: tuple[str, ...] = (), extra: tuple[str, ...] = (),
               user_key: Path | None = None) -> SshServer:
    """Start sshd with a fresh host key; returns once it accepts TCP.

    By default on a free port of 127.0.0.1 with a fresh user key. `wrap` prefixes the command
    (e.g. `nsenter --net=...` to serve inside a network namespace, then `address` is one of that
    namespace's), `extra` adds sshd_config lines and `user_key` lets in an existing key pair.
    """
    if not SSHD.exists():
        raise RuntimeError(f"{SSHD} not found: run .ci/install-system.sh")
    Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="sshd-"))
    base.chmod(0o755)
    host_public = keygen(base / "ssh_host_ed25519_key", "testbed-host")
    if user_key is None:
        user_key = base / "id_ed25519"
        user_public = keygen(user_key, "testbed-user")
    else:
        user_public = user_key.with_name(user_key.name + ".pub").read_text().strip()
    (base / "authorized_keys").write_text(user_public + "\n")
    port = port or free_port()
    config = base / "sshd_config"
    config.write_text(_config(base, port, address, extra))
    known_hosts = base / "known_hosts"
    known_hosts.write_text(known_hosts_line(address, port, host_public))
    with (base / "sshd.log").open("wb") as log:
        process = subprocess.Popen(
            [*wrap, str(SSHD), "-D", "-e", "-f", str(config)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )
    server = SshServer(
        host=SshHost(address=address, port=port, user=user,
                     key_file=user_key, known_hosts=known_hosts),
        process=process, base=base,
    )
    try:
        wait_for_port(port, host=address, timeout=15)
    except TimeoutError as exc:
        log_text = server.log_file.read_text(errors="replace")
        server.stop()
        raise RuntimeError(f"sshd did not start: {log_text}") from exc
    return server


def sshd_fixture() -> Iterator[SshHost]:
    server = start_sshd()
    try:
        yield server.host
    finally:
        server.stop()

