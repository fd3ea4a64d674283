"""A real multi-node Docker Swarm test bed on this one machine (TESTBED.md, "more hosts").

Each node is a network namespace (`ip netns`) with its own UTS namespace (its own hostname),
its own `dockerd` (own data root, exec root, pid file and socket) and its own `sshd`, so a
deploy reaches it exactly as it would reach a VPS: over SSH, at the node's address, where
`docker` talks to that node's engine (`SetEnv DOCKER_HOST` in its sshd_config).

The nodes share one layer-2 segment: a bridge inside a namespace of its own (`<id>-lan`),
with one veth pair per node and one up to this machine's root namespace (address `.1`). The
bridge lives in its own namespace because the main engine sets the root namespace's
iptables FORWARD policy to DROP with bridge netfilter on, which would drop node-to-node
frames on a root-namespace bridge; bridged or routed nowhere else, nothing here touches the
shared engine's rules. The nodes' subnet is a free `10.213.X.0/24`.

Engines start with `nsenter --net=... --uts=... dockerd` (`ip netns exec` remounts /sys and
dockerd then fails), `--bridge=none --iptables=false` (beside the main engine, no rules of
their own) and `DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1`: no registry is reachable here, so a
task uses the image loaded into its node instead of trying a pull first (which times out).
Images reach each engine with `docker save | docker load`.

What this VM cannot do: its kernel has no IPVS (`CONFIG_IP_VS` is not set), so Swarm's
virtual IPs (`endpoint_mode: vip`, the default) and the ingress routing mesh cannot balance
anything here; overlay networks (VXLAN) do work across the nodes, and so do host-mode
published ports and task-to-task traffic by task IP (what Traefik's Swarm provider uses by
default). Services deployed here use `endpoint_mode: dnsrr`.

`SwarmBed.create(n)` brings up `n` nodes that are not yet in a swarm (`inv setup` forms it);
`close()` removes everything. Run `python -m tests.support.swarm` to try it by hand.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .docker import file_lock
from .sshd import SshHost, SshServer, keygen, start_sshd

STATE_DIR = Path("/run/shipyard-swarm")
DATA_DIR = Path("/var/lib/shipyard-swarm")
SUBNET_LOCK = Path("/tmp/shipyard-swarm.lock")
SUBNET_PREFIX = "10.213"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
SSH_PORT = 22
OVERLAY_LOG_WORDS = ("peerdb", "neighbor", "memberlist", "networkdb", "vxlan", "overlay",
                     "bulk sync", "transient", "node join", "node leave")


def sh(*argv: str, check: bool = True, timeout: float = 60.0,
       env: dict[str, str] | None = None) -> str:
    """Run a command; its stdout, or RuntimeError with its stderr when `check` and it fails."""
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                          check=False, env={**os.environ, **env} if env else None)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout.strip()


def _free_subnet() -> str:
    """`10.213.X` of a /24 that no route on this machine uses yet (call under SUBNET_LOCK)."""
    used = set(re.findall(rf"\b{re.escape(SUBNET_PREFIX)}\.(\d+)\.", sh("ip", "-4", "route")))
    for x in range(1, 255):
        if str(x) not in used:
            return f"{SUBNET_PREFIX}.{x}"
    raise RuntimeError(f"no free {SUBNET_PREFIX}.X.0/24 left for a swarm test bed")


@dataclass
class SwarmNode:
    """One node: its namespaces, engine and sshd. `ssh` is how a deploy reaches it."""

    name: str
    address: str
    root: Path
    data_root: Path
    ssh: SshHost | None = None
    sshd: SshServer | None = None
    dockerd: subprocess.Popen[bytes] | None = None

    @property
    def netns(self) -> Path:
        return Path("/var/run/netns") / self.name

    @property
    def uts(self) -> Path:
        return self.root / "uts"

    @property
    def exec_root(self) -> Path:
        return self.root / "exec"

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def log_file(self) -> Path:
        return self.root / "dockerd.log"

    @property
    def enter(self) -> tuple[str, ...]:
        """The prefix that runs a command inside this node's namespaces."""
        return ("nsenter", f"--net={self.netns}", f"--uts={self.uts}")

    def docker(self, *args: str, check: bool = True, timeout: float = 120.0,
               input: bytes | None = None) -> str:
        """`docker ARGS` against this node's engine."""
        proc = subprocess.run(["docker", "-H", self.docker_host, *args], capture_output=True,
                              timeout=timeout, check=False, input=input)
        out = proc.stdout.decode("utf-8", "replace").strip()
        if check and proc.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)} on {self.name} failed "
                               f"({proc.returncode}): {proc.stderr.decode(errors='replace')}")
        return out

    def engine_up(self) -> bool:
        try:
            return bool(self.docker("info", "--format", "{{.ServerVersion}}", check=False,
                                    timeout=10))
        except subprocess.TimeoutExpired:
            return False

    def start_engine(self) -> None:
        """Start (or restart, keeping its state) this node's dockerd; wait until it answers."""
        self.exec_root.mkdir(parents=True, exist_ok=True)
        self.data_root.mkdir(parents=True, exist_ok=True)
        config = self.root / "daemon.json"
        config.write_text("{}\n")
        env = {**os.environ, "DOCKER_SERVICE_PREFER_OFFLINE_IMAGE": "1"}
        with self.log_file.open("ab") as log:
            self.dockerd = subprocess.Popen(
                [*self.enter, "dockerd", "--config-file", str(config),
                 "--data-root", str(self.data_root), "--exec-root", str(self.exec_root),
                 "--pidfile", str(self.root / "dockerd.pid"), "-H", self.docker_host,
                 "--bridge=none", "--iptables=false"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.dockerd.poll() is not None:
                break
            if self.socket.exists() and self.engine_up():
                return
            time.sleep(0.2)
        tail = "\n".join(self.log_file.read_text(errors="replace").splitlines()[-20:])
        raise RuntimeError(f"dockerd of {self.name} did not come up:\n{tail}")

    def stop_engine(self, *, kill_containers: bool = False) -> None:
        """Stop this node's dockerd as `systemctl stop docker` does (SIGTERM: it stops its
        containers, each with its own stop timeout, then exits); `kill_containers` kills them
        first, for a fast teardown."""
        proc = self.dockerd
        if proc is None or proc.poll() is not None:
            return
        if kill_containers:
            ids = self.docker("ps", "-q", check=False, timeout=20).split()
            if ids:
                self.docker("kill", *ids, check=False, timeout=30)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        self._kill_leftovers()

    def idle_container(self, network: str, image: str) -> tuple[str, str]:
        """An idle container on `network` (an attachable overlay): its id and the path of its
        network namespace, from where a stand-in proxy reaches tasks as Traefik, itself a task
        on that network, does."""
        deadline = time.monotonic() + 30
        while True:
            try:
                cid = self.docker("run", "-d", "--network", network, "--entrypoint", "sleep",
                                  image, "1000000")
                break
            except RuntimeError as exc:
                # a stack just (re)deployed: its overlay may resolve by name before the node
                # can attach to it ("network <id> not found"); it can a moment later
                if "not found" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(1)
        pid = self.docker("inspect", "-f", "{{.State.Pid}}", cid)
        return cid, f"/proc/{pid}/ns/net"

    def _kill_leftovers(self) -> None:
        """containerd and its shims outlive a killed dockerd: end those of this engine."""
        marker = str(self.exec_root)
        for pid_dir in Path("/proc").iterdir():
            if not pid_dir.name.isdigit():
                continue
            try:
                cmdline = (pid_dir / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if marker in cmdline:
                with contextlib.suppress(OSError):
                    os.kill(int(pid_dir.name), signal.SIGKILL)

    def close(self) -> None:
        if self.sshd is not None:
            self.sshd.stop()
        self.stop_engine(kill_containers=True)
        _unmount_under(self.exec_root, self.data_root)
        shutil.rmtree(self.data_root, ignore_errors=True)
        with contextlib.suppress(RuntimeError):
            sh("ip", "netns", "del", self.name)
        _unmount_under(self.uts)
        shutil.rmtree(self.root, ignore_errors=True)


def _unmount_under(*paths: Path) -> None:
    """Lazily unmount every mount point at or below `paths`, deepest first."""
    prefixes = [str(p) for p in paths]
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if any(point == p or point.startswith(p + "/") for p in prefixes):
            points.append(point)
    for point in sorted(set(points), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


@dataclass
class SwarmBed:
    """`n` nodes on one segment, engines and sshds running, not yet in a swarm."""

    id: str
    subnet: str
    root: Path
    nodes: list[SwarmNode] = field(default_factory=list)

    @property
    def lan(self) -> str:
        return f"{self.id}-lan"

    @property
    def uplink(self) -> str:
        return f"{self.id}-h"

    @property
    def host_address(self) -> str:
        """This machine's address on the nodes' segment."""
        return f"{self.subnet}.1"

    def overlay_log(self, last: int = 25) -> str:
        """The last `last` lines about the overlay of each node's engine log (its peer table,
        the gossip that fills it, VXLAN), for failure messages."""
        parts = []
        for node in self.nodes:
            try:
                lines = node.log_file.read_text(errors="replace").splitlines()
            except OSError as exc:
                parts.append(f"{node.name}: no log ({exc})")
                continue
            found = [ln for ln in lines if any(k in ln.lower() for k in OVERLAY_LOG_WORDS)]
            parts.append(f"{node.name} engine, overlay lines ({len(found)}):")
            parts += [ln[:300] for ln in found[-last:]]
        return "\n".join(parts)

    @property
    def user_key(self) -> Path:
        return self.root / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.root / "known_hosts"

    @classmethod
    def create(cls, count: int = 2, images: Sequence[str] = ()) -> SwarmBed:
        """Bring up `count` nodes with `images` loaded into each engine."""
        for tool in ("ip", "nsenter", "unshare", "dockerd"):
            if shutil.which(tool) is None:
                raise RuntimeError(f"{tool} not found: run .ci/install-system.sh")
        bed_id = "sw" + uuid.uuid4().hex[:6]
        root = STATE_DIR / bed_id
        root.mkdir(parents=True, exist_ok=True)
        with file_lock(SUBNET_LOCK):
            bed = cls(id=bed_id, subnet=_free_subnet(), root=root)
            try:
                bed._network(count)
            except BaseException:
                bed.close()
                raise
        try:
            keygen(bed.user_key, "swarm-testbed-user")
            with ThreadPoolExecutor(count) as pool:
                list(pool.map(bed._start_node, bed.nodes))
            bed.known_hosts.write_text("".join(
                n.sshd.host.known_hosts.read_text() for n in bed.nodes if n.sshd))
            for node in bed.nodes:
                assert node.sshd is not None
                node.ssh = SshHost(address=node.address, port=SSH_PORT, user="root",
                                   key_file=bed.user_key, known_hosts=bed.known_hosts)
            bed.load_images(images)
        except BaseException:
            bed.close()
            raise
        return bed

    def _network(self, count: int) -> None:
        sh("ip", "netns", "add", self.lan)
        lan = ("ip", "-n", self.lan)
        sh(*lan, "link", "set", "dev", "lo", "up")
        sh(*lan, "link", "add", "br0", "type", "bridge")
        sh(*lan, "link", "set", "dev", "br0", "up")
        sh("ip", "link", "add", self.uplink, "type", "veth", "peer", "name", "uplink",
           "netns", self.lan)
        sh(*lan, "link", "set", "dev", "uplink", "master", "br0", "up")
        sh("ip", "addr", "add", f"{self.host_address}/24", "dev", self.uplink)
        sh("ip", "link", "set", "dev", self.uplink, "up")
        for i in range(1, count + 1):
            name = f"{self.id}-n{i}"
            node = SwarmNode(name=name, address=f"{self.subnet}.{i + 1}",
                             root=self.root / name, data_root=DATA_DIR / self.id / name)
            node.root.mkdir(parents=True, exist_ok=True)
            self.nodes.append(node)
            sh("ip", "netns", "add", name)
            port = f"{self.id}-v{i}"
            sh("ip", "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", name)
            sh("ip", "link", "set", "dev", port, "netns", self.lan)
            sh(*lan, "link", "set", "dev", port, "master", "br0", "up")
            inside = ("ip", "-n", name)
            sh(*inside, "addr", "add", f"{node.address}/24", "dev", "eth0")
            sh(*inside, "link", "set", "dev", "eth0", "up")
            sh(*inside, "link", "set", "dev", "lo", "up")
            sh(*inside, "route", "add", "default", "via", self.host_address)
            node.uts.touch()
            sh("unshare", f"--uts={node.uts}", "hostname", name)

    def _start_node(self, node: SwarmNode) -> None:
        node.start_engine()
        node.sshd = start_sshd(
            address=node.address, port=SSH_PORT, wrap=node.enter, user_key=self.user_key,
            extra=(f"SetEnv DOCKER_HOST={node.docker_host}",))

    def form(self, manager: SwarmNode, workers: Sequence[SwarmNode]) -> None:
        """Make `manager` a swarm's only manager and `workers` its workers (idempotent), the
        way `inv setup` does, for tests of the test bed itself."""
        if manager.docker("info", "--format", "{{.Swarm.LocalNodeState}}") != "active":
            manager.docker("swarm", "init", "--advertise-addr", manager.address)
        token = manager.docker("swarm", "join-token", "-q", "worker")
        for node in workers:
            if node.docker("info", "--format", "{{.Swarm.LocalNodeState}}") != "active":
                node.docker("swarm", "join", "--token", token, f"{manager.address}:2377")

    def reset(self) -> None:
        """Every node leaves whatever swarm it is in (its services and networks go with it)."""
        for node in reversed(self.nodes):
            node.docker("swarm", "leave", "--force", check=False, timeout=60)

    def load_images(self, tags: Iterable[str]) -> None:
        """Copy images from the main engine into every node's engine."""
        tags = list(tags)
        if not tags:
            return
        with tempfile.TemporaryDirectory(prefix="swarm-images-") as tmp:
            tar = Path(tmp, "images.tar")
            sh("docker", "save", "-o", str(tar), *tags, timeout=300)
            for node in self.nodes:
                node.docker("load", "-i", str(tar), timeout=300)

    def close(self) -> None:
        """Stop every node and remove the namespaces, links and files (idempotent)."""
        with ThreadPoolExecutor(max(1, len(self.nodes))) as pool:
            list(pool.map(SwarmNode.close, self.nodes))
        with contextlib.suppress(RuntimeError):
            sh("ip", "link", "del", self.uplink)
        with contextlib.suppress(RuntimeError):
            sh("ip", "netns", "del", self.lan)
        shutil.rmtree(DATA_DIR / self.id, ignore_errors=True)
        shutil.rmtree(self.root, ignore_errors=True)


if __name__ == "__main__":
    started = time.monotonic()
    bed = SwarmBed.create(2)
    try:
        print(f"{len(bed.nodes)} nodes up in {time.monotonic() - started:.1f}s:")
        for n in bed.nodes:
            print(f"  {n.name} {n.address} DOCKER_HOST={n.docker_host} ssh root@{n.address}")
        input("press Enter to tear down ")
    finally:
        bed.close()
