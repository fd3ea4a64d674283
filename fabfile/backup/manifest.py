"""The manifest written next to each dump (last, so its presence marks the backup complete),
and the record `backup.verify` leaves beside it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from fabfile.errors import UserError

FORMAT = "shipyard-backup/1"


def version_text(version_num: int) -> str:
    """`server_version_num` as people write it: 150018 -> '15.18', 90624 -> '9.6.24'."""
    if version_num >= 100000:
        return f"{version_num // 10000}.{version_num % 10000}"
    return f"{version_num // 10000}.{version_num // 100 % 100}.{version_num % 100}"


def major_of(version: str) -> int:
    """The major version of '15.18', '16beta1' or '9.6.24' (9.6 counts as 9)."""
    digits = ""
    for char in version:
        if not char.isdigit():
            break
        digits += char
    return int(digits or 0)


@dataclass(frozen=True)
class Manifest:
    """What was dumped, from where, with what, and how to check the bytes."""

    backup_id: str
    dump_key: str
    size: int
    sha256: str
    database: str
    server_version: str
    client_version: str
    client: str
    started_at: str
    finished_at: str
    tables: dict[str, int] = field(default_factory=dict)
    label: str = ""
    project: str = ""
    env: str = ""
    host: str = ""
    format: str = "custom"
    compression: str = "zstd"

    @property
    def server_major(self) -> int:
        return major_of(self.server_version)

    @property
    def rows(self) -> int:
        return sum(self.tables.values())

    def to_json(self) -> bytes:
        return (json.dumps({"format_version": FORMAT, **asdict(self)}, indent=2, sort_keys=True)
                + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes, where: str) -> Manifest:
        """Parse a manifest; anything malformed is a UserError naming `where` it came from."""
        try:
            raw: dict[str, Any] = json.loads(data)
            if raw.pop("format_version", None) != FORMAT:
                raise ValueError(f"not a {FORMAT} manifest")
            manifest = cls(**raw)
            if not isinstance(manifest.size, int) or len(manifest.sha256) != 64:
                raise ValueError("size or sha256 missing")
            if not all(isinstance(v, int) for v in manifest.tables.values()):
                raise ValueError("table row counts are not integers")
        except (ValueError, TypeError) as exc:
            raise UserError(f"the manifest {where} is not valid ({exc}): treat that backup as "
                            "damaged and restore another one") from None
        return manifest


@dataclass(frozen=True)
class Verification:
    """The outcome of restoring a backup into a scratch database and counting its rows."""

    backup_id: str
    ok: bool
    checked_at: str
    restored_tables: dict[str, int]
    mismatches: dict[str, tuple[int | None, int | None]]
    seconds: float

    def to_json(self) -> bytes:
        return (json.dumps(asdict(self), indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> Verification | None:
        try:
            raw = json.loads(data)
            raw["mismatches"] = {k: tuple(v) for k, v in raw.get("mismatches", {}).items()}
            return cls(**raw)
        except (ValueError, TypeError, AttributeError):
            return None


def compare_counts(expected: dict[str, int],
                   restored: dict[str, int]) -> dict[str, tuple[int | None, int | None]]:
    """Tables whose row counts differ: name -> (in the manifest, after the restore)."""
    return {name: (expected.get(name), restored.get(name))
            for name in sorted(set(expected) | set(restored))
            if expected.get(name) != restored.get(name)}


def now_iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")
