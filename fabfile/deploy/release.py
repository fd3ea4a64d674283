"""Releases on a host: `APP_DIR/releases/<id>/` holds one rendered release, `current` links
to the live one, and only the newest `keep_releases` live ones are kept (never `current`).

Ids are a UTC timestamp plus the version (`20240501T100000Z-v2`), so sorting them sorts by
time. A release is uploaded as one in-memory tar.gz and unpacked by `upload.sh`; it becomes
live (`.live` marker) when `finish.sh` switches `current` to it.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from fabfile.errors import UserError
from fabfile.remote import Step
from fabfile.render import RenderedFile

from . import scripts
from .facts import Facts, Release


def new_id(now: datetime, version: str, existing: Iterable[str]) -> str:
    """A fresh, sortable release id; a suffix keeps two deploys in one second apart."""
    base = f"{now:%Y%m%dT%H%M%SZ}-{version}"
    taken = set(existing)
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def version_of(release_id: str) -> str:
    """The version part of a release id (`20240501T100000Z-v2` -> `v2`)."""
    return release_id.split("-", 1)[1] if "-" in release_id else release_id


def created_at(release_id: str) -> int:
    """The release's timestamp (from its id) as a Unix time; 0 when the id has none."""
    try:
        stamp = datetime.strptime(release_id[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return 0
    return int(stamp.timestamp())


def archive(files: Sequence[RenderedFile], mtime: int = 0) -> bytes:
    """The release as a tar.gz: each file with its mode and `mtime`, owned by nobody."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=6) as tar:
        dirs: set[str] = set()
        for f in files:
            parts = f.path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    info = tarfile.TarInfo(d)
                    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, mtime
                    tar.addfile(info)
            data = f.content.encode("utf-8")
            info = tarfile.TarInfo(f.path)
            info.size, info.mode, info.mtime = len(data), f.mode, mtime
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def upload_step(app_dir: str, release_id: str, files: Sequence[RenderedFile]) -> Step:
    data = archive(files, created_at(release_id))
    return scripts.step(f"upload release {release_id} ({len(files)} files)",
                        "upload", app_dir, release_id, stdin=data, timeout=120)


def to_prune(releases: Iterable[Release], current: str | None, keep: int) -> list[str]:
    """Releases to delete: all but the newest `keep` live ones, never `current`.

    Staged releases (uploaded, never live: a failed or interrupted deploy) go too, except
    `current`, which is about to become live.
    """
    live = sorted({r.id for r in releases if r.live} | ({current} if current else set()),
                  reverse=True)
    kept = set(live[:keep]) | ({current} if current else set())
    return sorted(r.id for r in releases if r.id not in kept)


def previous_live(facts: Facts) -> str | None:
    """The newest live release older than `current`: where a rollback goes by default."""
    if facts.current is None:
        return None
    older = [r.id for r in facts.releases if r.live and r.id < facts.current]
    return max(older) if older else None


def resolve(facts: Facts, wanted: str | None) -> str:
    """The rollback target: `wanted` (an id, or a unique id suffix such as a version) or
    the previous live release."""
    if facts.current is None:
        raise UserError("nothing is deployed on this host yet (no `current` release): "
                        "there is nothing to roll back to")
    listing = ", ".join(f"{r.id}{' (current)' if r.id == facts.current else ''}"
                        for r in facts.releases) or "none"
    if not wanted:
        target = previous_live(facts)
        if target is None:
            raise UserError(f"no release before {facts.current} is left to roll back to "
                            f"(releases: {listing})")
        return target
    ids = facts.release_ids
    if wanted in ids:
        return wanted
    matches = [i for i in ids if i.endswith(f"-{wanted}") or i.startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UserError(f"--to={wanted} matches several releases ({', '.join(matches)}): "
                        "give the full release id")
    raise UserError(f"no release {wanted!r} on this host: releases are {listing}")


def refuse_stale_sqlite(facts: Facts, target: str, host: str) -> None:
    """After `db.cutover`, a release made before it would put the app back on the SQLite file
    as it was at the cutover: every write since would vanish from the app's view."""
    if facts.database_backend == "postgres" and target in facts.sqlite_releases:
        raise UserError(
            f"{host}: release {target} runs the app on SQLite, but this host was cut over to "
            "PostgreSQL: rolling back to it would serve the stale SQLite file. Roll back to a "
            "release made after the cutover (--to=RELEASE) or deploy a fixed version")
