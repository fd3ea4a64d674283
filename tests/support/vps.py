"""A fresh VPS for `inv setup --install`: Debian 13 with no Docker at all, reached over SSH.

The shared Docker Engine of this machine cannot be removed, so the host is a root filesystem
of its own (`testbed/vps/build-rootfs.sh`, a cached debootstrap) in a network namespace of
its own (`netns`), joined to this machine by a veth pair: its `sshd` listens on the
namespace's address, port 22, user `deploy` (passwordless sudo, as a provider's image
gives), and everything it starts (apt, the Docker daemon it installs) lives in that
namespace and filesystem. What differs from a real VPS, and why:

- **apt goes through a proxy** (`aptproxy`) on this machine's side of the veth: the
  namespace has no route out. apt's own proxy setting, as a host behind a proxy has.
- **systemd does not run** in a chroot. `/run/systemd/system` exists and `systemctl` is a
  stand-in (`SYSTEMCTL`, logging each call) that enables by the same symlink systemd uses
  and starts `dockerd` as docker.service's ExecStart would. (The package's sysvinit script
  cannot be used instead: it raises the open-files limit to 1048576, which this sandbox
  does not allow: no CAP_SYS_RESOURCE.)

`/proc`, `/sys` (the cgroup hierarchies dockerd needs) and `/dev` are mounted into the root
(rslave: nothing propagates back); `stop()` ends every process whose root is this host's,
unmounts everything under it (dockerd's own overlay mounts included) and deletes it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import netns
from .aptproxy import AptProxy
from .images import vps_rootfs_tarball
from .net import wait_for_port
from .sshd import SshHost, keygen, known_hosts_line

USER = "deploy"
MIRROR = "http://deb.debian.org/debian"
SYSTEMCTL = """#!/bin/sh
# systemctl stand-in for a chroot (tests/support/vps.py): the calls setup --install makes.
echo "systemctl $*" >> /var/log/systemctl.log
for unit in "$@"; do :; done
unit=${unit%.service}
case $1 in
  is-enabled) [ -e "/etc/systemd/system/multi-user.target.wants/$unit.service" ] ;;
  enable) mkdir -p /etc/systemd/system/multi-user.target.wants &&
    ln -sf "/usr/lib/systemd/system/$unit.service" \\
      "/etc/systemd/system/multi-user.target.wants/$unit.service" ;;
  is-active) [ -s /run/docker.pid ] && kill -0 "$(cat /run/docker.pid)" 2>/dev/null ;;
  start) [ "$unit" = docker ] || exit 5
    start-stop-daemon --start --background --no-close --exec /usr/sbin/dockerd \\
      --pidfile /run/docker-ssd.pid --make-pidfile -- -p /run/docker.pid \\
      >> /var/log/docker.log 2>&1 ;;
  *) echo "systemctl stand-in: $1 is not modelled" >&2; exit 1 ;;
esac
"""


@dataclass
class Vps:
    root: Path
    ns: netns.Namespace
    ssh: SshHost
    proxy: AptProxy
    sshd: subprocess.Popen[bytes]

    def sh(self, script: str) -> subprocess.CompletedProcess[str]:
        """`script` in the host's filesystem, as root (to look at it, not through SSH)."""
        return subprocess.run(["chroot", str(self.root), "sh", "-c", script],
                              capture_output=True, text=True, check=False, timeout=120)

    def use_suite(self, suite: str) -> None:
        """Point apt at Debian `suite` (bookworm: a distribution whose Compose is v1)."""
        (self.root / "etc/apt/sources.list").write_text(f"deb {MIRROR} {suite} main\n")
        self.sh("rm -rf /var/lib/apt/lists/*")

    def stop(self) -> None:
        own = str(self.root)
        for attempt in range(3):
            pids = [int(p) for p in os.listdir("/proc") if p.isdigit() and _root(p) == own]
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL if attempt else signal.SIGTERM)
            time.sleep(2)
        self.proxy.stop()
        mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
        for target in sorted((m for m in mounts if m == own or m.startswith(own + "/")),
                             key=len, reverse=True):
            subprocess.run(["umount", "-l", target], capture_output=True, check=False)
        self.ns.delete()
        _remove(self.root.parent)


