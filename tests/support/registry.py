"""A real container registry for the test bed (TESTBED.md): Debian's `docker-registry`
(the distribution registry 2.8) with htpasswd (bcrypt) authentication and TLS from a CA made
here, which dockerd trusts through `/etc/docker/certs.d/<host:port>/ca.crt` (read per request:
no daemon restart). It listens in a network namespace of its own (`netns.py`): Docker counts
every registry on 127.0.0.0/8 as insecure and BuildKit then talks plain HTTP to it.

`start_registry()` returns a running `Registry`; `stop()` removes its storage, its
certificates and the trust entry. Run `python -m tests.support.registry` to serve one from a
shell (Ctrl-C stops it).
"""

from __future__ import annotations

import secrets
import shutil
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from tests.checks.tls import make_ca, make_leaf

from . import netns
from .net import wait_for_port

PORT = 5000

REGISTRY_BIN = Path("/usr/bin/docker-registry")
HTPASSWD_BIN = Path("/usr/bin/htpasswd")
CERTS_D = Path("/etc/docker/certs.d")


@dataclass
class Registry:
    """A running registry: `server` is what image names start with (`ADDRESS:5000`)."""

    ns: netns.Namespace
    username: str
    password: str = field(repr=False)
    base: Path
    ca_file: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        return PORT

    @property
    def server(self) -> str:
        return f"{self.ns.address}:{PORT}"

    @property
    def url(self) -> str:
        return f"https://{self.server}"

    @property
    def log_file(self) -> Path:
        return self.base / "registry.log"

    def ssl(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def tags(self, repository: str) -> list[str]:
        """The repository's tags, through the Registry HTTP API v2."""
        response = httpx.get(f"{self.url}/v2/{repository}/tags/list",
                             auth=(self.username, self.password), verify=self.ssl())
        if response.status_code == 404:
            return []
        response.raise_for_status()
        return sorted(response.json().get("tags") or [])

    def start(self) -> Registry:
        if self.process is None or self.process.poll() is not None:
            with self.log_file.open("ab") as log:
                self.process = subprocess.Popen(
                    self.ns.argv(str(REGISTRY_BIN), "serve", str(self.base / "config.yml")),
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
            try:
                wait_for_port(PORT, self.ns.address, timeout=20)
            except TimeoutError as exc:
                raise RuntimeError("the registry did not start: "
                                   + self.log_file.read_text(errors="replace")[-2000:]) from exc
        return self

    def halt(self) -> None:
        """Stop the process, keeping its storage (to play a registry that is down)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url, verify=self.ssl(), timeout=0.5)
            except httpx.HTTPError:
                return
            time.sleep(0.1)

    def stop(self) -> None:
        self.halt()
        shutil.rmtree(CERTS_D / self.server, ignore_errors=True)
        shutil.rmtree(self.base, ignore_errors=True)
        self.ns.delete()


def start_registry(username: str = "shipyard") -> Registry:
    """A fresh registry in a fresh namespace: TLS, htpasswd auth, storage in a temp dir."""
    for binary, package in ((REGISTRY_BIN, "docker-registry"), (HTPASSWD_BIN, "apache2-utils")):
        if not binary.exists():
            raise RuntimeError(f"{binary} not found: run .ci/install-system.sh ({package})")
    ns = netns.create("syreg")
    base = Path(tempfile.mkdtemp(prefix="registry-"))
    password = secrets.token_urlsafe(18)
    registry = Registry(ns=ns, username=username, password=password, base=base,
                        ca_file=base / "ca" / "ca.crt")
    try:
        ca = make_ca(base / "ca", "Shipyard Test Registry CA")
        registry.ca_file = ca.pem
        leaf = make_leaf(base / "tls", ca, [ns.address], days=30, stem="registry")
        subprocess.run([str(HTPASSWD_BIN), "-iBc", str(base / "htpasswd"), username],
                       input=password.encode(), check=True, capture_output=True)
        config = {
            "version": 0.1,
            "log": {"level": "warn"},
            "storage": {"filesystem": {"rootdirectory": str(base / "data")},
                        "delete": {"enabled": True}},
            "http": {"addr": f"{ns.address}:{PORT}", "secret": secrets.token_hex(16),
                     "tls": {"certificate": str(leaf.cert), "key": str(leaf.key)}},
            "auth": {"htpasswd": {"realm": "shipyard-test", "path": str(base / "htpasswd")}},
        }
        (base / "config.yml").write_text(yaml.safe_dump(config))
        trust = CERTS_D / registry.server
        trust.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ca.pem, trust / "ca.crt")
        return registry.start()
    except BaseException:
        registry.stop()
        raise


if __name__ == "__main__":
    reg = start_registry()
    print(f"registry at {reg.url} (user {reg.username}, password {reg.password}, "
          f"CA {reg.ca_file}); Ctrl-C stops it")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        reg.stop()
