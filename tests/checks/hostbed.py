"""What the doctor's and the monitor's test beds share: the web ports held for one test at a
time, a stand-in Traefik on 127.0.0.1:443, and commands run where the domains resolve to
the test host.

Traefik cannot run here; a TLS server that names its process `traefik` holds 443 instead
(the doctor knows Traefik by the name of the process holding the port).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from tests.checks.tls import Pem
from tests.support.docker import file_lock
from tests.support.net import wait_for_port

WEB_PORTS_LOCK = Path("/tmp/shipyard-web-ports.lock")
TLSSERVE = Path(__file__).with_name("tlsserve.py")


@contextmanager
def web_ports() -> Iterator[None]:
    """Hold 80/443 across concurrent sessions, and insist they start free."""
    with file_lock(WEB_PORTS_LOCK):
        for port in (80, 443):
            with socket.socket() as probe:
                busy = probe.connect_ex(("127.0.0.1", port)) == 0
            assert not busy, f"127.0.0.1:{port} is in use by something outside this test"
        yield


@contextmanager
def fake_traefik(pem: Pem) -> Iterator[int]:
    """`tlsserve.py` on 127.0.0.1:443 in a process named `traefik`, stopped after the block."""
    proc = subprocess.Popen(
        [sys.executable, str(TLSSERVE), "--port", "443", "--cert", str(pem.cert), "--key",
         str(pem.key), "--seconds", "120", "--process-name", "traefik"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(443, timeout=10)
        yield proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def run_with_hosts(tmp_path: Path, hosts: str, argv: list[str], env: Mapping[str, str],
                   *, cwd: Path | None = None,
                   timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """`argv` with /etc/hosts and /etc/resolv.conf replaced in a private mount namespace:
    names resolve from `hosts`, and any other lookup goes to 127.0.0.1, where nothing answers."""
    hosts_file = tmp_path / "hosts"
    hosts_file.write_text(f"127.0.0.1 localhost\n{hosts}\n")
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    script = ('mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/resolv.conf && shift 2 '
              '&& exec "$@"')
    return subprocess.run(
        ["unshare", "--mount", "sh", "-c", script, "sh", str(hosts_file), str(resolv), *argv],
        env=dict(env), cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


def base_env(**extra: str) -> dict[str, str]:
    """This process's environment for a child CLI: plain output, wide lines."""
    return {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", **extra}