def _remove(base: Path) -> None:
    """Delete the host's files, never crossing into a mount (/sys, /dev) left by mistake."""
    subprocess.run(["rm", "-rf", "--one-file-system", str(base)], capture_output=True,
                   check=False)


def _root(pid: str) -> str:
    try:
        return os.readlink(f"/proc/{pid}/root")
    except OSError:
        return ""


def start() -> Vps:
    """A fresh Debian 13 host (see the module docstring), sshd up; `stop()` removes it."""
    tarball = vps_rootfs_tarball()
    base = Path(tempfile.mkdtemp(prefix="shipyard-vps-"))
    root = base / "root"
    root.mkdir()
    subprocess.run(["tar", "--numeric-owner", "-xpf", str(tarball), "-C", str(root)],
                   check=True)
    ns = netns.create("vp")
    proxy = AptProxy(ns.gateway).start()
    vps: Vps | None = None
    try:
        for name, how in (("proc", ["-t", "proc", "proc"]), ("sys", ["--rbind", "/sys"]),
                          ("dev", ["--rbind", "/dev"])):
            subprocess.run(["mount", *how, str(root / name)], check=True)
            if how[0] == "--rbind":
                subprocess.run(["mount", "--make-rslave", str(root / name)], check=True)
        (root / "etc/apt/apt.conf.d/01proxy").write_text(
            f'Acquire::http::Proxy "{proxy.url}";\nAcquire::http::Pipeline-Depth "0";\n')
        (root / "etc/apt/sources.list").write_text(f"deb {MIRROR} trixie main\n")
        (root / "run/systemd/system").mkdir(parents=True, exist_ok=True)
        systemctl = root / "usr/local/bin/systemctl"
        systemctl.write_text(SYSTEMCTL)
        systemctl.chmod(0o755)
        keys = base / "keys"
        keys.mkdir()
        user_public = keygen(keys / "id_ed25519", "vps-user")
        setup = (f"useradd -m -s /bin/sh -p '*' {USER} && mkdir -p /home/{USER}/.ssh /run/sshd && "
                 f"printf '%s\\n' \"$1\" > /home/{USER}/.ssh/authorized_keys && "
                 f"chown -R {USER}: /home/{USER}/.ssh && chmod 700 /home/{USER}/.ssh && "
                 f"echo '{USER} ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/{USER} && "
                 "ssh-keygen -q -A")
        subprocess.run(["chroot", str(root), "sh", "-c", setup, "sh", user_public], check=True)
        (root / "etc/ssh/sshd_config.d/test.conf").write_text(
            f"ListenAddress {ns.address}\nUsePAM no\nPermitRootLogin no\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\n")
        sshd = subprocess.Popen(
            ["nsenter", f"--net=/var/run/netns/{ns.name}", "chroot", str(root),
             "/usr/sbin/sshd", "-D", "-e"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        host_public = (root / "etc/ssh/ssh_host_ed25519_key.pub").read_text().strip()
        known = keys / "known_hosts"
        known.write_text(known_hosts_line(ns.address, 22, host_public))
        vps = Vps(root, ns, SshHost(ns.address, 22, USER, keys / "id_ed25519", known), proxy,
                  sshd)
        wait_for_port(22, host=ns.address, timeout=20)
        return vps
    except BaseException:
        if vps is not None:
            vps.stop()
        else:
            proxy.stop()
            subprocess.run(["umount", "-R", "-l", str(root / "sys"), str(root / "dev"),
                            str(root / "proc")], capture_output=True, check=False)
            ns.delete()
            _remove(base)
        raise
