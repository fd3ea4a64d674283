"""Release ids, archives, pruning and rollback targets: pure."""

from __future__ import annotations

import io
import tarfile
from datetime import UTC, datetime

import pytest

from fabfile.deploy.facts import Facts, Release
from fabfile.deploy.release import (
    archive,
    created_at,
    new_id,
    previous_live,
    refuse_stale_sqlite,
    resolve,
    to_prune,
)
from fabfile.errors import UserError
from fabfile.render import RenderedFile

NOW = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)


def test_ids_sort_by_time_and_never_collide() -> None:
    first = new_id(NOW, "v2", [])
    assert first == "20240501T100000Z-v2"
    assert new_id(NOW, "v2", [first]) == "20240501T100000Z-v2-2"
    assert new_id(NOW, "v2", [first, f"{first}-2"]) == "20240501T100000Z-v2-3"
    assert sorted([new_id(NOW.replace(hour=9), "zz", []), first]) == [
        "20240501T090000Z-zz", first]
    assert created_at(first) == int(NOW.timestamp())


def test_archive_keeps_modes_and_directories() -> None:
    files = [RenderedFile("compose.yml", "a: 1\n"), RenderedFile("app.env", "K='v'\n", 0o600),
             RenderedFile("traefik/dynamic/dynamic.yml", "x: 1\n")]
    with tarfile.open(fileobj=io.BytesIO(archive(files, 1700000000)), mode="r:gz") as tar:
        members = {m.name: (m.type, m.mode, m.mtime) for m in tar.getmembers()}
    assert members["app.env"] == (tarfile.REGTYPE, 0o600, 1700000000)
    assert members["compose.yml"][1] == 0o644
    assert members["traefik"][0] == tarfile.DIRTYPE and "traefik/dynamic" in members


def rel(*specs: str) -> list[Release]:
    return [Release(s.rstrip("*"), not s.endswith("*")) for s in specs]


def test_prune_keeps_the_newest_live_and_never_current() -> None:
    releases = rel("r1", "r2", "r3*", "r4", "r5", "r6", "r7")
    assert to_prune(releases, "r7", keep=5) == ["r1", "r3"]
    assert to_prune(releases, "r2", keep=2) == ["r1", "r3", "r4", "r5"]
    assert to_prune(rel("r1", "r2"), "r2", keep=5) == []


def test_prune_drops_staged_releases_except_the_one_going_live() -> None:
    assert to_prune(rel("r1", "r2*", "r3*"), "r3", keep=5) == ["r2"]


def facts(current: str | None, *specs: str) -> Facts:
    return Facts(app_dir=True, current=current, releases=tuple(rel(*specs)))


def test_previous_live_skips_staged_and_newer_releases() -> None:
    f = facts("20240103-v3", "20240101-v1", "20240102-v2*", "20240103-v3", "20240104-v4")
    assert previous_live(f) == "20240101-v1"
    assert previous_live(facts("20240101-v1", "20240101-v1")) is None


def test_resolve_by_id_version_or_default() -> None:
    f = facts("20240103T0-v3", "20240101T0-v1", "20240102T0-v2", "20240103T0-v3")
    assert resolve(f, None) == "20240102T0-v2"
    assert resolve(f, "v1") == "20240101T0-v1"
    assert resolve(f, "20240103T0-v3") == "20240103T0-v3"
    with pytest.raises(UserError, match="no release 'v9' on this host: releases are"):
        resolve(f, "v9")
    with pytest.raises(UserError, match="nothing is deployed"):
        resolve(facts(None), None)
    with pytest.raises(UserError, match="no release before 20240101T0-v1"):
        resolve(facts("20240101T0-v1", "20240101T0-v1"), None)


def test_resolve_refuses_an_ambiguous_prefix() -> None:
    f = facts("20240102T0-v2", "20240101T0-v1", "20240102T0-v2")
    with pytest.raises(UserError, match="matches several releases"):
        resolve(f, "2024")


def test_no_rollback_to_a_sqlite_release_after_the_cutover() -> None:
    facts = Facts(database_backend="postgres", sqlite_releases=frozenset({"r1-v1"}))
    with pytest.raises(UserError, match="runs the app on SQLite"):
        refuse_stale_sqlite(facts, "r1-v1", "vps1")
    refuse_stale_sqlite(facts, "r2-v2", "vps1")
    refuse_stale_sqlite(Facts(sqlite_releases=frozenset({"r1-v1"})), "r1-v1", "vps1")
