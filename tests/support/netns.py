"""A network namespace joined to this machine by a veth pair: a host of its own, with an
address that is not loopback, reachable only from this machine (TESTBED.md, "more hosts").

The registry lives in one because Docker treats every registry on 127.0.0.0/8 as insecure,
and BuildKit then speaks plain HTTP to it (a TLS registry answers 400): a registry at a
private address outside loopback is reached over TLS, as a real one is.
"""

from __future__ import annotations

import ipaddress
import random
import subprocess
import uuid
from dataclasses import dataclass

POOL = ipaddress.ip_network("10.234.0.0/16")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def _taken() -> list[ipaddress.IPv4Network]:
    found = []
    for line in _ip("-4", "-o", "addr", "show").stdout.splitlines():
        cidr = line.split()[3]
        found.append(ipaddress.ip_interface(cidr).network)
    return found


@dataclass(frozen=True)
class Namespace:
    """`name` in /var/run/netns; `address` is the namespace's side, `gateway` this machine's."""

    name: str
    address: str
    gateway: str

    def argv(self, *command: str) -> list[str]:
        """`command` run inside the namespace (fine for ordinary processes)."""
        return ["ip", "netns", "exec", self.name, *command]

    def delete(self) -> None:
        _ip("netns", "delete", self.name, check=False)
        _ip("link", "delete", f"{self.name[:10]}h", check=False)


def create(prefix: str = "sy") -> Namespace:
    """A fresh namespace with a /30 of POOL that no interface here uses yet."""
    taken = _taken()
    for _ in range(50):
        subnet = ipaddress.ip_network(
            f"10.234.{random.randrange(256)}.{4 * random.randrange(64)}/30")
        if not any(subnet.overlaps(t) for t in taken):
            break
    else:
        raise RuntimeError(f"no free /30 in {POOL}")
    gateway, address = (str(h) for h in subnet.hosts())
    name = f"{prefix}{uuid.uuid4().hex[:8]}"
    host_if, ns_if = f"{name[:10]}h", f"{name[:10]}n"
    ns = Namespace(name, address, gateway)
    try:
        _ip("netns", "add", name)
        _ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        _ip("link", "set", ns_if, "netns", name)
        _ip("addr", "add", f"{gateway}/30", "dev", host_if)
        _ip("link", "set", host_if, "up")
        _ip("netns", "exec", name, "ip", "addr", "add", f"{address}/30", "dev", ns_if)
        _ip("netns", "exec", name, "ip", "link", "set", ns_if, "up")
        _ip("netns", "exec", name, "ip", "link", "set", "lo", "up")
    except subprocess.CalledProcessError as exc:
        ns.delete()
        raise RuntimeError(f"cannot make network namespace {name}: {exc.stderr}") from exc
    return ns
