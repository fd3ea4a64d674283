"""A consistent copy of the host's live SQLite file, made on the host, streamed back here.

The copy uses SQLite's online backup API on the host (python3's `sqlite3` module, else the
`sqlite3` shell), reading the live file read-only: the app may keep writing; the copy is the
database as of one moment. It lands in a fresh directory under `deploy.app_dir` (the
deploy user owns it; the SQLite file's own directory may belong to the app), comes back in
one command that also removes it, and is checked against the size and sha256 the host
reported.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from fabfile import ui
from fabfile.config import Config
from fabfile.deploy.rollout import markers
from fabfile.errors import UserError
from fabfile.remote import Transport

from . import steps


@dataclass(frozen=True)
class Snapshot:
    path: Path
    size: int
    sha256: str
    tool: str


def require_sqlite(cfg: Config) -> str:
    """The host path of the SQLite file, or the error naming the key to set."""
    path = cfg.database.sqlite_path
    if path is None:
        raise UserError(f"environment {cfg.env!r} has no database.sqlite_path: set it in "
                        f"environments/{cfg.env}.yaml to the host path of the app's SQLite file")
    if len(cfg.hosts) != 1:
        raise UserError(f"environment {cfg.env!r} has {len(cfg.hosts)} hosts; a SQLite file "
                        "lives on one: this needs an environment with exactly one host")
    return path


def explain(cfg: Config, host: str, stdout: str, stderr: str, code: int) -> str:
    detail = markers(stdout).get("error", [""])[-1]
    src = cfg.database.sqlite_path
    if detail == "missing":
        return (f"{src} does not exist on {host}: check database.sqlite_path in "
                f"environments/{cfg.env}.yaml")
    if detail == "unreadable":
        return (f"{src} on {host} is not readable by {cfg.hosts[0].user}: make it readable "
                "(e.g. add that user to the file's group)")
    if detail == "no-tool":
        return (f"{host} has neither python3 (with its sqlite3 module) nor the sqlite3 shell "
                "to take an online backup of the SQLite file: install one "
                "(Debian/Ubuntu: `apt-get install sqlite3`)")
    if detail == "workdir":
        return (f"cannot create a snapshot directory under {cfg.deploy.app_dir} on {host}: "
                f"run `inv setup --env={cfg.env}` first, or check its owner")
    if detail.startswith("backup"):
        return (f"the online backup of {src} failed on {host}: "
                f"{detail.removeprefix('backup').strip() or stderr.strip() or 'no output'} "
                "(disk full under deploy.app_dir, or not a SQLite database?)")
    tail = (stderr.strip() or stdout.strip())[-400:]
    return f"snapshot of {src} on {host} failed (exit {code}): {tail or 'no output'}"


def take(cfg: Config, transport: Transport, dest_dir: Path) -> Snapshot:
    """Snapshot the host's SQLite file into `dest_dir/snapshot.db`: two round trips."""
    require_sqlite(cfg)
    host = transport.host.label
    with ui.console.status(f"{host}: snapshot of {cfg.database.sqlite_path}"):
        result = transport.probe(steps.snapshot_step(cfg))
    found = markers(result.stdout).get("snapshot")
    if not result.ok or not found:
        raise UserError(explain(cfg, host, result.stdout, result.stderr, result.exit_code))
    remote, size, digest, tool = found[-1].split(" ")
    local = dest_dir / "snapshot.db"
    with ui.console.status(f"{host}: downloading the snapshot ({int(size):,} bytes)"):
        transport.download(steps.fetch_step(remote), local)
    got = hashlib.sha256()
    with local.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            got.update(chunk)
    if local.stat().st_size != int(size) or got.hexdigest() != digest:
        raise UserError(f"the snapshot downloaded from {host} does not match what the host "
                        f"wrote ({local.stat().st_size} of {size} bytes, sha256 differs): "
                        "the connection cut it short? Run again")
    ui.ok(f"{host}: snapshot of {cfg.database.sqlite_path}: {int(size):,} bytes "
          f"(online backup with {tool}), sha256 {digest[:12]}")
    return Snapshot(local, int(size), digest, tool)
