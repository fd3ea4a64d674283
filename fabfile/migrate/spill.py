"""Spill files: the COPY text the preflight renders, kept on disk until the whole preflight
has passed; the copy then streams it to PostgreSQL, so the source is read once.

They live in a private directory (mode 0700) under TMPDIR, named after the process that made
it and removed when the run ends, however it ends (`close`); a directory left by a run that
was killed is removed by the next one (`sweep`). Disk is budgeted: the free space at the
start less a reserve, shared by the workers; a table whose text does not fit is read from
SQLite again by its copy instead, so a small disk costs time, never the run.
"""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing as mp
import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .copy import SourceChecksum

PREFIX = "shipyard-migrate-"
RESERVE_BYTES = 1 << 30
"""Free space left to everything else on the spill directory's filesystem."""


@dataclass(frozen=True)
class Spilled:
    """One table's COPY text on disk, with what the preflight counted and hashed of it."""

    path: Path
    checksum: SourceChecksum
    bytes: int


class Spill:
    """The spill directory of one run and the disk budget its workers share (they are forked
    after it is made, so they share the counter)."""

    def __init__(self, root: Path | None = None, *, budget: int | None = None) -> None:
        sweep(root)
        self.path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=root))
        if budget is None:
            budget = shutil.disk_usage(self.path).free - RESERVE_BYTES
        self._left: Any = mp.get_context("fork").Value("q", max(0, budget))

    def take(self, n: int) -> bool:
        with self._left.get_lock():
            if self._left.value < n:
                return False
            self._left.value -= n
            return True

    def give_back(self, n: int) -> None:
        with self._left.get_lock():
            self._left.value += n

    def writer(self, table: str) -> SpillWriter:
        """A new file for TABLE (a table may be rendered again, by a later run sharing this
        spill: `engine.Reuse`)."""
        name = hashlib.sha1(table.encode(), usedforsecurity=False).hexdigest()[:16]
        return SpillWriter(self, self.path / f"{name}-{secrets.token_hex(4)}.copy")

    def discard(self, spilled: Spilled) -> None:
        """Remove a finished file and give its bytes back to the budget."""
        spilled.path.unlink(missing_ok=True)
        self.give_back(spilled.bytes)

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


class SpillWriter:
    """One table's spill file (0600); it stops keeping lines, and frees what it kept, when the
    budget or the disk runs out."""

    def __init__(self, spill: Spill, path: Path) -> None:
        self.spill = spill
        self.path = path
        self.written = 0
        self._fh: IO[bytes] | None = os.fdopen(
            os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb", buffering=1 << 20)

    def write(self, data: bytes) -> bool:
        """Keep DATA; False (from then on) when it cannot."""
        if self._fh is None:
            return False
        if not self.spill.take(len(data)):
            self.abandon()
            return False
        try:
            self._fh.write(data)
        except OSError:
            self.spill.give_back(len(data))
            self.abandon()
            return False
        self.written += len(data)
        return True

    def close(self) -> Path | None:
        """The finished file; None when it was abandoned."""
        if self._fh is None:
            return None
        try:
            self._fh.close()
        except OSError:
            self._fh = None
            self.abandon()
            return None
        self._fh = None
        return self.path

    def abandon(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.close()
            self._fh = None
        self.path.unlink(missing_ok=True)
        self.spill.give_back(self.written)
        self.written = 0


def sweep(root: Path | None = None) -> None:
    """Remove the spill directories of runs that no longer exist (killed before cleaning up)."""
    base = Path(root or tempfile.gettempdir())
    for entry in base.glob(f"{PREFIX}*"):
        pid = entry.name[len(PREFIX):].split("-", 1)[0]
        try:
            if not pid.isdigit() or entry.stat().st_uid != os.getuid():
                continue
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(entry, ignore_errors=True)
        except OSError:
            continue
