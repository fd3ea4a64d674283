"""Run `scripts/install.sh` on a host, as root (`sudo -n` for another SSH user), and turn
its markers into what changed, or into one message saying why it cannot and what to do."""

from __future__ import annotations

import os

from fabfile.config import Config, Host
from fabfile.deploy.facts import MIN_COMPOSE, MIN_DOCKER
from fabfile.deploy.rollout import markers
from fabfile.errors import UserError
from fabfile.remote import Result, Step, Transport
from fabfile.shell import Scripts

SCRIPTS = Scripts("fabfile.install", {"install": ()})
DOCS = "https://docs.docker.com/engine/install/"


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


def as_root(host: Host) -> bool:
    """Whether the commands already run as root (else they go through `sudo -n`)."""
    return host.user == "root" if host.transport == "ssh" else os.geteuid() == 0


def install_step(cfg: Config, host: Host) -> Step:
    user = host.user if host.transport == "ssh" else ""
    step = SCRIPTS.step("install Docker Engine and Compose v2 (apt)", "install", user or "root",
                        _dotted(MIN_DOCKER), _dotted(MIN_COMPOSE), timeout=900)
    if as_root(host):
        return step
    return Step(step.name, ("sudo", "-n", *step.argv), timeout=step.timeout)


def changes(result: Result) -> list[str]:
    """What the install changed, one phrase each."""
    m = markers(result.stdout)
    done = [f"installed {item}" for item in m.get("installed", [])]
    done += [f"created {item}" for item in m.get("created", [])]
    done += [f"added {user} to the docker group" for user in m.get("group-added", [])]
    done += [f"{key} {item}" for key in ("enabled", "started") for item in m.get(key, [])]
    return done


def install(cfg: Config, t: Transport) -> list[str]:
    """Install on this host; what changed. Raises UserError with the fix when it cannot."""
    result = t.probe(install_step(cfg, t.host))
    if result.ok:
        return changes(result)
    raise UserError(explain(cfg, t.host, result))


def explain(cfg: Config, host: Host, result: Result) -> str:
    m = markers(result.stdout)
    error = m.get("error", [""])[-1]
    kind, _, detail = error.partition(" ")
    where = host.label
    release = m.get("release", ["an unknown system"])[-1]
    if not error and "sudo" in result.stderr:
        return (f"setup --install needs root on {where}, and user {host.user} cannot use sudo "
                f"without a password ({result.stderr.strip().splitlines()[-1]}): allow it "
                f"(a line `{host.user} ALL=(ALL) NOPASSWD:ALL` in /etc/sudoers.d/{host.user}) "
                "or run setup --install once with hosts[].user: root")
    if kind == "unsupported":
        return (f"{where} runs {release}: setup --install knows Debian and Ubuntu (apt). Install "
                f"Docker Engine and the Compose v2 plugin by hand ({DOCS}), then run "
                f"`inv setup --env={cfg.env}`")
    if kind == "compose-too-old":
        return (f"nothing was installed on {where}: {release} has no Compose v2 plugin of "
                f"{_dotted(MIN_COMPOSE)} or newer (apt offers: {detail}; Debian 12's "
                "docker-compose is Compose v1, the old Python tool). Fix: add Docker's own apt "
                "repository "
                f"({DOCS}debian/#install-using-the-repository), which has "
                "docker-compose-plugin, and run setup --install again; or move the host to "
                "Debian 13 or Ubuntu 24.04, whose packages are recent enough")
    if kind == "engine-too-old":
        return (f"nothing was installed on {where}: the Docker Engine of {release} is older "
                f"than {_dotted(MIN_DOCKER)} (apt offers {detail}). Add Docker's own apt "
                f"repository ({DOCS}) and run setup --install again")
    if kind == "apt-update":
        return (f"`apt-get update` failed on {where} ({detail or 'no detail'}): check its apt "
                "sources and network, then run setup --install again; nothing was installed")
    if kind == "apt-install":
        log = "\n    ".join(m.get("log", []))
        return f"`apt-get install {detail}` failed on {where}:\n    {log or result.stderr[-400:]}"
    if kind == "daemon":
        return (f"Docker is installed on {where} but its daemon does not answer ({detail}): see "
                "`journalctl -u docker` (or /var/log/docker.log) there")
    tail = (result.stderr.strip() or result.stdout.strip())[-400:]
    return f"setup --install failed on {where}: {error or tail or 'no output'}"
