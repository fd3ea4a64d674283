"""The manifest's JSON form, and what counts as a damaged one."""

from __future__ import annotations

import json

import pytest

from fabfile.backup.manifest import (
    Manifest,
    Verification,
    compare_counts,
    major_of,
    version_text,
)
from fabfile.errors import UserError

M = Manifest(backup_id="20261126T020000Z", dump_key="p/2026/11/26/20261126T020000Z.dump.zst",
             size=123, sha256="a" * 64, database="app", server_version="15.18",
             client_version="15.18", client="docker postgres:15",
             started_at="2026-11-26T02:00:00+00:00", finished_at="2026-11-26T02:00:09+00:00",
             tables={"public.people": 20000, "public.teams": 0}, label="nightly")


def test_round_trip() -> None:
    assert Manifest.from_json(M.to_json(), "x") == M
    assert json.loads(M.to_json())["format_version"] == "shipyard-backup/1"
    assert M.rows == 20000 and M.server_major == 15


@pytest.mark.parametrize("mangle", [
    lambda d: d.pop("format_version"),
    lambda d: d.pop("sha256"),
    lambda d: d.update(sha256="abc"),
    lambda d: d.update(size="12"),
    lambda d: d.update(tables={"t": "many"}),
    lambda d: d.update(surprise=1),
])
def test_damaged_manifests_are_refused(mangle) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(M.to_json())
    mangle(data)
    with pytest.raises(UserError, match="the manifest s3://b/k is not valid"):
        Manifest.from_json(json.dumps(data).encode(), "s3://b/k")
    with pytest.raises(UserError):
        Manifest.from_json(b"{not json", "s3://b/k")


@pytest.mark.parametrize(("num", "text", "major"), [
    (150018, "15.18", 15), (170000, "17.0", 17), (90624, "9.6.24", 9)])
def test_versions(num: int, text: str, major: int) -> None:
    assert version_text(num) == text
    assert major_of(text) == major
    assert major_of("16beta1") == 16


def test_compare_counts() -> None:
    assert compare_counts({"a": 1, "b": 2}, {"a": 1, "b": 2}) == {}
    assert compare_counts({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 0}) == {
        "b": (2, 3), "c": (None, 0)}


def test_verification_round_trip() -> None:
    v = Verification("20261126T020000Z", False, "2026-11-27T00:00:00+00:00", {"a": 1},
                     {"b": (2, None)}, 3.5)
    assert Verification.from_json(v.to_json()) == v
    assert Verification.from_json(b"[]") is None
